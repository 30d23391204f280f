"""How a call opens, besides the greeting: whether the agent takes it at all, and the
prompt-cache warm-up that runs while the greeting plays.

Admission (`admission`): a call goes to voicemail instead when the caller is not on the agent's
allow-list, it is outside business hours, the agent already has `max_concurrent_calls` calls,
or the agent is at its daily spend cap. The last two need the memory service
(`memory.spend.get`, request/reply, answering the spend today and the other calls in progress);
a memory service that does not answer in time never keeps a call from being answered.
Outbound calls are always taken: the agent placed them.

Warm-up: one cheap request (`max_tokens=1`) with the call's cacheable prefix, in the background,
so the first answer reads the prompt from Claude's cache. It never delays the greeting; what it
cost is charged to the greeting turn (`llm.warmup` event with `data["usage"]`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from ringline.contracts import subjects
from ringline.contracts.agents import Agent
from ringline.contracts.codec import unpack
from ringline.contracts.events import LLM_WARMUP
from ringline.contracts.messages import CallEvent, CallStart, Control, SpendReply, SpendRequest
from ringline.contracts.runtime import CallBus

from .accounting import usage_data
from .llm.base import ChatModel, ToolSpec
from .outbound import outbound_opening

if TYPE_CHECKING:
    from .settings import BrainSettings


class Speaker(Protocol):
    """Says lines on the call (the session: a goodbye is a turn-taking action there)."""

    async def say_line(self, text: str, kind: Any, in_reply_to: str = "") -> str: ...

    async def say_goodbye(self, text: str, reason: str) -> None: ...

log = logging.getLogger("ringline.brain.opening")

WARM_TIMEOUT_S = 10.0


async def admission(bus: CallBus, call: CallStart, agent: Agent, settings: BrainSettings) -> str:
    """Why this call goes to voicemail, or "" when the agent answers it."""
    if call.direction == "outbound":
        return ""
    cap = settings.daily_spend_cap
    reply = None
    if cap is not None or agent.limits.max_concurrent_calls is not None:
        reply = await agent_status(bus, call.agent_id, settings.spend_check_timeout_s)
    limits = agent.limits.model_copy(update={"daily_spend": cap})
    reason = agent.model_copy(update={"limits": limits}).admit(
        call.caller, datetime.now(UTC),
        active_calls=reply.active_calls if reply is not None else None,
        spent_today=reply.spent if reply is not None else None,
    )
    if reason:
        log.warning("call %s from %r to agent %s goes to voicemail: %s", call.call_id, call.caller,
                    call.agent_id, reason)
    return reason


def start_warm_up(bus: CallBus, settings: BrainSettings, model: ChatModel, tools: Sequence[ToolSpec],
                  greeting_turn: Callable[[], Awaitable[str]]) -> None:
    if settings.warm_prompt_cache and model.capabilities.prompt_cache and not bus.closed:
        bus.spawn(warm_up(bus, model, settings.persona, tools, greeting_turn), "warm-up")


async def agent_status(bus: CallBus, agent_id: str, timeout: float) -> SpendReply | None:
    """The agent's spend today and other live calls, from the memory service; None when it does
    not answer in time."""
    try:
        request = SpendRequest(agent_id=agent_id, call_id=bus.call_id)
        message = await bus.broker.request(request, subjects.MEMORY_SPEND_GET, timeout=timeout)
        return SpendReply.model_validate(unpack(message.body))
    except Exception as exc:  # a timeout, no responders, a malformed answer: answer the call anyway
        log.warning("call %s: no answer from memory about agent %s in %.1fs (%s: %s); no limits applied",
                    bus.call_id, agent_id, timeout, type(exc).__name__, exc)
        return None


async def warm_up(bus: CallBus, model: ChatModel, system_prompt: str, tools: Sequence[ToolSpec],
                  greeting_turn: Callable[[], Awaitable[str]]) -> None:
    """Prime the model's prompt cache; report what it cost on the greeting turn."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(WARM_TIMEOUT_S):
            usage = await model.warm([{"role": "system", "content": system_prompt}], tools)
    except Exception as exc:  # only a missed saving: the turns go on as usual
        log.warning("call %s: prompt-cache warm-up failed: %s", bus.call_id, exc)
        return
    if usage is None:
        return
    ms = round((time.monotonic() - started) * 1000, 1)
    log.info("call %s: prompt cache warmed in %.0f ms (%s: %d written, %d read)", bus.call_id, ms,
             usage.llm_model, usage.cache_creation_input_tokens, usage.cache_read_input_tokens)
    turn_id = await greeting_turn()
    if not turn_id:  # the call ended before its greeting: no turn to charge it to
        return
    event = CallEvent(call_id=bus.call_id, name=LLM_WARMUP, turn_id=turn_id,
                      data={"usage": usage_data(usage), "model": usage.llm_model, "ms": ms})
    await bus.publish(event, subjects.event(bus.call_id))


async def open_outbound(bus: CallBus, call: CallStart, settings: BrainSettings, voice: Speaker) -> str | None:
    """An outbound call's first words, said here: the purpose to a person, a message (then a
    hang-up) to a machine, nothing but a hang-up to a fax. The greeting turn's id when the
    conversation goes on; "" when the call is ending; None for an inbound call (greet as usual)."""
    opening = outbound_opening(call, settings)
    if opening is None:
        return None
    log.info("call %s: outbound, answered by %s", call.call_id, opening.answered_by or "unknown")
    if opening.hang_up and not opening.text:
        await bus.publish(Control(call_id=call.call_id, action="hangup", reason=opening.reason),
                          subjects.control(call.call_id))
        return ""
    if opening.kind == "goodbye":
        await voice.say_goodbye(opening.text, opening.reason)
        return ""
    return await voice.say_line(opening.text, "greeting")
