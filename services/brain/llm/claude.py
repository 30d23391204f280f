"""Cloud LLM: Claude through the `anthropic` SDK's streaming Messages API, with native tool use.

The persona (the call's first system message) goes in `system` as its own block, what changes
during the call (later system messages) in a second one; prompt-cache breakpoints go only where
they pay (`prompt_cache`: at or above the model's minimum cacheable length, the changing part
after them); the call history becomes alternating user/assistant messages. Tools go out as
`tools=[{name, description, input_schema}]`; a `tool_use` content block comes back as a
`ToolCall` the moment the block closes, and the tool's answer returns as a `tool_result` block
in the next user message.

No retries in the SDK (`max_retries=0`): the brain's fallback chain handles a failure at once
instead of the SDK sleeping and retrying while the caller waits. `warm` sends the call's cacheable
prefix (tools + system) with `max_tokens=1` while the greeting plays, so the first answer reads
the prompt from the cache (and the HTTPS connection is already open).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, Sequence
from typing import Any

from ringline.contracts.pricing import Usage

from .base import Capabilities, ChatModel, LLMError, Messages, StreamStats, ToolCall, ToolSpec
from .prompt_cache import place_breakpoints

log = logging.getLogger("ringline.brain.claude")

# The Messages API wants the conversation to open with the caller; a call opens with our greeting.
CALL_OPENED = "(The call has connected.)"

Content = str | list[dict[str, Any]]


def _blocks(content: Content) -> list[dict[str, Any]]:
    return [{"type": "text", "text": content}] if isinstance(content, str) else content


def _merge(first: Content, second: Content) -> Content:
    if isinstance(first, str) and isinstance(second, str):
        return f"{first}\n{second}"
    return [*_blocks(first), *_blocks(second)]


def _content(message: dict[str, Any]) -> tuple[str, Content | None]:
    """A neutral message as an Anthropic (role, content); content None when there is nothing."""
    role = message.get("role", "user")
    text = str(message.get("content") or "").strip()
    if role == "tool":
        result: dict[str, Any] = {
            "type": "tool_result",
            "tool_use_id": str(message.get("tool_call_id", "")),
            "content": text or "(no result)",
        }
        if message.get("is_error"):
            result["is_error"] = True
        return "user", [result]
    role = "assistant" if role == "assistant" else "user"
    calls = message.get("tool_calls") or []
    if role == "assistant" and calls:
        blocks: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
        blocks += [{"type": "tool_use", "id": c["id"], "name": c["name"], "input": c.get("arguments") or {}}
                   for c in calls]
        return role, blocks
    return role, (text or None)


def to_anthropic(messages: Messages) -> tuple[str, list[dict[str, Any]]]:
    """Split chat messages into Anthropic's `system` text and user/assistant turns.

    System messages are joined into the system text; consecutive messages of one role are
    merged (the API rejects two in a row); a conversation that opens with the agent gets a
    short user placeholder first; tool exchanges become `tool_use` / `tool_result` blocks.
    """
    system_parts: list[str] = []
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.get("role") == "system":
            if text := str(message.get("content") or "").strip():
                system_parts.append(text)
            continue
        role, content = _content(message)
        if content is None:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1] = {"role": role, "content": _merge(turns[-1]["content"], content)}
        else:
            turns.append({"role": role, "content": content})
    if turns and turns[0]["role"] == "assistant":
        turns.insert(0, {"role": "user", "content": CALL_OPENED})
    return "\n\n".join(system_parts), turns


def tool_param(tool: ToolSpec) -> dict[str, Any]:
    return {"name": tool.name, "description": tool.description, "input_schema": tool.parameters}


class ClaudeChatModel(ChatModel):
    provider = "anthropic"
    capabilities = Capabilities(streaming=True, tools=True, prompt_cache=True)

    def __init__(
        self,
        *,
        api_key: str | None,
        model: str = "claude-haiku-4-5",
        base_url: str | None = None,
        timeout_s: float = 20.0,
        max_retries: int = 0,
    ) -> None:
        self.model = model
        self._api_key = api_key
        self._base_url = base_url
        self._timeout_s = timeout_s
        self._max_retries = max_retries
        self._client: Any = None

    async def load(self) -> None:
        if self._client is not None:
            return
        from anthropic import AsyncAnthropic

        self._client = AsyncAnthropic(
            api_key=self._api_key,
            base_url=self._base_url,
            timeout=self._timeout_s,
            max_retries=self._max_retries,
        )

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    def _request(self, messages: Messages, max_tokens: int, tools: Sequence[ToolSpec]) -> dict[str, Any]:
        first = next((i for i, m in enumerate(messages) if m.get("role") == "system"), None)
        stable = str(messages[first].get("content") or "").strip() if first is not None else ""
        changing, turns = to_anthropic([m for i, m in enumerate(messages) if i != first])
        tool_params = [tool_param(tool) for tool in tools]
        system, turns = place_breakpoints(self.model, tool_params, stable, changing, turns)
        request: dict[str, Any] = {
            "model": self.model,
            "messages": turns,
            "max_tokens": max_tokens,
        }  # no temperature: this SDK's `stream` no longer takes one; model defaults suit speech
        if system:
            request["system"] = system
        if tool_params:
            request["tools"] = tool_params
        return request

    async def warm(self, messages: Messages, tools: Sequence[ToolSpec] = ()) -> Usage | None:
        if self._client is None:
            await self.load()
        request = self._request(messages, 1, tools)
        if not request["messages"]:
            request["messages"] = [{"role": "user", "content": CALL_OPENED}]
        try:
            message = await self._client.messages.create(**request)
        except Exception as exc:
            raise LLMError(f"{self.provider}: warm-up failed: {type(exc).__name__}: {exc}") from exc
        return _usage(self.model, message.usage)

    async def _stream_impl(
        self, messages: Messages, max_tokens: int, stats: StreamStats, tools: tuple[ToolSpec, ...] = ()
    ) -> AsyncGenerator[str | ToolCall, None]:
        if self._client is None:
            await self.load()
        request = self._request(messages, max_tokens, tools)
        if not request["messages"]:
            return
        async with self._client.messages.stream(**request) as stream:
            try:
                async for event in stream:
                    if event.type == "text":
                        yield event.text
                    elif event.type == "content_block_stop" and event.content_block.type == "tool_use":
                        block = event.content_block
                        yield ToolCall(id=block.id, name=block.name, arguments=_arguments(block.input))
            finally:  # also when cut off (barge-in, a stall): what was consumed is still billed
                _record_usage(stream, stats)


def _record_usage(stream: Any, stats: StreamStats) -> None:
    try:
        snapshot = stream.current_message_snapshot
    except (AssertionError, AttributeError):  # no message_start yet: nothing consumed
        return
    usage = getattr(snapshot, "usage", None)
    if usage is None:
        return
    stats.output_tokens = usage.output_tokens
    stats.input_tokens = usage.input_tokens
    stats.extra["cache_read_input_tokens"] = usage.cache_read_input_tokens or 0
    stats.extra["cache_creation_input_tokens"] = usage.cache_creation_input_tokens or 0


def _usage(model: str, usage: Any) -> Usage:
    return Usage(llm_model=model, input_tokens=usage.input_tokens or 0, output_tokens=usage.output_tokens or 0,
                 cache_read_input_tokens=usage.cache_read_input_tokens or 0,
                 cache_creation_input_tokens=usage.cache_creation_input_tokens or 0)


def _arguments(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, str):
        try:
            parsed = json.loads(raw)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}
