"""The caller asks the agent to forget them.

Two ways in, one way out: the phrase rule (`phrases.is_forget_request`, for every model, since a
0.5B model cannot be trusted with it) answers with the fixed `forget_line`; a model with tool use
may also call the built-in `forget_me` tool (for requests the rule does not catch) and confirms in
its own words. Either way the memory service deletes the caller's memory, the memory leaves the
system prompt, and nothing of this call is stored afterwards.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable

from .llm.base import ToolCall, ToolSpec
from .tools import FORGET_ME, ToolBox, ToolResult

Forget = Callable[[], Awaitable[bool]]


class CallTools(ToolBox):
    """The agent's shared toolbox plus this call's built-in `forget_me` (it needs the call's caller)."""

    def __init__(self, shared: ToolBox, forget: Forget) -> None:
        super().__init__()
        self.shared = shared
        self.tools = shared.tools
        self._forget = forget

    def specs(self, *args: object, **kwargs: object) -> list[ToolSpec]:
        return [*self.shared.specs(*args, **kwargs), FORGET_ME]  # type: ignore[arg-type]

    async def run(self, call: ToolCall, call_id: str) -> ToolResult:
        if call.name != FORGET_ME.name:
            return await self.shared.run(call, call_id)
        started = time.perf_counter()
        done = await self._forget()
        content = {"forgotten": True} if done else {"forgotten": False, "error": "the memory could not be reached; "
                                                    "nothing of this call will be kept"}
        ms = round((time.perf_counter() - started) * 1000, 1)
        return ToolResult(call=call, ok=True, content=json.dumps(content), ms=ms)

    async def aclose(self) -> None:
        """The shared toolbox belongs to the app and outlives the call."""
