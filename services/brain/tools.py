"""Tools an agent can use: HTTP webhooks declared in settings, plus the built-ins `end_call`,
`forget_me` (the caller asks to be forgotten) and, for an agent with a `transfer_number`,
`transfer_call` (hand the caller to a human).

A webhook tool is called with `POST url` and the JSON body
`{"tool": name, "arguments": {...}, "call_id": "..."}`; its JSON answer (any 2xx) goes back
to the model as the tool result. A non-2xx status, a transport error, a body that is too big or
a timeout make a failed `ToolResult` (the turn then apologises out loud). Nothing here raises.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import httpx

from ringline.contracts.agents import WebhookTool

from .llm.base import ToolCall, ToolSpec

log = logging.getLogger("ringline.brain.tools")

END_CALL = ToolSpec(
    name="end_call",
    description=(
        "End the phone call. Use it when the caller says goodbye or has nothing more to ask. "
        "Say a short goodbye in the same reply, before calling it."
    ),
    parameters={
        "type": "object",
        "properties": {"reason": {"type": "string", "description": "why the call ends, in a few words"}},
    },
)

TRANSFER_CALL = ToolSpec(
    name="transfer_call",
    description=(
        "Transfer the phone call to a human colleague. Use it when the caller asks for a person, or needs "
        "something you cannot do. Say a short hand-over line in the same reply, before calling it, such as "
        "\"I'll put you through to a colleague now.\""
    ),
    parameters={
        "type": "object",
        "properties": {"reason": {"type": "string", "description": "why the caller needs a human, in a few words"}},
    },
)
TRANSFER_LINE = "I'll put you through to a colleague now."  # when the model says nothing itself
FORGET_ME = ToolSpec(
    name="forget_me",
    description=(
        "Delete everything remembered about the caller from earlier calls, and keep nothing of this call. "
        "Use it only when the caller asks you to forget them or delete what you know about them. "
        "Then tell them it is done."
    ),
)
# No webhook tool may take a built-in's name (forget_me runs in the session: `forget.CallTools`).
BUILT_IN = frozenset({END_CALL.name, TRANSFER_CALL.name, FORGET_ME.name})

MAX_RESULT_CHARS = 4000


@dataclass(frozen=True)
class ToolResult:
    call: ToolCall
    ok: bool
    content: str  # what the model reads: the webhook's JSON, or the error
    ms: float
    error: str = ""


class ToolBox:
    """Runs webhook tools over one shared HTTP client (created on first use, in the loop)."""

    def __init__(self, tools: Sequence[WebhookTool] = ()) -> None:
        self.tools = {tool.name: tool for tool in tools if tool.name not in BUILT_IN}
        self._client: httpx.AsyncClient | None = None

    def specs(self, end_call: bool = True, transfer_call: bool = False) -> list[ToolSpec]:
        specs = [ToolSpec(name=t.name, description=t.description, parameters=t.parameters)
                 for t in self.tools.values()]
        return [*specs, *([END_CALL] if end_call else []), *([TRANSFER_CALL] if transfer_call else [])]

    async def run(self, call: ToolCall, call_id: str) -> ToolResult:
        started = time.perf_counter()
        tool = self.tools.get(call.name)
        if tool is None:
            return self._failed(call, started, f"unknown tool {call.name!r}")
        try:
            async with asyncio.timeout(tool.timeout_s):
                content = await self._post(tool, call, call_id)
        except TimeoutError:
            return self._failed(call, started, f"timed out after {tool.timeout_s:g}s")
        except httpx.HTTPStatusError as exc:
            return self._failed(call, started, f"HTTP {exc.response.status_code}")
        except (httpx.HTTPError, ValueError) as exc:
            return self._failed(call, started, f"{type(exc).__name__}: {exc}")
        ms = round((time.perf_counter() - started) * 1000, 1)
        return ToolResult(call=call, ok=True, content=content, ms=ms)

    async def _post(self, tool: WebhookTool, call: ToolCall, call_id: str) -> str:
        if self._client is None:
            self._client = httpx.AsyncClient()
        body = {"tool": call.name, "arguments": call.arguments, "call_id": call_id}
        response = await self._client.post(tool.url, json=body, headers=tool.headers, timeout=tool.timeout_s)
        response.raise_for_status()
        text = response.text
        if len(text) > MAX_RESULT_CHARS:
            raise ValueError(f"answer of {len(text)} characters is over {MAX_RESULT_CHARS}")
        try:
            return json.dumps(json.loads(text), ensure_ascii=False) if text.strip() else "{}"
        except ValueError:
            return json.dumps({"text": text}, ensure_ascii=False)

    @staticmethod
    def _failed(call: ToolCall, started: float, error: str) -> ToolResult:
        log.warning("tool %s failed: %s", call.name, error)
        ms = round((time.perf_counter() - started) * 1000, 1)
        return ToolResult(call=call, ok=False, content=json.dumps({"error": error}), ms=ms, error=error)

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


async def run_with_filler(
    toolbox: ToolBox,
    calls: Sequence[ToolCall],
    call_id: str,
    filler_after_s: float,
    say_filler: Callable[[], Awaitable[None]] | None,
) -> tuple[list[ToolResult], float | None]:
    """Run `calls` together; if they are not done within `filler_after_s`, `say_filler` once.

    Returns the results in order and the milliseconds from the start to the filler (None when
    no filler was needed). Cancelling this cancels the requests.
    """
    started = time.perf_counter()
    job = asyncio.ensure_future(asyncio.gather(*(toolbox.run(call, call_id) for call in calls)))
    filler_ms: float | None = None
    try:
        if say_filler is not None:
            done, _ = await asyncio.wait({job}, timeout=filler_after_s)
            if not done:
                filler_ms = round((time.perf_counter() - started) * 1000, 1)
                await say_filler()
        return list(await job), filler_ms
    finally:
        if not job.done():
            job.cancel()
