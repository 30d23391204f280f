"""Memory service fixtures: services on the real nats-server, a bus client, a webhook receiver."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from faststream.nats import NatsBroker

from ringline.contracts.codec import MsgpackCodec
from ringline.records import get_call
from ringline.services.memory.app import MemoryService
from ringline.services.memory.settings import MemorySettings

from doubles.bus import settled


async def claimed(url: str, call_id: str) -> None:
    """Until the memory service has claimed the call (it saves the record once subscribed)."""
    for _ in range(100):
        try:
            if await get_call(url, call_id, timeout=1.0) is not None:
                return
        except Exception:
            pass
        await asyncio.sleep(0.05)
    owners = [sorted(service.router.sessions) for service in RUNNING]
    raise AssertionError(f"memory never claimed {call_id}; the services own {owners}")


RUNNING: list[MemoryService] = []


@pytest.fixture
async def memory(nats_server) -> AsyncIterator[Callable[..., Any]]:
    """`await memory(**settings)` starts a memory service (a replica) on the test's nats-server;
    each is shut down like on SIGTERM at the end unless the test did it."""
    started: list[MemoryService] = []

    async def start(env: dict[str, str] | None = None, **overrides: Any) -> MemoryService:
        if "agents_file" in overrides:  # the field is read by its environment name only
            overrides["RINGLINE_AGENTS_FILE"] = str(overrides.pop("agents_file"))
        settings = MemorySettings(nats_url=nats_server.url, **{"summary_wait_s": 0.0, **overrides})
        service = MemoryService(settings, env=env or {})
        await service.open_store()
        await service.broker.start()
        # Its subscriptions are in place before anyone publishes (a single flush is not enough
        # with nats-py 2.16: doubles.bus).
        await settled(service.broker._connection)
        started.append(service)
        RUNNING.append(service)
        assert nats_server.proc.poll() is None, "nats-server exited (its port was taken?)"
        return service

    yield start
    for service in started:
        await stop(service)
        RUNNING.remove(service)


async def stop(service: MemoryService) -> None:
    if getattr(service, "_stopped", False):
        return
    service._stopped = True  # type: ignore[attr-defined]
    await service.shutdown()
    await service.broker.stop()


@pytest.fixture
async def client(nats_server) -> AsyncIterator[NatsBroker]:
    broker = NatsBroker(nats_server.url, codec=MsgpackCodec())
    await broker.start()
    yield broker
    await broker.stop()


@dataclass
class Received:
    at: float
    headers: dict[str, str]
    body: bytes


@dataclass
class Webhook:
    """A local HTTP receiver; `statuses[path]` is the list of answers it gives in turn (the last
    one repeats), 200 by default."""

    base: str = ""
    statuses: dict[str, list[int]] = field(default_factory=dict)
    received: dict[str, list[Received]] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return f"{self.base}/{path}"

    async def wait_for(self, path: str, count: int, timeout: float = 30.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.received.get(path, [])) < count:
            assert time.monotonic() < deadline, f"{path} got {len(self.received.get(path, []))} of {count} requests"
            await asyncio.sleep(0.02)
        return self.received[path]


@pytest.fixture
async def webhook() -> AsyncIterator[Webhook]:
    hook = Webhook()

    async def handle(request: web.Request) -> web.Response:
        path = request.match_info["path"]
        got = hook.received.setdefault(path, [])
        got.append(Received(time.monotonic(), dict(request.headers), await request.read()))
        answers = hook.statuses.get(path, [200])
        return web.Response(status=answers[min(len(got), len(answers)) - 1], text="ok")

    app = web.Application()
    app.router.add_post("/{path}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    hook.base = f"http://127.0.0.1:{port}"
    yield hook
    await runner.cleanup()
