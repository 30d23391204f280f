"""Piper as a `Synthesizer`: one voice, one dedicated worker thread, sentences streamed back.

All Piper work (loading, phonemizing, inference, resampling, mu-law) runs on a single worker
thread that owns the model, so concurrent calls on this replica queue for it instead of
fighting over cores. Each sentence is handed to the event loop the moment it is ready.
Closing a stream cancels its job: a job still queued never starts, and a running one stops
mid-inference (onnxruntime terminate flag) or between sentences.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .piper_voice import PiperSynth, SynthCancel, to_phone_audio
from .provider import SynthCapabilities, Synthesizer

log = logging.getLogger("ringline.tts.piper")

_DONE = object()


class PiperSynthesizer(Synthesizer):
    name = "piper"
    capabilities = SynthCapabilities(streaming=True, cancel=True)

    def __init__(
        self,
        model_path: str | None = None,
        threads: int = 1,
        length_scale: float | None = None,
        piece_ms: int = 100,
        warmup_text: str = "Hello.",
        synth: PiperSynth | None = None,
    ) -> None:
        """`synth` hands over an already loaded voice (tests share one); it is then used as is."""
        super().__init__(piece_ms)
        self._model_path = model_path
        self._threads = threads
        self._length_scale = length_scale
        self._warmup_text = warmup_text
        self._synth = synth
        self._executor: ThreadPoolExecutor | None = None

    @property
    def sample_rate(self) -> int:
        return self._require().sample_rate

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self._synth is None:
            self._synth = await loop.run_in_executor(self._worker(), self._load)
        if self._warmup_text:
            synth = self._synth
            await loop.run_in_executor(self._worker(), lambda: list(synth.synthesize(self._warmup_text)))

    async def aclose(self) -> None:
        if self._executor is not None:
            # Jobs still queued are dropped; a running one was cancelled by its stream's close.
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    def _load(self) -> PiperSynth:
        return PiperSynth(self._model_path, threads=self._threads, length_scale=self._length_scale)

    def _worker(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tts-piper")
        return self._executor

    def _require(self) -> PiperSynth:
        if self._synth is None:
            raise RuntimeError("Piper voice not loaded: await start() first")
        return self._synth

    async def _stream_impl(self, text: str) -> AsyncGenerator[bytes, None]:
        synth = self._require()
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        cancel = SynthCancel()
        put = _threadsafe_put(loop, queue)

        def job() -> None:
            try:
                for pcm in synth.synthesize(text, cancel):
                    if cancel.cancelled:
                        return
                    put(to_phone_audio(pcm, synth.sample_rate))
            except Exception as exc:  # handed to the reader, which raises it
                put(exc)
            finally:
                put(_DONE)

        future = loop.run_in_executor(self._worker(), job)
        # A job dropped from the queue at shutdown never runs; do not leave the reader hanging.
        future.add_done_callback(lambda f: queue.put_nowait(_DONE) if f.cancelled() else None)
        try:
            while (item := await queue.get()) is not _DONE:
                if isinstance(item, Exception):
                    raise item
                yield item
        finally:
            cancel.cancel()


def _threadsafe_put(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[Any]) -> Callable[[Any], None]:
    def put(item: Any) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:  # the loop is gone (shutdown); nobody is reading any more
            pass

    return put
