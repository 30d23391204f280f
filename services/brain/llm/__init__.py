"""LLM providers of the brain: one narrow interface (`base.ChatModel`), one file per vendor."""

from .base import Capabilities, ChatModel, LLMError, StreamStats, ToolCall, ToolSpec, build_chat_model
from .fallback import FallbackChatModel, Link

__all__ = ["Capabilities", "ChatModel", "FallbackChatModel", "LLMError", "Link", "StreamStats", "ToolCall",
           "ToolSpec", "build_chat_model"]
