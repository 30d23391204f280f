"""The order in which a turn's chunks go out, and holding them back.

A turn's chunks are emitted strictly in order. While the gate is held (a preemptive turn waiting
for its final transcript, or a reply the caller talked into before any of it went out), they
are buffered; `open` sends the buffer and lets later chunks straight through.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

Emit = Callable[[Any], Awaitable[None]]


class ChunkGate:
    def __init__(self, emit: Emit, held: bool = False) -> None:
        self._emit = emit
        self._held = held
        self._pending: list[Any] = []
        self._lock = asyncio.Lock()
        self._open = asyncio.Event()
        self.emitted = 0
        if not held:
            self._open.set()

    @property
    def held(self) -> bool:
        return self._held

    async def put(self, item: Any) -> None:
        self._pending.append(item)
        if not self._held:
            await self._flush()

    def hold(self) -> bool:
        """Buffer from now on; False (and nothing changes) once anything went out or is going."""
        if self._held:
            return True
        if self.emitted or self._pending or self._lock.locked():
            return False
        self._held = True
        self._open.clear()
        return True

    async def open(self) -> None:
        """Send what is buffered and let the rest through."""
        if not self._held:
            return
        self._held = False
        try:
            await self._flush()
        finally:
            self._open.set()

    async def wait_open(self) -> None:
        await self._open.wait()

    async def _flush(self) -> None:
        async with self._lock:
            while self._pending:
                item = self._pending.pop(0)
                self.emitted += 1
                await self._emit(item)
