"""Claiming calls for one stage: leases, takeover, checkpoints, drain.

Every replica of a stage hears `calls.start` and races to create the call's lease; the one that
creates it owns the call (a busier replica waits a little first, so the least loaded one
usually wins; one at capacity does not try). Owners renew their leases; every replica also
scans the live-call registry, so a call whose lease lapsed (its owner died) or that no replica
could take when it started (all were loading, restarting or full) is claimed as soon as one
can. A new owner restores the stage's last checkpoint before it starts serving.

On SIGTERM (`drain`) a replica stops claiming at once, serves its calls until they end or the
drain deadline passes, then checkpoints and releases them for another replica to take.

Without JetStream (the in-memory test broker) a replica claims every call it hears about.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from faststream.nats import NatsBroker, NatsMessage
from nats.errors import NoRespondersError
from nats.js.errors import ServiceUnavailableError

from .. import subjects
from ..events import CALL_REFUSED, STAGE_QUERY, STAGE_READY, STAGE_RELEASED, STAGE_TAKEOVER
from ..messages import CallEnd, CallEvent, CallStart, Checkpoint, Lease, LiveCall, now
from .calls import CallBus, CallSession
from .leases import Checkpoints, LeaseTable, Registry
from .load import LoadGauge
from .settings import ServiceSettings
from .telemetry import extract_context

log = logging.getLogger("ringline.calls")

SessionFactory = Callable[[CallStart, CallBus], CallSession | Awaitable[CallSession]]
CHECKPOINT_EVERY_S = 0.5
REGISTRY_READ_EVERY_S = 1.0  # the calls this replica knows of, read one by one (no consumer)
REGISTRY_LIST_EVERY_S = 10.0  # the whole bucket (a consumer): calls this replica never heard start
MAX_CLAIM_DELAY_S = 0.05  # a fully loaded replica waits this long before racing for a new call


@dataclass
class Owned:
    session: CallSession
    lease: Lease
    revision: int  # 0: no lease (no JetStream)
    saved: Any = None  # the last snapshot written


@dataclass
class Stores:
    registry: Registry
    leases: LeaseTable
    checkpoints: Checkpoints


class CallRouter:
    """Claims calls for one stage and keeps a session per owned call."""

    def __init__(self, broker: NatsBroker, stage: str, factory: SessionFactory,
                 settings: ServiceSettings | None = None, gauge: LoadGauge | None = None, *,
                 closes_ended: bool = False) -> None:
        self.broker = broker
        self.stage = stage
        self.factory = factory
        self.settings = settings or ServiceSettings()
        self.replica = self.settings.replica_id
        self.gauge = gauge or LoadGauge.from_settings(self.settings)
        self.closes_ended = closes_ended  # memory: claim a call that ended with no owner, to close its record
        self.sessions: dict[str, CallSession] = {}
        self.owned: dict[str, Owned] = {}
        self.draining = False
        self.takeovers = 0
        self._stores: Stores | None = None
        self._no_jetstream = False
        self._open_lock = asyncio.Lock()
        self._claiming: set[str] = set()
        self._live: dict[str, LiveCall] = {}
        self._registered: set[str] = set()  # calls read from the registry at least once
        self._over: set[str] = set()  # calls that ended here: never claimed again from a stale registry read
        self._tasks: list[asyncio.Task[Any]] = []
        broker.subscriber(subjects.CALLS_START)(self._on_start)
        broker.subscriber(subjects.CALLS_END)(self._on_end)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """After the broker connected: open the buckets and start renewing and scanning."""
        self.gauge.start()
        if await self._open() is None and self._no_jetstream:
            return
        loops = ((self._renew_loop, "renew"), (self._scan_loop, "scan"), (self._checkpoint_loop, "checkpoint"))
        for loop, name in loops:
            self._tasks.append(asyncio.create_task(loop(), name=f"{self.stage}:{name}"))

    async def _open(self) -> Stores | None:
        async with self._open_lock:
            if self._stores is None and not self._no_jetstream:
                try:
                    self._stores = Stores(await Registry.open(self.broker),
                                          await LeaseTable.open(self.broker, self.stage, self.settings.lease_ttl_s),
                                          await Checkpoints.open(self.broker))
                except Exception as exc:
                    if self._is_test_broker():
                        self._no_jetstream = True
                        log.info("%s: no JetStream (%s); claiming every call without leases", self.stage, exc)
                    elif isinstance(exc, NoRespondersError | ServiceUnavailableError):
                        self._no_jetstream = True
                        log.error("%s: the NATS server has no JetStream: calls are claimed without leases, "
                                  "so a replica that dies takes its calls with it (start nats-server with -js)",
                                  self.stage)
                    else:  # NATS not reachable yet: the scan loop tries again
                        log.warning("%s: opening the lease buckets failed: %s", self.stage, exc)
            return self._stores

    def _is_test_broker(self) -> bool:
        """FastStream's in-memory `TestNatsBroker` has no NATS connection (a real broker has one
        by the time anything here runs: after start-up, or when a message arrived)."""
        connection = getattr(self.broker, "_connection", None)
        return connection is None or "Fake" in type(connection).__name__

    async def drain(self) -> None:
        """SIGTERM: stop claiming, serve owned calls until they end or the deadline, then hand
        the rest over (checkpoint, release the lease) for another replica to take."""
        self.draining = True
        await self.gauge.stop()
        deadline = time.monotonic() + self.settings.drain_timeout_s
        if self.sessions:
            log.info("%s draining: %d calls, up to %.0f s", self.stage, len(self.sessions),
                     self.settings.drain_timeout_s)
        while self.sessions and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._stores is None:  # nobody to hand over to: end the calls here
            await asyncio.gather(*(self.end(cid, "service shutting down") for cid in list(self.sessions)))
            return
        await asyncio.gather(*(self._hand_over(cid, "drained") for cid in list(self.sessions)))

    # ------------------------------------------------------------------ claiming

    async def _on_start(self, call: CallStart, msg: NatsMessage) -> None:
        headers = dict(msg.headers or {})
        if self.draining or call.call_id in self.sessions:
            return
        stores = await self._open()
        if stores is None and not self._no_jetstream:
            return  # not ready: the scan loop claims it from the registry once we are
        if stores is not None:
            self._live.setdefault(call.call_id, LiveCall(call=call, headers=headers))
            await asyncio.sleep(MAX_CLAIM_DELAY_S * min(1.0, self.gauge.load(len(self.sessions))))
        await self._claim(call, headers, announce_refusal=True)

    async def _claim(self, call: CallStart, headers: dict[str, str], announce_refusal: bool = False) -> None:
        call_id = call.call_id
        if self.draining or call_id in self.sessions or call_id in self._claiming:
            return
        ok, why = self.gauge.can_claim(len(self.sessions))
        if not ok:
            if announce_refusal:
                log.warning("%s refused call %s: %s", self.stage, call_id, why)
                await self._event(call_id, CALL_REFUSED, {"reason": why})
            return
        self._claiming.add(call_id)
        try:
            await self._take(call, headers)
        finally:
            self._claiming.discard(call_id)

    async def _take(self, call: CallStart, headers: dict[str, str]) -> None:
        call_id, stores = call.call_id, self._stores
        lease = Lease(call_id=call_id, stage=self.stage, owner=self.replica)
        revision, checkpoint = 0, None
        if stores is not None:
            checkpoint = await stores.checkpoints.load(self.stage, call_id)
            lease = lease.model_copy(update={"takeover": checkpoint is not None})
            acquired = await stores.leases.acquire(lease)
            if acquired is None:
                return  # another replica holds it
            revision = acquired
        bus = CallBus(self.broker, call_id)
        try:
            made = self.factory(call, bus)
            session = await made if inspect.isawaitable(made) else made
            session.trace_context = extract_context(headers)
            if checkpoint is not None:
                session.taken_over = True
                session.restore(checkpoint.state)
            self.sessions[call_id] = session
            self.owned[call_id] = Owned(session, lease, revision)
            await session.start()
        except Exception:
            log.exception("%s could not start call %s", self.stage, call_id)
            await self.end(call_id, "stage failed to start")
            await bus.close()
            if stores is not None and revision:
                await stores.leases.release(call_id, revision)
            return
        await self._save(call_id)
        if checkpoint is not None:
            self.takeovers += 1
            gap = max(0.0, now() - checkpoint.at)
            log.warning("%s took call %s over from %s (last checkpoint %.1f s ago)", self.stage, call_id,
                        checkpoint.owner, gap)
            await self._event(call_id, STAGE_TAKEOVER, {"previous": checkpoint.owner, "gap_s": round(gap, 3),
                                                        "restored": bool(checkpoint.state)})
        log.info("%s claimed call %s (%d active)", self.stage, call_id, len(self.sessions))
        await self._announce_ready(session)

    async def _announce_ready(self, session: CallSession) -> None:
        """Tell the other stages this one is listening (the brain waits for TTS before greeting),
        and tell again whenever asked: a stage that subscribed later may have missed it."""
        call_id = session.call_id
        ready = CallEvent(call_id=call_id, name=STAGE_READY, data={"stage": self.stage, "replica": self.replica})

        async def answer_query(event: CallEvent) -> None:
            if event.name == STAGE_QUERY:
                await session.bus.publish(ready, subjects.event(call_id))

        await session.bus.subscribe(subjects.event(call_id), answer_query)
        await session.bus.publish(ready, subjects.event(call_id))

    async def _event(self, call_id: str, name: str, data: dict[str, Any]) -> None:
        event = CallEvent(call_id=call_id, name=name, data={"stage": self.stage, "replica": self.replica, **data})
        try:
            await self.broker.publish(event, subjects.event(call_id))
        except Exception as exc:
            log.warning("%s: publishing %s for call %s failed: %s", self.stage, name, call_id, exc)

    # ------------------------------------------------------------------ ending and letting go

    async def _on_end(self, end: CallEnd) -> None:
        self._over.add(end.call_id)
        await self.end(end.call_id, end.reason)

    async def end(self, call_id: str, reason: str) -> None:
        """The call is over: close the session, release the lease, drop the checkpoint."""
        self._over.add(call_id)
        session = self.sessions.pop(call_id, None)
        owned = self.owned.pop(call_id, None)
        if session is None:
            return
        try:
            await session.close(reason)
        except Exception:
            log.exception("%s: closing call %s failed", self.stage, call_id)
        finally:
            await session.bus.close()
        if self._stores is not None and owned is not None and owned.revision:
            try:
                await self._stores.checkpoints.drop(self.stage, call_id)  # first: nobody finishes it again
                await self._stores.leases.release(call_id, owned.revision)
            except Exception as exc:
                log.warning("%s: cleaning up call %s failed: %s", self.stage, call_id, exc)
        log.info("%s released call %s: %s", self.stage, call_id, reason)

    async def _hand_over(self, call_id: str, reason: str) -> None:
        """Checkpoint and release a call that goes on elsewhere."""
        await self._save(call_id, force=True)
        owned = self.owned.get(call_id)
        await self._let_go(call_id, reason)
        if owned is not None and owned.revision and self._stores is not None:
            try:
                await self._stores.leases.release(call_id, owned.revision)
            except Exception as exc:  # it lapses by itself
                log.warning("%s: releasing call %s failed: %s", self.stage, call_id, exc)
        await self._event(call_id, STAGE_RELEASED, {"reason": reason})

    async def _let_go(self, call_id: str, reason: str) -> None:
        session = self.sessions.pop(call_id, None)
        self.owned.pop(call_id, None)
        if session is None:
            return
        try:
            await session.detach()
        except Exception:
            log.exception("%s: detaching call %s failed", self.stage, call_id)
        finally:
            await session.bus.close()
        log.warning("%s let go of call %s: %s", self.stage, call_id, reason)

    # ------------------------------------------------------------------ background loops

    async def _renew_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.lease_renew_s)
            stores = self._stores
            if stores is None:
                continue
            await asyncio.gather(*(self._renew(stores, cid) for cid in list(self.owned)), return_exceptions=True)

    async def _renew(self, stores: Stores, call_id: str) -> None:
        owned = self.owned.get(call_id)
        if owned is None or not owned.revision:
            return
        lease = owned.lease.model_copy(update={"renewed_at": now()})
        try:
            revision = await stores.leases.renew(lease, owned.revision)
        except Exception as exc:  # NATS away: keep serving, try again next round
            log.warning("%s: renewing the lease on call %s failed: %s", self.stage, call_id, exc)
            return
        if revision is None:
            await self._let_go(call_id, "its lease was taken by another replica")
        elif call_id in self.owned:
            owned.lease, owned.revision = lease, revision

    async def _checkpoint_loop(self) -> None:
        while True:
            await asyncio.sleep(CHECKPOINT_EVERY_S)
            for call_id in list(self.owned):
                await self._save(call_id)

    async def _save(self, call_id: str, force: bool = False) -> None:
        owned, stores = self.owned.get(call_id), self._stores
        if owned is None or stores is None:
            return
        try:
            state = owned.session.snapshot() or {}
        except Exception:
            log.exception("%s: snapshot of call %s failed", self.stage, call_id)
            return
        if not force and owned.saved is not None and state == owned.saved:
            return
        try:
            checkpoint = Checkpoint(call_id=call_id, stage=self.stage, owner=self.replica, state=state)
            await stores.checkpoints.save(checkpoint)
            owned.saved = state
        except Exception as exc:
            log.warning("%s: checkpoint of call %s failed: %s", self.stage, call_id, exc)

    async def _scan_loop(self) -> None:
        last_read = last_list = 0.0
        while True:
            await asyncio.sleep(self.settings.claim_scan_s)
            try:
                if time.monotonic() - last_read >= REGISTRY_READ_EVERY_S:
                    listing = time.monotonic() - last_list >= REGISTRY_LIST_EVERY_S
                    await self._read_registry(listing)
                    last_read = time.monotonic()
                    if listing:
                        last_list = last_read
                await self._scan()
            except Exception as exc:
                log.warning("%s: scanning for unowned calls failed: %s", self.stage, exc)

    async def _read_registry(self, listing: bool) -> None:
        stores = await self._open()
        if stores is None:
            return
        if listing:
            live = await stores.registry.all()
        else:
            live = {}
            for call_id in list(self._live):
                entry = await stores.registry.get(call_id)
                if entry is not None:
                    live[call_id] = entry
        for call_id in list(self.sessions):  # a call that is over, or whose edge vanished for good
            entry = live.get(call_id)
            # Only a call that was in the registry can lapse from it: one that came by `calls.start`
            # alone (its edge could not write the registry) is served until `calls.end`.
            if (entry is None and call_id in self._registered and call_id in self._live
                    and self._live[call_id].updated_at < now() - 1):
                if await stores.registry.get(call_id) is None:  # it was there and lapsed (asked directly:
                    await self.end(call_id, "call no longer live")  # a bucket-wide read can miss an entry)
            elif entry is not None and entry.ended:
                await self.end(call_id, entry.end_reason or "call ended")
        self._registered = (self._registered | set(live)) & (set(live) | set(self.sessions))
        self._live = live
        self._over &= set(live)  # forget ended calls once the registry has let them lapse

    async def _scan(self) -> None:
        stores = self._stores
        if stores is None or self.draining:
            return
        for call_id, live in list(self._live.items()):
            if call_id in self.sessions or call_id in self._claiming:
                continue
            ended = live.ended or call_id in self._over
            if (ended and not self.closes_ended) or self.stage in live.closed_to:
                continue
            if not self.gauge.can_claim(len(self.sessions))[0]:
                return
            if await stores.leases.holder(call_id) is not None:
                continue
            if ended and await stores.checkpoints.load(self.stage, call_id) is None:
                continue  # closed by its owner (which drops the checkpoint), or never served: nothing to finish
            await self._claim(live.call, live.headers)
            if ended and call_id in self.sessions:  # memory: close the record it never saw end
                await self.end(call_id, live.end_reason or "call ended")
