"""Drain instead of kill: the edge's own SIGTERM handling.

uvicorn's own SIGTERM handling closes every WebSocket at once (1012) before the app hears of it,
which would cut every call. `DrainingServer` takes SIGTERM itself: the edge turns unready
(`/health` answers 503 "draining", so a load balancer stops sending it calls) and keeps serving
its calls until they end or `drain_deadline_s` passes; then it hands the streams that are left
over (`CallStream.hand_over`: the stream closes, the call does not, and Twilio reconnects it to
another replica through the `<Connect action>` URL) and only then lets uvicorn shut down.
A second SIGTERM hands over at once; SIGINT (Ctrl-C, or `Stack.stop`: the whole stack goes, so
there is no edge to hand calls to) ends the calls at once, as uvicorn does, and a repeated SIGINT
does not skip the orderly shutdown that publishes their ends.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from types import FrameType

import uvicorn

from .registry import CallRegistry

log = logging.getLogger("ringline.telephony.drain")

HANDOVER_WAIT_S = 5.0  # for handed-over streams to close before uvicorn takes over


async def drain(registry: CallRegistry, deadline_s: float, now: asyncio.Event | None = None) -> None:
    """Serve the calls until they end or `deadline_s` (or `now` is set), then hand the rest over."""
    registry.draining = True
    started = time.monotonic()
    live = len(registry.streams)
    log.info("draining: unready, serving %d call(s) for up to %.0f s", live, deadline_s)
    end = started + deadline_s
    while registry.streams and time.monotonic() < end and not (now is not None and now.is_set()):
        await asyncio.sleep(0.1)
    left = list(registry.streams)
    for stream in left:
        stream.hand_over()
    if left:
        waiters = [asyncio.ensure_future(s.done.wait()) for s in left]
        _, late = await asyncio.wait(waiters, timeout=HANDOVER_WAIT_S)
        for waiter in late:
            waiter.cancel()
    log.info("drained in %.1f s: %d call(s) ended here, %d handed over", time.monotonic() - started,
             live - len(left), len(left))


class DrainingServer(uvicorn.Server):
    """A uvicorn server whose SIGTERM drains `registry` before the usual shutdown."""

    def __init__(self, config: uvicorn.Config, registry: CallRegistry, deadline_s: float) -> None:
        super().__init__(config)
        self.registry = registry
        self.deadline_s = deadline_s
        self._drain_requested = False
        self._hurry: asyncio.Event | None = None
        self._drain: asyncio.Task[None] | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig != signal.SIGTERM:  # SIGINT: end the calls now (1012), as uvicorn does; a second one
            if sig not in self._captured_signals:  # does not skip the shutdown (`Stack.stop` after Ctrl-C)
                self._captured_signals.append(sig)
            self.should_exit = True
            return
        if self._drain_requested and self._hurry is not None:
            self._hurry.set()  # a second SIGTERM: hand over now (set from the loop's own thread)
        self._drain_requested = True

    async def on_tick(self, counter: int) -> bool:
        if self._drain_requested and self._drain is None:
            self._hurry = asyncio.Event()
            self._drain = asyncio.create_task(drain(self.registry, self.deadline_s, self._hurry),
                                              name="telephony:drain")
            self._drain.add_done_callback(self._drained)
        return await super().on_tick(counter)

    def _drained(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("draining failed", exc_info=task.exception())
        self._captured_signals.append(signal.SIGTERM)  # exit as a SIGTERM'd process would
        self.should_exit = True
