"""A double served from an event loop of its own thread.

For callers that block their own thread: an end-to-end test or a benchmark that starts the whole
stack as processes and places calls with `asyncio.run`. The double keeps serving meanwhile, and
its faults are changed on its own loop (`set_faults`), never from another thread directly:

    with InThread(CartesiaDouble(faults=CartesiaFaults(latency_ms=100))) as cartesia:
        env = {"RINGLINE_TTS_CARTESIA_WEBSOCKET_URL": cartesia.double.ws_url}
        ...
        cartesia.set_faults(context_error_status=500)
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

D = TypeVar("D")


class InThread(Generic[D]):
    def __init__(self, double: D, name: str = "") -> None:
        self.double = double
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True,
                                        name=name or f"{type(double).__name__}-thread")

    def __enter__(self) -> InThread[D]:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.double.__aenter__(), self.loop).result(10)  # type: ignore[attr-defined]
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            asyncio.run_coroutine_threadsafe(self.double.__aexit__(None, None, None),  # type: ignore[attr-defined]
                                             self.loop).result(10)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            self.loop.close()

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run `fn` on the double's loop and return its result."""
        async def run() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)

    def set_faults(self, wait: bool = True, **faults: Any) -> None:
        """Change fields of the double's `faults` on its loop; `wait=False` from inside another
        running loop's callback (it returns at once, the change lands a moment later)."""
        def apply() -> None:
            for name, value in faults.items():
                setattr(self.double.faults, name, value)  # type: ignore[attr-defined]

        if wait:
            self.call(apply)
        else:
            self.loop.call_soon_threadsafe(apply)
