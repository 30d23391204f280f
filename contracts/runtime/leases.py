"""Call ownership in JetStream key-value buckets: the live-call registry, leases, checkpoints.

- `ringline-calls`: one `LiveCall` per call, keyed by call id. The edge writes it at `start`
  and rewrites it while the stream lives (the bucket's TTL drops a call whose edge vanished
  with nobody to reconnect it); at the end it is marked `ended` and lapses a while later.
  Every replica of every stage watches it, so a replica that starts after a call began
  still finds the call (claims are durable).
- `ringline-leases-<stage>`: one `Lease` per call the stage serves. Created atomically (only
  one replica can create a key), renewed by compare-and-swap on its revision, lapsing after
  the bucket's TTL when its owner dies. A replica that finds a live call with no lease takes
  it over.
- `ringline-checkpoints`: `<stage>.<call_id>` -> `Checkpoint`, what a new owner resumes from.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from nats.js.api import StorageType
from nats.js.errors import BadRequestError, KeyNotFoundError, KeyWrongLastSequenceError, NoKeysError
from nats.js.kv import KeyValue

from ..codec import MalformedMessage, pack, unpack
from ..messages import CallEnd, CallStart, Checkpoint, Lease, LiveCall, now

log = logging.getLogger("ringline.leases")

CALLS_BUCKET = "ringline-calls"
CHECKPOINTS_BUCKET = "ringline-checkpoints"
REGISTRY_TTL_S = 30.0  # a call whose edge stopped renewing it (and never came back) is gone after this
REGISTRY_RENEW_S = 5.0
CHANGE_TRIES = 5  # writers of one entry: the serving edge's keep-alive, its end, a closing to a stage
CHECKPOINT_TTL_S = 6 * 3600.0


class RegistryBusy(Exception):
    """A registry entry changed under every rewrite tried."""


def lease_bucket(stage: str) -> str:
    return f"ringline-leases-{stage}"


async def open_bucket(broker: Any, bucket: str, description: str, ttl: float | None, replicas: int = 1) -> KeyValue:
    """A file-backed bucket with one value per key (surviving nats-server restarts), declared if
    missing. Replicas race to declare it with the same settings, which JetStream accepts; one
    declared before with other settings (an operator changed a TTL or the replica count) is used as
    it is, with a warning, rather than failing every read and write. Anything else (no JetStream,
    not connected, an in-memory test broker) is the caller's to handle."""
    try:
        return await broker.key_value(bucket, storage=StorageType.FILE, history=1, description=description, ttl=ttl,
                                      replicas=replicas)
    except BadRequestError as exc:  # declared before with another TTL (JetStream: 400, other configuration)
        log.warning("bucket %s could not be declared as asked (%s); using it as it is", bucket, exc)
        return await broker.key_value(bucket, declare=False)


class LazyBucket:
    """A bucket opened (declared if missing) on first use, shared by concurrent users; a failed
    open is tried again by the next use."""

    def __init__(self, broker: Any, bucket: str, description: str, ttl: float | None) -> None:
        self.broker = broker
        self.bucket = bucket
        self.description = description
        self.ttl = ttl
        self._kv: KeyValue | None = None
        self._lock = asyncio.Lock()

    async def open(self) -> KeyValue:
        async with self._lock:
            if self._kv is None:
                self._kv = await open_bucket(self.broker, self.bucket, self.description, self.ttl)
            return self._kv


def _decode(model: type[Any], value: bytes | None) -> Any | None:
    if not value:
        return None
    try:
        return model.model_validate(unpack(value))
    except (MalformedMessage, ValueError) as exc:
        log.warning("ignoring an unreadable %s entry: %s", model.__name__, exc)
        return None


class Registry:
    """The live-call registry, as the edge writes it and every stage reads it."""

    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv

    @classmethod
    async def open(cls, broker: Any) -> Registry:
        return cls(await open_bucket(broker, CALLS_BUCKET, "Ringline calls in progress", REGISTRY_TTL_S))

    async def put(self, live: LiveCall) -> None:
        await self.kv.put(live.call_id, pack(live))

    async def get(self, call_id: str) -> LiveCall | None:
        try:
            entry = await self.kv.get(call_id)
        except KeyNotFoundError:
            return None
        return _decode(LiveCall, entry.value)

    async def change(self, call_id: str, edit: Callable[[LiveCall], LiveCall | None]) -> LiveCall | None:
        """Rewrite a live call's entry with `edit` (None: leave it as it is), by compare-and-swap:
        the keep-alive, closing the call to a stage and marking it ended never undo one another.
        The entry as written, or None when there was none, it was ended or `edit` kept it."""
        for _ in range(CHANGE_TRIES):
            try:
                entry = await self.kv.get(call_id)
            except KeyNotFoundError:
                return None
            live = _decode(LiveCall, entry.value)
            changed = None if live is None or live.ended else edit(live)
            if changed is None:
                return None
            try:
                await self.kv.update(call_id, pack(changed), last=entry.revision)
            except KeyWrongLastSequenceError:  # written meanwhile: edit what is there now
                continue
            return changed
        raise RegistryBusy(f"call {call_id}: the registry entry kept changing under {CHANGE_TRIES} rewrites")

    async def all(self) -> dict[str, LiveCall]:
        """Every call in the registry, ended ones included (one ordered read of the bucket)."""
        calls: dict[str, LiveCall] = {}
        try:
            watcher = await self.kv.watchall(ignore_deletes=True, inactive_threshold=2.0)  # gone soon after
        except NoKeysError:
            return calls
        try:
            async with asyncio.timeout(5.0):
                async for entry in watcher:
                    if entry is None:  # every current entry has been delivered
                        break
                    live = _decode(LiveCall, entry.value)
                    if live is not None:
                        calls[live.call_id] = live
        finally:
            await watcher.stop()
        return calls


