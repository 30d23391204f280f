"""Long calls: the prompt keeps the recent turns in full and folds older ones into notes (a
running summary and the call's state), so it stays within the local model's context (n_ctx 2048)
and still knows how the call started."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from itertools import pairwise
from pathlib import Path

import pytest

from ringline.services.brain.context import CallState, messages_tokens
from ringline.services.brain.conversation import Conversation
from ringline.services.brain.folding import FOLD_SYSTEM
from ringline.services.brain.llm.base import ChatModel, Messages, StreamStats
from ringline.services.brain.settings import BrainSettings

pytestmark = pytest.mark.unit

TOPICS = ["the opening hours on Sunday", "parking near the restaurant", "a vegetarian menu",
          "the price of the tasting menu", "gift vouchers", "a birthday party of twelve people",
          "the wine list", "whether dogs are allowed"]
FIRST = "Hi, my name is Sam. I'd like to book a table for Tuesday at 7 pm for four people."
BUDGET = 1500  # the default context_max_tokens
N_CTX, MAX_REPLY = 2048, 60


def caller_line(i: int) -> str:
    if i == 0:
        return FIRST
    return (f"Okay, thanks. Could you also tell me about {TOPICS[i % len(TOPICS)]}? I'm asking because we "
            f"might come again on Friday, with order number {1000 + i}.")


def agent_line(i: int) -> str:
    return (f"Sure, about {TOPICS[i % len(TOPICS)]}: we can help with that, and I've noted it for you. "
            "Is there anything else you'd like to know?")


def long_call(exchanges: int = 200) -> tuple[Conversation, list[int]]:
    """A scripted 200-exchange call, folded between turns as the session does; the estimated
    prompt size at every turn."""
    settings = BrainSettings()
    conv = Conversation(settings.persona, settings.history_max_messages, keep_messages=settings.context_keep_messages,
                        max_tokens=settings.context_max_tokens, not_names=frozenset({"Ringline"}))
    conv.add_greeting(settings.greeting)
    sizes = []
    for i in range(exchanges):
        conv.add_caller(caller_line(i))
        sizes.append(messages_tokens(conv.messages()))
        conv.add_agent(agent_line(i))
        if conv.fold_due():
            conv.fold()
    return conv, sizes


def test_a_200_exchange_call_stays_under_budget_and_remembers_the_callers_name() -> None:
    conv, sizes = long_call()
    assert max(sizes) <= BUDGET, max(sizes)
    system = conv.messages()[0]["content"]
    assert "The caller's name: Sam." in system
    assert "The caller wants: book a table for Tuesday at 7 pm" in system  # what they wanted, from turn one
    assert "Tuesday" in system and "7 pm" in system
    assert "Earlier in this call: Agent: Hi, this is Ringline" in system  # the summary keeps the start
    assert len(conv.messages()) - 1 <= conv.max_messages


def test_between_folds_the_prompt_only_grows_at_its_end() -> None:
    """The local model reuses the prompt prefix it evaluated last turn: folds are rare, and in
    between a turn's prompt starts with the previous turn's whole prompt."""
    conv, _ = long_call(10)
    prompts = []
    for i in range(10, 40):
        conv.add_caller(caller_line(i))
        prompts.append(conv.messages())
        conv.add_agent(agent_line(i))
        if conv.fold_due():
            conv.fold()
    changed = sum(1 for a, b in pairwise(prompts) if b[: len(a)] != a)
    assert changed <= len(prompts) // 4, f"the prefix changed on {changed} of {len(prompts)} turns"


@pytest.mark.integration  # the real model's tokenizer
def test_the_real_prompt_fits_the_local_models_context() -> None:
    """Measured with Qwen2.5's own tokenizer and chat template (skipped without the weights)."""
    llama_cpp = pytest.importorskip("llama_cpp")
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    path = Path(BrainSettings().model_dir) / "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
    if not path.is_file():
        pytest.skip("the local model's weights are not assembled")
    vocab = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
    template = Jinja2ChatFormatter(template=vocab.metadata["tokenizer.chat_template"], eos_token="<|im_end|>",
                                   bos_token="")
    conv, _ = long_call()
    worst = 0
    for i in range(200, 230):  # a few more turns across a fold
        conv.add_caller(caller_line(i))
        prompt = template(messages=conv.messages()).prompt
        tokens = len(vocab.tokenize(prompt.encode(), add_bos=False, special=True))
        assert messages_tokens(conv.messages()) >= tokens, "the estimate must not undercount"
        worst = max(worst, tokens)
        conv.add_agent(agent_line(i))
        if conv.fold_due():
            conv.fold()
    print(f"largest prompt of a 230-exchange call: {worst} tokens (n_ctx {N_CTX})")
    assert worst + MAX_REPLY < N_CTX


