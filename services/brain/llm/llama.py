"""Local LLM: llama.cpp (llama-cpp-python) on the GGUF assembled by `local_gguf`.

One model, one dedicated worker thread: every load and completion runs on a single-thread
executor, so calls from concurrent phone calls are serialized (llama.cpp contexts are not
thread-safe) and the event loop never blocks. Tokens cross back to the loop through an
asyncio queue; a cancelled stream sets a flag the worker checks at every token.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ringline.contracts.pricing import Usage

from .base import Capabilities, ChatModel, LLMError, Messages, StreamStats, ToolSpec
from .local_gguf import MODEL_FILENAME, ensure_model

log = logging.getLogger("ringline.brain.llama")

# ChatML turn markers (Qwen). Length is bounded by max_tokens; the chunker flattens newlines.
DEFAULT_STOP = ("<|im_end|>", "<|im_start|>", "<|endoftext|>")

_DONE = object()


class _Prompt(int):
    """How many prompt tokens the completion evaluated (sent once, after the last piece)."""


class LlamaChatModel(ChatModel):
    provider = "local"
    # No tool use: llama-cpp-python renders Qwen2.5's tool template, but this 0.5B model does not
    # use it reliably. Probed with an order-status and an end_call tool on 12 questions: with the
    # persona prompt it called a tool 0 of 6 times it should have; with a tool-oriented prompt it
    # called one on 4 of 6 questions that needed none (inventing order numbers and a
    # "reset_password" tool) and no longer said it was an AI. Goodbyes use a phrase rule instead.
    capabilities = Capabilities(streaming=True, tools=False, prompt_cache=True, local=True)

    def __init__(
        self,
        model_dir: Path,
        *,
        n_threads: int = 1,
        n_ctx: int = 2048,
        temperature: float = 0.3,
        warm_messages: Messages | None = None,
        stop: tuple[str, ...] = DEFAULT_STOP,
        model_path: Path | None = None,
    ) -> None:
        self.model = MODEL_FILENAME
        self._model_dir = Path(model_dir).expanduser()
        self._model_path = model_path
        self._n_threads = n_threads
        self._n_ctx = n_ctx
        self._temperature = temperature
        self._warm_messages = list(warm_messages or [])
        self._stop = list(stop)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llama")
        self._llm: Any = None
        self._closed = False
        self.load_seconds = 0.0

    @property
    def price_id(self) -> str:
        return f"local/{self.model}"  # the price table prices every "local..." model at 0

    @property
    def loaded(self) -> bool:
        return self._llm is not None

    async def load(self) -> None:
        if self._llm is not None:
            return
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        try:
            await loop.run_in_executor(self._executor, self._load_blocking)
        except Exception as exc:
            raise LLMError(f"local model failed to load: {exc}") from exc
        self.load_seconds = time.perf_counter() - started
        log.info("local model ready in %.2fs (%s, %d thread(s))", self.load_seconds, self.model, self._n_threads)

    def _load_blocking(self) -> None:
        # Idle OpenMP workers must sleep, not spin, beside the other models of the box.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        import llama_cpp  # deferred: loading libllama is start-up work, never import-time

        path = self._model_path or ensure_model(self._model_dir)
        self._llm = llama_cpp.Llama(
            model_path=str(path),
            n_threads=self._n_threads,
            n_threads_batch=self._n_threads,
            n_ctx=self._n_ctx,
            verbose=False,
        )
        if self._warm_messages:
            # One tiny completion: evaluates the shared prompt prefix (system prompt, greeting)
            # so a call's first turn reuses it from the KV cache, and sizes the compute buffers.
            warm = [*self._warm_messages, {"role": "user", "content": "Hello"}]
            self._llm.create_chat_completion(messages=warm, max_tokens=1, temperature=0.0)

    async def warm(self, messages: Messages, tools: Sequence[ToolSpec] = ()) -> Usage | None:
        """Evaluate a call's own opening prefix (a returning caller's memory changes the system
        prompt) on the worker while the greeting plays, so the first answer reuses it from the KV
        cache. The start-up prefix is cached already: nothing to do for it."""
        if self._llm is None or self._closed or not messages:
            return None
        if self._warm_messages and messages[0] == self._warm_messages[0]:
            return None

        def _run() -> None:
            if self._llm is not None and not self._closed:
                self._llm.create_chat_completion(messages=[*messages, {"role": "user", "content": "Hello"}],
                                                 max_tokens=1, temperature=0.0)

        await asyncio.get_running_loop().run_in_executor(self._executor, _run)
        return None

    async def aclose(self) -> None:
        self._closed = True
        llm, self._llm = self._llm, None

        def _close() -> None:
            if llm is not None:
                llm.close()

        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._executor, _close)
        finally:
            self._executor.shutdown(wait=False, cancel_futures=True)

    async def _stream_impl(self, messages: Messages, max_tokens: int, stats: StreamStats) -> AsyncGenerator[str, None]:
        if self._llm is None or self._closed:
            raise LLMError("local model is not loaded")
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        cancel = threading.Event()

        def emit(item: Any) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop is gone (shutdown): nobody is listening
                cancel.set()

        job = loop.run_in_executor(self._executor, self._generate, messages, max_tokens, cancel, emit)
        job.add_done_callback(_swallow)
        try:
            while True:
                item = await queue.get()
                if item is _DONE:
                    return
                if isinstance(item, BaseException):
                    raise item
                if isinstance(item, _Prompt):
                    stats.input_tokens = int(item)
                    continue
                stats.output_tokens = (stats.output_tokens or 0) + 1  # one streamed piece per token
                yield item
        finally:
            cancel.set()  # stops the worker at its next token (or before it starts)

    def _generate(
        self, messages: Messages, max_tokens: int, cancel: threading.Event, emit: Callable[[Any], None]
    ) -> None:
        """Runs on the worker thread."""
        if cancel.is_set() or self._llm is None:
            emit(_DONE)
            return
        try:
            chunks = self._llm.create_chat_completion(
                messages=messages,
                stream=True,
                max_tokens=max_tokens,
                temperature=self._temperature,
                stop=self._stop,
            )
            generated = 0
            try:
                for chunk in chunks:
                    if cancel.is_set():
                        break
                    text = chunk["choices"][0].get("delta", {}).get("content")
                    if text:
                        generated += 1
                        emit(text)
            finally:
                chunks.close()
            emit(_Prompt(max(0, int(getattr(self._llm, "n_tokens", 0)) - generated)))
            emit(_DONE)
        except Exception as exc:
            emit(exc)


def _swallow(future: asyncio.Future[Any]) -> None:
    """Errors travel through the queue; only retrieve them here so asyncio stays quiet."""
    if not future.cancelled():
        future.exception()
