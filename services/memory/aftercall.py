"""After a call ends: wait (a bounded time) for the brain's summary, store it, then deliver the
call report to each webhook and mark each delivery in the record.

This outlives the call's session, so it runs as tasks the service tracks; on shutdown they get
`drain_timeout_s` to finish (no more waiting for summaries), and a delivery still unfinished
then is marked lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ringline.contracts import subjects
from ringline.contracts.agents import Agent
from ringline.contracts.events import CALL_SUMMARY
from ringline.contracts.messages import CallEvent
from ringline.contracts.messages.records import CallRecord, ReportDelivery
from ringline.contracts.runtime import CallBus

from .report_payload import report_body
from .reports import ReportSender, ReportTarget
from .store import CallStore

if TYPE_CHECKING:
    from .session import MemorySession

log = logging.getLogger("ringline.memory.aftercall")


def report_targets(agent: Agent, global_urls: Sequence[str], global_secret: str | None,
                   env: Mapping[str, str]) -> list[ReportTarget]:
    """The agent's webhooks (key from the variable each names), then the global ones; each URL once."""
    targets: dict[str, ReportTarget] = {}
    for report in agent.reports:
        targets.setdefault(report.url, ReportTarget(report.url, env.get(report.secret_env) or None))
    for url in global_urls:
        targets.setdefault(url, ReportTarget(url, global_secret or None))
    for target in targets.values():
        if target.secret is None:
            log.warning("no signing key for call reports to %s: they go out unsigned", target.url)
    return list(targets.values())


class AfterCall:
    def __init__(self, broker: Any, store: CallStore, sender: ReportSender, summary_wait_s: float,
                 targets: Any) -> None:
        self.broker = broker
        self.store = store
        self.sender = sender
        self.summary_wait_s = summary_wait_s
        self.targets = targets  # Agent -> list[ReportTarget]
        self.tasks: set[asyncio.Task[None]] = set()
        self._draining = asyncio.Event()

    async def __call__(self, session: MemorySession) -> None:
        """Called by the session as it closes: take over its subscription to the call's events,
        then hand the rest to a tracked task."""
        recorder = session.recorder
        summary = asyncio.Event()
        if recorder.record.summary is not None or recorder.record.voicemail is not None:
            summary.set()  # here already, or never coming: a voicemail has no conversation to sum up
        bus = CallBus(self.broker, session.call_id)

        async def on_event(event: CallEvent) -> None:
            if recorder.on_event(event):
                if event.name == CALL_SUMMARY:
                    summary.set()
                await self._save(recorder.record)

        # The session's own subscription carries on for the after-call (no await until `closing`:
        # whatever comes before is the session's, whatever comes after is ours, nothing in between).
        session.after_event = on_event
        session.closing = True
        if not session.bus.hand_over(subjects.event(session.call_id), bus):  # `start` always subscribes
            log.error("call %s: its session had no subscription to its events; reporting without a summary",
                      session.call_id)
            summary.set()
        targets = self.targets(session.agent)
        task = asyncio.create_task(self._finish(session, bus, summary, targets),
                                   name=f"{session.call_id}:after-call")
        self.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("after-call task %s failed", task.get_name(), exc_info=task.exception())

    async def _finish(self, session: MemorySession, bus: CallBus, summary: asyncio.Event,
                      targets: list[ReportTarget]) -> None:
        record = session.recorder.record
        try:
            await self._wait_for(summary)
            await bus.close()
            await session.charge()  # the summary's own usage
            if not targets:
                await self._save(record)
                return
            body = report_body(record)
            record.reports = [ReportDelivery(url=t.url, signed=t.secret is not None) for t in targets]
            await self._save(record)

            async def saved(_: ReportDelivery) -> None:
                await self._save(record)

            await asyncio.gather(*(self.sender.deliver(t, body, d, on_attempt=saved)
                                   for t, d in zip(targets, record.reports, strict=True)))
        except asyncio.CancelledError:
            for delivery in record.reports:
                if delivery.status == "pending":
                    delivery.status = "lost"
                    delivery.last_error = "; ".join(filter(None, [delivery.last_error, "memory service shut down"]))
            await self._save(record)
            raise
        finally:
            await bus.close()

    async def _wait_for(self, summary: asyncio.Event) -> None:
        if summary.is_set() or self._draining.is_set():
            return
        waits = [asyncio.create_task(summary.wait()), asyncio.create_task(self._draining.wait())]
        try:
            await asyncio.wait(waits, timeout=self.summary_wait_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()

    async def _save(self, record: CallRecord) -> None:
        try:
            await self.store.put(record)
        except Exception:
            log.exception("saving the record of call %s failed", record.call_id)

    async def drain(self, timeout: float) -> None:
        """Stop waiting for summaries, give deliveries `timeout` seconds, then mark the rest lost."""
        self._draining.set()
        if not self.tasks:
            return
        log.info("finishing %d call report(s) before shutting down", len(self.tasks))
        _, pending = await asyncio.wait(set(self.tasks), timeout=timeout)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