def test_a_huge_turn_forces_a_fold_inside_the_budget() -> None:
    conv = Conversation("sys", 20, keep_messages=6, max_tokens=400)
    conv.add_caller("Hi, my name is Sam.")
    conv.add_agent("Hello Sam.")
    for i in range(4):
        conv.add_caller("I was wondering about a lot of things. " * 12)
        conv.add_agent(f"Answer {i}.")
    conv.add_caller("And one more question?")
    assert messages_tokens(conv.messages()) <= 400
    assert "Sam" in conv.messages()[0]["content"]


def test_the_call_state_keeps_entities_and_unanswered_questions() -> None:
    state = CallState(not_names=frozenset({"Ringline"}))
    state.on_caller("Hi, this is Maria. Do you deliver on Saturday? My order 4471 is late.")
    state.on_agent("Let me check that and get back to you.")
    state.on_caller("Also, what time do you open?")
    state.on_agent("We open at nine in the morning.")
    assert state.caller_name == "Maria"
    assert state.dates == ["Saturday"] and state.numbers == ["order 4471"]
    assert state.open_questions == ["Do you deliver on Saturday?"]
    lines = "\n".join(state.lines())
    assert "Questions not answered yet: Do you deliver on Saturday?" in lines
    assert "what time do you open" not in lines.lower()


class Folder(ChatModel):
    """Answers turns briefly, and the fold prompt with a summary of its own."""

    provider = "fake"
    model = "folder"

    def __init__(self) -> None:
        self.turns: list[Messages] = []
        self.folds: list[Messages] = []

    async def _stream_impl(self, messages: Messages, max_tokens: int, stats: StreamStats) -> AsyncIterator[str]:
        if messages[0]["content"] == FOLD_SYSTEM:
            self.folds.append(messages)
            yield "Sam wants a table for Tuesday at 7 pm and asked about the menu."
            return
        self.turns.append(messages)
        await asyncio.sleep(0)
        yield "Sure, noted."


@pytest.mark.service
async def test_a_long_call_on_the_service_folds_with_the_models_summary(make_harness, until) -> None:
    model = Folder()
    async with make_harness(model, history_max_messages=8, context_keep_messages=2, context_summary="llm") as h:
        call_id = await h.start_call()
        await h.greeted()
        for i in range(12):
            text = FIRST if i == 0 else f"What about the menu, item {i}?"
            await h.say(call_id, text, utterance_id=f"u{i}")
            await until(lambda n=i: len(model.turns) == n + 1 and not h.tasks and h.said().count("noted") == n + 1)
            await h.played()
            await until(lambda: not any(t.get_name().endswith("fold") for t in asyncio.all_tasks()), 2)
        last = model.turns[-1]
        assert len(last) - 1 <= 8
        system = last[0]["content"]
        assert model.folds, "the model was asked to summarise the folded turns"
        assert "Sam wants a table for Tuesday at 7 pm and asked about the menu." in system
        assert "The caller's name: Sam." in system


def test_a_model_summary_that_copies_the_example_or_the_transcript_is_not_used() -> None:
    from ringline.services.brain.conversation import Fold
    from ringline.services.brain.folding import usable

    fold = Fold(1, 0, (("user", FIRST), ("assistant", "Sure. Do you need parking?"),
                       ("user", "Yes, is there parking near the restaurant?"), ("assistant", "Yes, on Main Street.")))
    assert usable("Sam booked a table for Tuesday at 7 pm for four people and asked about parking.", fold)
    assert not usable("Lee booked a table for two on Friday at eight; there is a car park behind the building.",
                      fold), "the model's worked example, not this call"
    assert not usable("Caller: Hi, my name is Sam. Agent: Sure.", fold)
    assert not usable("The weather in Paris is sunny and warm today.", fold)
