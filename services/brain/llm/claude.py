"""Cloud LLM: Claude through the `anthropic` SDK's streaming Messages API.

The persona goes in `system` as one cached block (prompt caching keeps repeat turns cheap and
fast); the call history becomes alternating user/assistant messages.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from .base import Capabilities, ChatModel, Messages, StreamStats

log = logging.getLogger("ringline.brain.claude")

# The Messages API wants the conversation to open with the caller; a call opens with our greeting.
CALL_OPENED = "(The call has connected.)"


def to_anthropic(messages: Messages) -> tuple[str, list[dict[str, str]]]:
    """Split chat messages into Anthropic's `system` text and user/assistant turns.

    System messages are joined into the system text; consecutive messages of one role are
    merged (the API rejects two in a row); a conversation that opens with the agent gets a
    short user placeholder first.
    """
    system_parts: list[str] = []
    turns: list[dict[str, str]] = []
    for message in messages:
        role, content = message.get("role", "user"), (message.get("content") or "").strip()
        if not content:
            continue
        if role == "system":
            system_parts.append(content)
            continue
        role = "assistant" if role == "assistant" else "user"
        if turns and turns[-1]["role"] == role:
            turns[-1] = {"role": role, "content": f"{turns[-1]['content']}\n{content}"}
        else:
            turns.append({"role": role, "content": content})
    if turns and turns[0]["role"] == "assistant":
        turns.insert(0, {"role": "user", "content": CALL_OPENED})
    return "\n\n".join(system_parts), turns


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
        max_retries: int = 1,
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

    async def _stream_impl(self, messages: Messages, max_tokens: int, stats: StreamStats) -> AsyncIterator[str]:
        if self._client is None:
            await self.load()
        system_text, turns = to_anthropic(messages)
        if not turns:
            return
        request: dict[str, Any] = {
            "model": self.model,
            "messages": turns,
            "max_tokens": max_tokens,
        }  # no temperature: this SDK's `stream` no longer takes one; model defaults suit speech
        if system_text:
            request["system"] = [
                {"type": "text", "text": system_text, "cache_control": {"type": "ephemeral"}}
            ]
        async with self._client.messages.stream(**request) as stream:
            async for text in stream.text_stream:
                yield text
            usage = stream.current_message_snapshot.usage
            stats.output_tokens = usage.output_tokens
            stats.input_tokens = usage.input_tokens
            stats.extra["cache_read_input_tokens"] = usage.cache_read_input_tokens or 0
