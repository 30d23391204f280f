"""Calls in progress per agent, shared by every memory replica (for `max_concurrent_calls`).

One JetStream KV entry per live call, `<agent>.<call_id>`, written when a replica claims the
call, written again every `ttl/3` while it lives, and purged when it ends. The bucket's TTL
removes the entry of a call whose replica died without ending it, so a crash never counts
against the agent for longer than the TTL.
"""

from __future__ import annotations

import asyncio
import logging
import re

from nats.js.kv import KeyValue

from ringline.contracts.codec import pack
from ringline.contracts.runtime.leases import open_bucket

log = logging.getLogger("ringline.memory.live")

_KEY_TOKEN = re.compile(r"[^A-Za-z0-9_-]")


def _token(value: str) -> str:
    """A KV key token: agent ids are already safe; anything else is made so."""
    return _KEY_TOKEN.sub("_", value)[:128] or "_"


class LiveCalls:
    def __init__(self, kv: KeyValue, ttl_s: float) -> None:
        self.kv = kv
        self.ttl_s = ttl_s

    @classmethod
    async def open(cls, broker, bucket: str, ttl_s: float, replicas: int = 1) -> LiveCalls:
        return cls(await open_bucket(broker, bucket, "Ringline calls in progress", ttl_s, replicas), ttl_s)

    @staticmethod
    def key(agent_id: str, call_id: str) -> str:
        return f"{_token(agent_id)}.{_token(call_id)}"

    async def mark(self, agent_id: str, call_id: str, started_at: float) -> None:
        await self.kv.put(self.key(agent_id, call_id), pack({"started_at": started_at}))

    async def unmark(self, agent_id: str, call_id: str) -> None:
        await self.kv.purge(self.key(agent_id, call_id))

    async def keep_alive(self, agent_id: str, call_id: str, started_at: float) -> None:
        """Rewrite the entry every ttl/3 until cancelled (the call's end)."""
        while True:
            await asyncio.sleep(self.ttl_s / 3)
            try:
                await self.mark(agent_id, call_id, started_at)
            except Exception as exc:  # NATS away for a moment: the next round writes it again
                log.warning("renewing live call %s failed: %s", call_id, exc)

    async def count(self, agent_id: str, exclude_call: str = "") -> int:
        """The agent's calls in progress on any replica, leaving out `exclude_call`."""
        watcher = await self.kv.watch(f"{_token(agent_id)}.*", ignore_deletes=True, meta_only=True)
        skip = self.key(agent_id, exclude_call) if exclude_call else ""
        keys: set[str] = set()
        try:
            async with asyncio.timeout(5.0):
                async for entry in watcher:
                    if entry is None:  # every current entry has been seen
                        break
                    if entry.key != skip:
                        keys.add(entry.key)
        finally:
            await watcher.stop()
        return len(keys)