class LeaseTable:
    """One stage's leases: acquire, renew, release, look up."""

    def __init__(self, kv: KeyValue, stage: str) -> None:
        self.kv = kv
        self.stage = stage

    @classmethod
    async def open(cls, broker: Any, stage: str, ttl_s: float) -> LeaseTable:
        bucket = lease_bucket(stage)
        return cls(await open_bucket(broker, bucket, f"Ringline {stage} leases", ttl_s), stage)

    async def acquire(self, lease: Lease) -> int | None:
        """The lease's revision if this replica now holds it, None if another one does."""
        try:
            return await self.kv.create(lease.call_id, pack(lease))
        except KeyWrongLastSequenceError:
            return None

    async def renew(self, lease: Lease, revision: int) -> int | None:
        """The new revision, or None when the lease is no longer ours (lapsed and taken, or
        lapsed and free: then it is taken back at once if nobody else did)."""
        try:
            return await self.kv.update(lease.call_id, pack(lease), last=revision)
        except KeyWrongLastSequenceError:
            holder = await self.holder(lease.call_id)
            if holder is None:  # it lapsed (NATS was away, or our loop stalled) and nobody took it
                return await self.acquire(lease)
            return None

    async def release(self, call_id: str, revision: int) -> None:
        try:
            await self.kv.delete(call_id, last=revision)
        except KeyWrongLastSequenceError:
            pass  # someone else holds it already

    async def holder(self, call_id: str) -> Lease | None:
        try:
            entry = await self.kv.get(call_id)
        except KeyNotFoundError:  # never held, lapsed, or released (KeyDeletedError is one of these)
            return None
        return _decode(Lease, entry.value)


class Checkpoints:
    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv

    @classmethod
    async def open(cls, broker: Any) -> Checkpoints:
        return cls(await open_bucket(broker, CHECKPOINTS_BUCKET, "Ringline per-call checkpoints", CHECKPOINT_TTL_S))

    @staticmethod
    def key(stage: str, call_id: str) -> str:
        return f"{stage}.{call_id}"

    async def save(self, checkpoint: Checkpoint) -> None:
        await self.kv.put(self.key(checkpoint.stage, checkpoint.call_id), pack(checkpoint))

    async def load(self, stage: str, call_id: str) -> Checkpoint | None:
        try:
            entry = await self.kv.get(self.key(stage, call_id))
        except KeyNotFoundError:
            return None
        return _decode(Checkpoint, entry.value)

    async def drop(self, stage: str, call_id: str) -> None:
        try:
            await self.kv.purge(self.key(stage, call_id))
        except Exception as exc:  # it lapses by itself
            log.debug("dropping checkpoint %s of %s failed: %s", stage, call_id, exc)


class CallAnnouncer:
    """The edge's side of the registry: a call is announced at `start`, kept alive while its
    stream lives (by whichever edge serves it now), and marked ended when it is over."""

    def __init__(self, broker: Any) -> None:
        self.broker = broker
        self._registry: Registry | None = None
        self._lock = asyncio.Lock()

    async def registry(self) -> Registry | None:
        async with self._lock:
            if self._registry is None:
                try:
                    self._registry = await Registry.open(self.broker)
                except Exception as exc:  # no JetStream (an in-memory test broker): calls.start alone
                    log.debug("no live-call registry: %s", exc)
                    return None
            return self._registry

    async def announce(self, call: CallStart, headers: dict[str, str]) -> None:
        registry = await self.registry()
        if registry is not None:
            try:
                await registry.put(LiveCall(call=call, headers=headers))
            except Exception as exc:  # calls.start still reaches the replicas that are up
                log.warning("registering call %s failed: %s", call.call_id, exc)

    async def lookup(self, call_id: str) -> LiveCall | None:
        registry = await self.registry()
        return None if registry is None else await registry.get(call_id)

    async def keep_alive(self, call_id: str) -> None:
        """Rewrite the call's entry every few seconds until cancelled."""
        while True:
            await asyncio.sleep(REGISTRY_RENEW_S)
            try:
                registry = await self.registry()
                renewed = None if registry is None else await registry.change(
                    call_id, lambda live: live.model_copy(update={"updated_at": now()}))
                if renewed is None:
                    log.info("call %s: registry keep-alive stops (%s)", call_id,
                             "no registry" if registry is None else "ended, or the entry is gone")
                    return
                log.debug("call %s: registry entry renewed", call_id)
            except Exception as exc:  # NATS away: the next round writes it again
                log.warning("renewing live call %s failed: %s", call_id, exc)

    async def close_to(self, call_id: str, stages: list[str]) -> None:
        """No replica of `stages` may claim the call from now on (the edge takes a message: a brain
        that frees up must not greet the caller in the middle of it)."""
        registry = await self.registry()
        if registry is None:
            return

        def close(live: LiveCall) -> LiveCall:
            return live.model_copy(update={"closed_to": sorted(set(live.closed_to) | set(stages)), "updated_at": now()})

        try:
            await registry.change(call_id, close)
        except Exception as exc:
            log.warning("closing call %s to %s failed: %s", call_id, ", ".join(stages), exc)

    async def ended(self, end: CallEnd) -> None:
        registry = await self.registry()
        if registry is None:
            return
        ended = {"ended": True, "end_reason": end.reason, "updated_at": now()}
        try:
            await registry.change(end.call_id, lambda live: live.model_copy(update=ended))
        except Exception as exc:
            log.warning("marking call %s ended in the registry failed: %s", end.call_id, exc)
