"""Anthropic's Messages API (`POST /v1/messages`), streaming and not, as the `anthropic` SDK uses it.

With `"stream": true` the reply is server-sent events, exactly in the API's order:

    message_start  (message with usage: input_tokens, cache_read/cache_creation_input_tokens)
    ping
    content_block_start / content_block_delta (text_delta | input_json_delta) / content_block_stop
    message_delta  (stop_reason; cumulative usage incl. the cache fields)
    message_stop

A scripted reply is text, optionally followed by one or more tool calls (`tool_use` blocks whose
input JSON streams in pieces). Faults: HTTP 429/529/500 with Anthropic's JSON error body, an
`error` event mid-stream, a stall (headers and some events, then nothing), a dropped connection,
and `first_token_ms` / `token_ms` latencies.

With `prompt_cache=True` the double caches as the API does instead of reporting scripted cache
figures: a `cache_control` breakpoint caches the prefix before it (tools, system, messages, in
that order; ~4 characters a token) only when that prefix reaches the model's minimum cacheable
length (Haiku 4.5: 4,096 tokens; `MIN_CACHE_TOKENS`). A request reads the longest prefix it finds
cached (at a breakpoint or up to 20 blocks before one) and writes the prefix at its last eligible
breakpoint; under the minimum nothing is cached and nothing is read.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .common import Faults

ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
               404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
               500: "api_error", 529: "overloaded_error"}


@dataclass
class AnthropicFaults(Faults):
    first_token_ms: float = 0.0
    """Time from the request to the first content delta."""
    token_ms: float = 0.0
    """Time between deltas."""
    error_event_after: int | None = None
    """Send an `error` event (overloaded_error) after N deltas, then end the stream."""
    retry_after_s: int = 1


@dataclass(frozen=True)
class ToolCall:
    name: str
    input: dict[str, Any]


@dataclass(frozen=True)
class ScriptedReply:
    text: str = ""
    tools: tuple[ToolCall, ...] = ()
    input_tokens: int = 25
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0


@dataclass
class RecordedRequest:
    body: dict[str, Any]
    headers: dict[str, str]

    @property
    def system(self) -> Any:
        return self.body.get("system")

    @property
    def tools(self) -> list[dict[str, Any]]:
        return list(self.body.get("tools") or [])


def text_pieces(text: str, size: int = 12) -> list[str]:
    """Cut text like a token stream does: a few characters at a time, on word boundaries."""
    pieces, current = [], ""
    for word in text.split(" "):
        candidate = f"{current} {word}" if current else word
        if len(candidate) > size and current:
            pieces.append(current + " ")
            current = word
        else:
            current = candidate
    return pieces + ([current] if current else [])


def approx_tokens(text: str) -> int:
    return max(1, len(text) // 4)


MIN_CACHE_TOKENS = {"claude-haiku-4-5": 4096, "claude-opus-4-5": 4096, "claude-opus-4-6": 4096,
                    "claude-sonnet-4-6": 2048, "claude-sonnet-4-5": 1024}


def _prefix_blocks(body: dict[str, Any]) -> list[tuple[str, bool]]:
    """(block text, has a breakpoint) in cache order: tools, system, then messages."""
    blocks = [(json.dumps(t, sort_keys=True), "cache_control" in t) for t in body.get("tools") or []]
    system = body.get("system") or []
    if isinstance(system, str):
        system = [{"type": "text", "text": system}]
    blocks += [(json.dumps({k: v for k, v in b.items() if k != "cache_control"}, sort_keys=True), "cache_control" in b)
               for b in system]
    for message in body.get("messages") or []:
        content = message.get("content")
        parts = [{"type": "text", "text": content}] if isinstance(content, str) else content or []
        blocks += [(message["role"] + json.dumps({k: v for k, v in b.items() if k != "cache_control"},
                                                 sort_keys=True), "cache_control" in b) for b in parts]
    return blocks


class AnthropicDouble:
    """`async with AnthropicDouble(replies=[...]) as api:` then `AsyncAnthropic(base_url=api.url)`."""

    def __init__(self, replies: Iterable[ScriptedReply | str] = (), faults: AnthropicFaults | None = None,
                 default_reply: str = "The capital of France is Paris.", prompt_cache: bool = False) -> None:
        self.replies: deque[ScriptedReply] = deque(
            r if isinstance(r, ScriptedReply) else ScriptedReply(r) for r in replies)
        self.faults = faults or AnthropicFaults()
        self.default_reply = default_reply
        self.requests: list[RecordedRequest] = []
        self.prompt_cache = prompt_cache
        self.cached: set[str] = set()  # digests of cached prefixes
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> AnthropicDouble:
        app = web.Application()
        app.router.add_post("/v1/messages", self._messages)
        self._runner = web.AppRunner(app, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(RecordedRequest(body, {k.lower(): v for k, v in request.headers.items()}))
        request_id = f"req_{uuid.uuid4().hex[:24]}"
        if self.faults.should_reject(len(self.requests) - 1):
            return self._error_response(int(self.faults.reject_status or 500), request_id)
        reply = self.replies.popleft() if self.replies else ScriptedReply(self.default_reply)
        if self.prompt_cache:
            reply = self._cache(body, reply)
        if not body.get("stream"):
            await asyncio.sleep((self.faults.latency_ms + self.faults.first_token_ms) / 1000)
            return web.json_response(self._message(body, reply, final=True), headers={"request-id": request_id})
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8",
                                               "Cache-Control": "no-cache", "request-id": request_id})
        await asyncio.sleep(self.faults.latency_ms / 1000)
        await response.prepare(request)
        await self._stream(request, response, body, reply)
        return response

    def _cache(self, body: dict[str, Any], reply: ScriptedReply) -> ScriptedReply:
        """The reply's usage as the API's prompt cache makes it (see the module docstring)."""
        minimum = MIN_CACHE_TOKENS.get(str(body.get("model")), 1024)
        text, total, eligible, boundaries = "", 0, [], []
        for block, breakpoint in _prefix_blocks(body):
            text += block
            total = approx_tokens(text)
            boundaries.append((hashlib.sha256(text.encode()).hexdigest(), total))
            if breakpoint and total >= minimum:
                eligible.append((len(boundaries) - 1, *boundaries[-1]))
        # A breakpoint also finds a prefix cached at any of the 20 block boundaries before it.
        read = max((tokens for index, _, _ in eligible for digest, tokens in boundaries[max(0, index - 20):index + 1]
                    if digest in self.cached), default=0)
        eligible = [(digest, tokens) for _, digest, tokens in eligible]
        written = 0
        if eligible and eligible[-1][0] not in self.cached:
            written = eligible[-1][1] - read
            self.cached.add(eligible[-1][0])
        return ScriptedReply(reply.text, reply.tools, input_tokens=max(1, total - read - written),
                             cache_read_input_tokens=read, cache_creation_input_tokens=written)

    def _error_response(self, status: int, request_id: str) -> web.Response:
        kind = ERROR_TYPES.get(status, "api_error")
        messages = {"rate_limit_error": "Number of request tokens has exceeded your per-minute rate limit",
                    "overloaded_error": "Overloaded", "api_error": "Internal server error"}
        error = {"type": "error", "error": {"type": kind, "message": messages.get(kind, kind)},
                 "request_id": request_id}
        headers = {"request-id": request_id}
        if status == 429:
            headers["retry-after"] = str(self.faults.retry_after_s)
        return web.json_response(error, status=status, headers=headers)

    def _message(self, body: dict[str, Any], reply: ScriptedReply, final: bool) -> dict[str, Any]:
        content: list[dict[str, Any]] = []
        if final:
            if reply.text:
                content.append({"type": "text", "text": reply.text})
            content += [{"type": "tool_use", "id": f"toolu_{uuid.uuid4().hex[:20]}", "name": t.name, "input": t.input}
                        for t in reply.tools]
        usage = self._usage(reply, self._output_tokens(reply) if final else 1)
        return {"id": f"msg_{uuid.uuid4().hex[:24]}", "type": "message", "role": "assistant",
                "model": body.get("model", ""), "content": content,
                "stop_reason": (("tool_use" if reply.tools else "end_turn") if final else None),
                "stop_sequence": None, "usage": usage}

    @staticmethod
    def _usage(reply: ScriptedReply, output_tokens: int) -> dict[str, Any]:
        return {"input_tokens": reply.input_tokens, "output_tokens": output_tokens,
                "cache_read_input_tokens": reply.cache_read_input_tokens,
                "cache_creation_input_tokens": reply.cache_creation_input_tokens}

    @staticmethod
    def _output_tokens(reply: ScriptedReply) -> int:
        return approx_tokens(reply.text) + sum(approx_tokens(json.dumps(t.input)) + 10 for t in reply.tools)

    def _events(self, body: dict[str, Any], reply: ScriptedReply) -> list[tuple[str, dict[str, Any], bool]]:
        """(event name, data, is a content delta) in the API's order."""
        events: list[tuple[str, dict[str, Any], bool]] = [
            ("message_start", {"type": "message_start", "message": self._message(body, reply, final=False)}, False),
            ("ping", {"type": "ping"}, False),
        ]
        index = 0
        if reply.text or not reply.tools:
            events.append(("content_block_start", {"type": "content_block_start", "index": 0,
                                                   "content_block": {"type": "text", "text": ""}}, False))
            events += [("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                "delta": {"type": "text_delta", "text": piece}}, True)
                       for piece in text_pieces(reply.text)]
            events.append(("content_block_stop", {"type": "content_block_stop", "index": 0}, False))
            index = 1
        for offset, tool in enumerate(reply.tools):
            i = index + offset
            block = {"type": "tool_use", "id": f"toolu_{uuid.uuid4().hex[:20]}", "name": tool.name, "input": {}}
            start = {"type": "content_block_start", "index": i, "content_block": block}
            events.append(("content_block_start", start, False))
            raw = json.dumps(tool.input)
            events += [("content_block_delta", {"type": "content_block_delta", "index": i, "delta": {
                "type": "input_json_delta", "partial_json": raw[j : j + 10]}}, True) for j in range(0, len(raw), 10)]
            events.append(("content_block_stop", {"type": "content_block_stop", "index": i}, False))
        usage = self._usage(reply, self._output_tokens(reply))
        events.append(("message_delta", {"type": "message_delta", "usage": usage, "delta": {
            "stop_reason": "tool_use" if reply.tools else "end_turn", "stop_sequence": None}}, False))
        events.append(("message_stop", {"type": "message_stop"}, False))
        return events

    async def _stream(self, request: web.Request, response: web.StreamResponse, body: dict[str, Any],
                      reply: ScriptedReply) -> None:
        f = self.faults
        sent = deltas = 0
        for name, data, is_delta in self._events(body, reply):
            if f.stall_after is not None and sent >= f.stall_after:
                await asyncio.Event().wait()  # hold the connection open; the client must time out
            if f.disconnect_after is not None and sent >= f.disconnect_after:
                assert request.transport is not None
                request.transport.abort()
                return
            if is_delta:
                if f.error_event_after is not None and deltas >= f.error_event_after:
                    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
                    await response.write(_sse("error", error))
                    return
                await asyncio.sleep((f.first_token_ms if deltas == 0 else f.token_ms) / 1000)
                deltas += 1
            await response.write(_sse(name, data))
            sent += 1
        await response.write_eof()


def _sse(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
