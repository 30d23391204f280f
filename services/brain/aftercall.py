"""After a call ended: its summary (`call.summary` on the call's event subject, for the call
record and the call report) and, when the caller may be remembered, the call's notes into their
memory (`memory.recall.put`).

This runs after the call's own bus is closed (its tasks are cancelled on close), so the brain
app keeps these jobs itself: each is bounded by `summary_timeout_s` (then the rule-made notes go
out), and on shutdown the jobs in flight stop waiting for the model and publish what the rules
made, within the drain timeout. Voicemail calls have no conversation and get no summary.
The model summarises calls whose summary goes somewhere besides the call record: into the
caller's memory (a known number) or to the agent's call reports; other calls, and calls where
the caller said nothing, get the rule-made summary at once.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ringline.contracts import subjects
from ringline.contracts.codec import unpack
from ringline.contracts.events import CALL_SUMMARY
from ringline.contracts.messages import CallEvent
from ringline.contracts.messages.recall import CallNotes, RecallPutReply, RecallPutRequest

from .accounting import usage_data
from .llm import FallbackChatModel
from .llm.base import ChatModel
from .summary import CallText, Notes, call_text, summarise

if TYPE_CHECKING:
    from .session import BrainSession
    from .settings import BrainSettings

log = logging.getLogger("ringline.brain.aftercall")

PUT_TIMEOUT_S = 5.0
FORGOTTEN = "The caller asked to be forgotten; nothing about them was kept."


@dataclass
class FinishedCall:
    """What the after-call job needs, taken from the session as it closes."""

    call_id: str
    agent_id: str
    number: str  # the caller's normalized number; "" when they cannot be remembered
    text: CallText
    remember: bool = True  # caller memory is on for this agent
    forgotten: bool = False
    followed_up: list[str] = field(default_factory=list)
    last_turn_id: str = ""  # the usage of the summary is charged to it
    model: ChatModel | None = None  # None: rule-made notes only
    max_tokens: int = 80
    timeout_s: float = 12.0


def finished_call(session: BrainSession, settings: BrainSettings) -> FinishedCall:
    """What the after-call job needs from a closing session (the history as the caller heard it)."""
    history, recall = session.history, session.recall
    by_model = settings.call_summary == "llm" or (
        settings.call_summary == "auto" and settings.resolved_chain[0] != "local")
    worth_a_model = by_model and bool(recall.number or session.agent.reports)
    last = history.last("assistant")
    text = call_text([(u.role, u.text) for u in history.turns[history.start:]], history.summary.text,
                     history.state.caller_name, history.state.wants,
                     [u.text for u in history.turns if u.role == "user"])
    return FinishedCall(call_id=session.call_id, agent_id=session.call.agent_id, number=recall.number, text=text,
                        remember=settings.recall, forgotten=recall.forgotten, followed_up=list(recall.followed_up),
                        last_turn_id=last.turn_id if last is not None else "",
                        model=summary_model(session.model) if worth_a_model else None,
                        max_tokens=settings.summary_max_tokens, timeout_s=settings.summary_timeout_s)


def summary_model(model: ChatModel) -> ChatModel | None:
    """The model an after-call summary may use: a chain's cloud links only (the live calls keep
    the local model's single worker; with the cloud down, the rules summarise), or the model
    itself when it is not a chain (an operator who set `call_summary=llm` on the local model)."""
    return model.background() if isinstance(model, FallbackChatModel) else model


class AfterCalls:
    """The brain's after-call jobs: tracked, bounded, drained on shutdown."""

    def __init__(self, broker: Any) -> None:
        self.broker = broker
        self.tasks: set[asyncio.Task[Any]] = set()
        self.done: list[tuple[str, Notes]] = []  # (call id, notes) of the last jobs, for tests and logs
        self._hurry = asyncio.Event()

    def add(self, job: FinishedCall) -> None:
        task = asyncio.create_task(self._run(job), name=f"{job.call_id}:after-call")
        self.tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("after-call job %s failed", task.get_name(), exc_info=task.exception())

    async def _run(self, job: FinishedCall) -> None:
        if job.forgotten:
            notes = Notes(FORGOTTEN, [], "rules")
        else:
            notes = await self._notes(job)
        self.done = [*self.done[-19:], (job.call_id, notes)]
        data: dict[str, Any] = {"summary": notes.summary, "facts": [f.model_dump() for f in notes.facts],
                                "by": notes.by}
        usage = notes.stats.usage() if notes.stats is not None else None
        if usage is not None and job.last_turn_id:
            data["usage"] = usage_data(usage)
        event = CallEvent(call_id=job.call_id, name=CALL_SUMMARY, turn_id=job.last_turn_id, data=data)
        try:
            await self.broker.publish(event, subjects.event(job.call_id))
        except Exception as exc:  # the bus is gone (shutdown): the memory service reports without it
            log.warning("call %s: could not publish its summary: %s: %s", job.call_id, type(exc).__name__, exc)
        log.info("call %s summary (%s): %r %s", job.call_id, notes.by, notes.summary,
                 [f"{f.kind}: {f.text}" for f in notes.facts])
        if job.remember and job.number and not job.forgotten and job.text.caller_spoke:
            await self._remember(job, notes)

    async def _notes(self, job: FinishedCall) -> Notes:
        if job.model is None or self._hurry.is_set():
            return await summarise(job.text, None, job.max_tokens, job.timeout_s)
        work = asyncio.create_task(summarise(job.text, job.model, job.max_tokens, job.timeout_s))
        hurry = asyncio.create_task(self._hurry.wait())
        try:
            await asyncio.wait({work, hurry}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            hurry.cancel()
        if work.done():
            return work.result()
        work.cancel()  # shutting down: no time for the model
        await asyncio.gather(work, return_exceptions=True)
        return await summarise(job.text, None, job.max_tokens, job.timeout_s)

    async def _remember(self, job: FinishedCall, notes: Notes) -> None:
        request = RecallPutRequest(notes=CallNotes(call_id=job.call_id, agent_id=job.agent_id, caller=job.number,
                                                   summary=notes.summary, facts=notes.facts,
                                                   followed_up=job.followed_up))
        try:
            message = await self.broker.request(request, subjects.MEMORY_RECALL_PUT, timeout=PUT_TIMEOUT_S)
            reply = RecallPutReply.model_validate(unpack(message.body))
        except Exception as exc:
            log.error("call %s: could not store the caller's memory: %s: %s", job.call_id, type(exc).__name__, exc)
            return
        if not reply.ok:
            log.error("call %s: the memory service did not store the caller's memory: %s", job.call_id, reply.error)

    async def drain(self, timeout: float) -> None:
        """Shutdown: stop waiting for the model, give the jobs `timeout` seconds, cancel the rest."""
        self._hurry.set()
        if not self.tasks:
            return
        log.info("finishing %d after-call job(s) before shutting down", len(self.tasks))
        _, pending = await asyncio.wait(set(self.tasks), timeout=timeout)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
