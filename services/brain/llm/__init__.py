"""LLM providers of the brain: one narrow interface (`base.ChatModel`), one file per vendor."""

from .base import Capabilities, ChatModel, LLMError, StreamStats, ToolCall, ToolSpec, build_chat_model

__all__ = ["Capabilities", "ChatModel", "LLMError", "StreamStats", "ToolCall", "ToolSpec", "build_chat_model"]
