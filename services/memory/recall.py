"""Caller memory across calls, in a JetStream key-value bucket (file storage, survives restarts).

The key is `<agent_id>.<caller's digits>`: every lookup names the agent, and a key of one agent
can never be read, listed or forgotten through another agent's id. Callers without a usable
number (anonymous, withheld, a browser client) are never remembered.

A call's notes are merged into the stored memory with optimistic concurrency (the update names
the revision it read), so two replicas recording calls of the same caller at once both count.
Forgetting purges the key: no history of it is kept in the bucket.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from nats.js.errors import KeyNotFoundError, NoKeysError
from nats.js.kv import KeyValue

from ringline.contracts import subjects
from ringline.contracts.agents import normalize_number
from ringline.contracts.codec import pack, unpack
from ringline.contracts.messages.recall import (
    CallerMemory,
    RecallForgetReply,
    RecallForgetRequest,
    RecallGetReply,
    RecallGetRequest,
    RecallListReply,
    RecallListRequest,
    RecallPutReply,
    RecallPutRequest,
    merge_call,
)
from ringline.contracts.runtime.leases import open_bucket

log = logging.getLogger("ringline.memory.recall")

RECALL_BUCKET = "ringline_recall"
_AGENT = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
PUT_ATTEMPTS = 10


class NotRemembered(ValueError):
    """An agent id or caller number that cannot name a memory."""


def recall_key(agent_id: str, caller: str) -> str:
    """`sales` + `+1 (555) 010-0001` -> `sales.15550100001`."""
    if not _AGENT.match(agent_id or ""):
        raise NotRemembered(f"agent id {agent_id!r} is not usable")
    try:
        number = normalize_number(caller)
    except ValueError:
        raise NotRemembered(f"caller {caller!r} has no usable number: not remembered") from None
    return f"{agent_id}.{number.lstrip('+')}"


class CallerMemories:
    """The `memory.recall.*` handlers over one bucket (opened with the service's other stores)."""

    def __init__(self, broker: Any, replicas: int = 1, bucket: str = RECALL_BUCKET) -> None:
        self.broker = broker
        self.replicas = replicas
        self.bucket = bucket
        self.kv: KeyValue | None = None
        broker.subscriber(subjects.MEMORY_RECALL_GET, queue="memory")(self.get)
        broker.subscriber(subjects.MEMORY_RECALL_PUT, queue="memory")(self.put)
        broker.subscriber(subjects.MEMORY_RECALL_FORGET, queue="memory")(self.forget)
        broker.subscriber(subjects.MEMORY_RECALL_LIST, queue="memory")(self.list)

    async def open(self) -> None:
        self.kv = await open_bucket(self.broker, self.bucket, "Ringline caller memory per agent", None, self.replicas)

    async def _read(self, key: str) -> tuple[CallerMemory | None, int]:
        """The memory under `key` and its revision (0: none)."""
        assert self.kv is not None, "the bucket is opened on startup"
        try:
            entry = await self.kv.get(key)
        except KeyNotFoundError:
            return None, 0
        if not entry.value:
            return None, 0
        return CallerMemory.model_validate(unpack(entry.value)), entry.revision or 0

    async def get(self, request: RecallGetRequest) -> RecallGetReply:
        try:
            memory, _ = await self._read(recall_key(request.agent_id, request.caller))
        except NotRemembered as exc:
            return RecallGetReply(found=False, error=str(exc))
        return RecallGetReply(found=memory is not None, memory=memory)

    async def put(self, request: RecallPutRequest) -> RecallPutReply:
        notes = request.notes
        try:
            key = recall_key(notes.agent_id, notes.caller)
            caller = normalize_number(notes.caller)
        except NotRemembered as exc:
            return RecallPutReply(ok=False, error=str(exc))
        assert self.kv is not None
        for _ in range(PUT_ATTEMPTS):
            stored, revision = await self._read(key)
            merged = merge_call(stored, notes.model_copy(update={"caller": caller}))
            try:
                if revision:
                    await self.kv.update(key, pack(merged), last=revision)
                else:
                    await self.kv.create(key, pack(merged))
            except Exception as exc:  # written meanwhile (wrong last sequence): read it again
                log.debug("memory %s moved on while merging (%s); retrying", key, exc)
                continue
            log.info("remembered call %s for %s (%d call(s))", notes.call_id, key, merged.calls)
            return RecallPutReply(ok=True, memory=merged)
        return RecallPutReply(ok=False, error=f"memory {key} kept changing; call {notes.call_id} not recorded")

    async def forget(self, request: RecallForgetRequest) -> RecallForgetReply:
        try:
            key = recall_key(request.agent_id, request.caller)
        except NotRemembered as exc:
            return RecallForgetReply(forgotten=False, error=str(exc))
        assert self.kv is not None
        stored, _ = await self._read(key)
        await self.kv.purge(key)
        log.info("forgot %s%s", key, "" if stored else " (nothing was remembered)")
        return RecallForgetReply(forgotten=stored is not None)

    async def list(self, request: RecallListRequest) -> RecallListReply:
        assert self.kv is not None
        if request.agent_id and not _AGENT.match(request.agent_id):
            return RecallListReply()
        try:
            keys = await self.kv.keys()
        except NoKeysError:
            return RecallListReply()
        if request.agent_id:  # nats-py's key filters match substrings: "sales." is in "presales.1555"
            keys = [key for key in keys if key.startswith(f"{request.agent_id}.")]
        memories: list[CallerMemory] = []
        for key in keys:
            try:
                memory, _ = await self._read(key)
            except Exception:  # an unreadable entry is skipped, never fatal for the list
                log.warning("caller memory %s is unreadable; skipped", key)
                continue
            if memory is not None:
                memories.append(memory)
        memories.sort(key=lambda m: m.updated_at, reverse=True)
        return RecallListReply(memories=memories[:request.limit])
