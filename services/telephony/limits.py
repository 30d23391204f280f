"""How much the edge takes in: call rates per caller and per agent, and webhook body sizes.

`CallRates` counts the calls each caller number and each agent started in the last minute on
this replica (a sliding window); the voice webhook answers a call over either limit with
`<Reject reason="busy"/>`, so no stream, no model and no minute of anyone's time is spent on it.
`BodyLimit` is an ASGI middleware that answers 413 to any HTTP request whose body is larger than
`max_webhook_bytes`, before the route reads it (WebSockets have their own per-message limit).
Concurrent streams are capped in the app (`max_streams`, close code 1013 "try again later").
"""

from __future__ import annotations

import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

log = logging.getLogger("ringline.telephony.limits")

WINDOW_S = 60.0
_MAX_KEYS = 100_000  # callers remembered at once; the oldest are forgotten beyond this


class SlidingWindow:
    """At most `limit` events per key in any `window_s`; `limit == 0` allows everything."""

    def __init__(self, limit: int, window_s: float = WINDOW_S) -> None:
        self.limit = limit
        self.window_s = window_s
        self._events: dict[str, deque[float]] = {}

    def allow(self, key: str, now: float) -> bool:
        """Count one event for `key` at `now` unless that would go over the limit."""
        if self.limit <= 0:
            return True
        events = self._events.get(key)
        if events is None:
            if len(self._events) >= _MAX_KEYS:
                self._events.pop(next(iter(self._events)))
            events = self._events[key] = deque()
        while events and events[0] <= now - self.window_s:
            events.popleft()
        if len(events) >= self.limit:
            return False
        events.append(now)
        return True


class CallRates:
    def __init__(self, per_caller: int, per_agent: int) -> None:
        self.callers = SlidingWindow(per_caller)
        self.agents = SlidingWindow(per_agent)

    def refuse(self, caller: str, agent: str, now: float) -> str | None:
        """None to take the call; otherwise why it is refused."""
        if caller and not self.callers.allow(caller, now):
            return f"caller over {self.callers.limit} calls a minute"
        if not self.agents.allow(agent, now):
            return f"agent {agent} over {self.agents.limit} calls a minute"
        return None


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class BodyLimit:
    """413 for HTTP bodies over `limit` bytes (by Content-Length, or counted as they arrive)."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.limit:
            await self._refuse(scope, send)
            return
        chunks: list[Message] = []
        size = 0
        while True:  # webhook bodies are small: read them here, then replay them to the route
            message = await receive()
            chunks.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self.limit:
                await self._refuse(scope, send)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return chunks.pop(0) if chunks else await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        log.warning("refused a %s %s: body over %d bytes", scope.get("method"), scope.get("path"), self.limit)
        body = json.dumps({"detail": f"request body over {self.limit} bytes"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
