"""Local stand-ins for the cloud vendors, speaking their real wire protocols on 127.0.0.1.

Each double is an async context manager that serves on a free port, records what it received
and injects faults (latency, HTTP errors on connect, a stall, a disconnect mid-stream):

    async with DeepgramDouble(script=["What is the capital of France?"]) as dg:
        client = AsyncDeepgramClient(api_key="k", environment=dg.environment())

The vendors' own SDKs are the clients, so a double that drifted from the real protocol would
break the provider tests instead of hiding behind a fake client. Tests and benchmarks import
this folder as the top-level package `doubles` (tests/providers/conftest.py registers it).
"""

from .anthropic import AnthropicDouble, AnthropicFaults, ScriptedReply, ToolCall
from .cartesia import CartesiaDouble, CartesiaFaults
from .common import Faults
from .deepgram import DeepgramDouble, DeepgramFaults
from .threaded import InThread

__all__ = [
    "AnthropicDouble", "AnthropicFaults", "CartesiaDouble", "CartesiaFaults", "DeepgramDouble",
    "DeepgramFaults", "Faults", "InThread", "ScriptedReply", "ToolCall",
]
