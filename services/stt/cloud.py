"""One call's speech-to-text through Deepgram's live stream, with the local path as fallback.

`DeepgramSession` is an `SttSession` (the local webrtcvad + Whisper path) that routes frames:

- `connecting`: the stream is being opened (in a task); frames go to the local path.
- `deepgram`: each frame's mu-law payload goes out as is; Deepgram's events become
  transcripts. The local VAD still hears every frame (`cloud_voice`), so speech events carry the
  caller's voiced length as they speak (`continuing`), for barge-in, and a turn longer than
  `max_utterance_ms` is finalized (`max_length`). Frames since the last end of turn are kept
  (bounded) for a fallback.
- `local`: after any `DeepgramError` (429/5xx on connect, stall, disconnect, failed send) an
  `stt.fallback` call event goes out, the kept frames are replayed through the local path (so
  the utterance in progress is still transcribed) and the rest of the call stays local. Audio
  is never queued for Deepgram. A failure at connect comes within milliseconds of the call's
  start, so its event waits (briefly) until the memory service says it owns the call.
- `closed`: hang-up; the stream is closed cleanly (`CloseStream`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import Literal

from ringline.contracts import subjects
from ringline.contracts.audio import mulaw_decode
from ringline.contracts.events import STAGE_QUERY, STAGE_READY, STT_UTTERANCE
from ringline.contracts.messages import AudioFrame, CallEvent, CallStart, SpeechEvent, Transcript, TurnTiming, now
from ringline.contracts.pricing import Usage
from ringline.contracts.runtime import CallBus

from .cloud_voice import CloudVoice
from .deepgram import DeepgramError, DeepgramOptions, DeepgramRecognizer, DeepgramStream, SttEvent
from .endofturn import TurnConfig
from .recognizer import Recognizer
from .session import SttSession
from .settings import SttSettings
from .smart_turn import SmartTurn
from .vad import EndpointerConfig

log = logging.getLogger("ringline.stt.cloud")

STT_FALLBACK = "stt.fallback"
REPLAY_FRAMES = 1500  # 30 s of 20 ms frames: what a fallback may replay locally
RECORDER = "memory"  # the stage that keeps the call record
RECORDER_WAIT_S = 1.0  # an event for the record waits this long at most for the recorder

Mode = Literal["connecting", "deepgram", "local", "closed"]


class DeepgramSession(SttSession):
    def __init__(
        self,
        call: CallStart,
        bus: CallBus,
        recognizer: Recognizer,
        cloud: DeepgramRecognizer,
        config: EndpointerConfig | None = None,
        turn: TurnConfig | None = None,
        turn_model: SmartTurn | None = None,
    ) -> None:
        super().__init__(call, bus, recognizer, config, turn, turn_model)
        self.cloud = cloud
        self.mode: Mode = "connecting"
        self.stream: DeepgramStream | None = None
        self.fallback_reason = ""
        self._route = asyncio.Lock()  # one frame (or the fallback replay) at a time
        self._kept: deque[AudioFrame] = deque(maxlen=REPLAY_FRAMES)
        self._connect: asyncio.Task[None] | None = None
        self._reader: asyncio.Task[None] | None = None
        self.voice = CloudVoice(call.call_id, self.endpointer.config)
        self._billed_audio_s = 0.0  # stream audio already charged to an utterance
        self._recorder = asyncio.Event()  # the memory service listens to this call's events

    @property
    def provider(self) -> str:
        return self.cloud.name

    async def start(self) -> None:
        await super().start()
        await self.bus.subscribe(subjects.event(self.call_id), self._on_event)
        await self.bus.publish(CallEvent(call_id=self.call_id, name=STAGE_QUERY), subjects.event(self.call_id))
        self._connect = self.bus.spawn(self._open(), "deepgram-connect")

    async def _on_event(self, event: CallEvent) -> None:
        if event.name == STAGE_READY and event.data.get("stage") == RECORDER:
            self._recorder.set()

    async def _publish_for_record(self, event: CallEvent) -> None:
        """Publish once the recorder listens (or after `RECORDER_WAIT_S`, whatever comes first)."""
        if not self._recorder.is_set():
            try:
                async with asyncio.timeout(RECORDER_WAIT_S):
                    await self._recorder.wait()
            except TimeoutError:
                log.warning("call %s: no %s stage owns the call; %s published anyway", self.call_id, RECORDER,
                            event.name)
        await self.bus.publish(event, subjects.event(self.call_id))

    async def _open(self) -> None:
        try:
            stream = await self.cloud.open(call_keyterms(self.call.custom))
        except DeepgramError as exc:
            async with self._route:
                await self._fall_back(exc)
            return
        async with self._route:
            if self.mode != "connecting":  # hung up (or failed) meanwhile
                self.bus.spawn(stream.aclose(), "deepgram-close")
                return
            self.stream = stream
            if self._utterance is not None:  # the local path is mid-utterance: let it finish it
                log.info("call %s: deepgram connected mid-utterance; switching after it", self.call_id)
            self._reader = self.bus.spawn(self._read(stream), "deepgram-events")
            self.mode = "deepgram" if self._utterance is None else "connecting"
            log.info("call %s: deepgram connected in %.0f ms", self.call_id, stream.stats.connect_ms)

    # -- audio in ---------------------------------------------------------------------------

    async def on_frame(self, frame: AudioFrame) -> None:
        if self._ended:
            return
        async with self._route:
            if self.mode == "connecting" and self.stream is not None and self._utterance is None:
                self.mode = "deepgram"  # connected while the local path finished an utterance
            if self.mode != "deepgram":
                await super().on_frame(frame)
                return
            if not isinstance(frame, AudioFrame) or not isinstance(frame.payload, bytes | bytearray):
                self.stats.frames_skipped += 1
                return
            if frame.call_id != self.call_id or not frame.payload:
                self.stats.frames_skipped += 1
                return
            self._kept.append(frame)
            assert self.stream is not None
            try:
                await self.stream.send(bytes(frame.payload), frame.captured_at)
            except DeepgramError as exc:
                await self._fall_back(exc)
                return
            await self._hear(frame)

    async def _hear(self, frame: AudioFrame) -> None:
        """The local VAD on the frame Deepgram got: speech events, and the maximum turn length."""
        pcm = mulaw_decode(bytes(frame.payload))
        await self._speech(self.voice.push(pcm, frame.captured_at))
        if self.stream is not None and self.voice.too_long(frame.captured_at + pcm.size / 8000):
            log.info("call %s: turn longer than %d ms; asking deepgram to finalize", self.call_id,
                     self.voice.max_turn_ms)
            try:
                await self.stream.finalize()
            except Exception as exc:  # the stream's failure reaches `_read`, which falls back
                log.warning("call %s: finalize failed: %r", self.call_id, exc)

    async def _fall_back(self, error: DeepgramError) -> None:
        """Hand the rest of the call to the local path (the caller holds `_route`)."""
        if self.mode in ("local", "closed"):
            return
        at_connect = self.stream is None
        self.mode = "local"
        self.fallback_reason = str(error)
        log.warning("call %s: deepgram failed (%s); falling back to local whisper", self.call_id, error)
        event = CallEvent(
            call_id=self.call_id,
            name=STT_FALLBACK,
            turn_id=self.voice.utterance_id or "",
            data={"from": "deepgram", "to": "whisper", "reason": str(error),
                  "error": type(error).__name__, "status": error.status,
                  "replayed_frames": len(self._kept)},
        )
        if at_connect:  # the memory service may not own the call yet: the event waits for it
            self.bus.spawn(self._publish_for_record(event), "stt-fallback-event")
        else:
            await self.bus.publish(event, subjects.event(self.call_id))
        self.voice.reset()
        kept, self._kept = list(self._kept), deque(maxlen=REPLAY_FRAMES)
        for frame in kept:  # the utterance in progress, through the local VAD and Whisper
            await super().on_frame(frame)
        stream, self.stream = self.stream, None
        if stream is not None:
            self.bus.spawn(stream.aclose(), "deepgram-close")

    # -- Deepgram's events out --------------------------------------------------------------

    async def _read(self, stream: DeepgramStream) -> None:
        try:
            async for event in stream.events():
                if self.mode not in ("deepgram", "connecting"):
                    return
                await self._publish(event, stream)
        except DeepgramError as exc:
            async with self._route:
                await self._fall_back(exc)

    async def _publish(self, event: SttEvent, stream: DeepgramStream) -> None:
        if event.kind == "speech_started":
            await self._speech(self.voice.cloud_started(event.started_at))
        elif event.kind == "interim" and event.text:
            utterance_id = self.voice.begin(event.started_at)
            await self.bus.publish(
                Transcript(call_id=self.call_id, utterance_id=utterance_id, text=event.text, is_final=False,
                           end_of_turn=False, speech_started_at=self.voice.started_at,
                           speech_ended_at=event.ended_at or event.started_at, provider=self.provider),
                subjects.transcript(self.call_id),
            )
        elif event.kind == "final" and event.end_of_turn and event.text:
            await self._final(event, stream)

    async def _speech(self, events: list[SpeechEvent]) -> None:
        for speech in events:
            await self.bus.publish(speech, subjects.speech(self.call_id))

    async def _final(self, event: SttEvent, stream: DeepgramStream) -> None:
        utterance_id = self.voice.begin(event.started_at)
        started_at = min(self.voice.started_at, event.started_at) if self.voice.started_at else event.started_at
        end_reason = "max_length" if self.voice.finalizing and event.end_reason == "finalize" else event.end_reason
        self._kept.clear()  # this turn is done: a fallback from here replays only what follows
        self.stats.end_reasons[end_reason] += 1
        self.stats.utterances += 1
        await self._speech(self.voice.turn_ended(event.ended_at))
        emitted_at = now()
        end_of_turn_ms = round((emitted_at - event.ended_at) * 1000, 1)
        audio_s = stream.stats.audio_s
        seconds, self._billed_audio_s = max(0.0, audio_s - self._billed_audio_s), audio_s
        await self.bus.publish(
            Transcript(call_id=self.call_id, utterance_id=utterance_id, text=event.text, is_final=True,
                       end_of_turn=True, speech_started_at=started_at, speech_ended_at=event.ended_at,
                       emitted_at=emitted_at, provider=self.provider, end_reason=end_reason),
            subjects.transcript(self.call_id),
        )
        usage = Usage(stt_provider=self.provider, stt_seconds=round(seconds, 3))
        await self.bus.publish(
            CallEvent(
                call_id=self.call_id, name=STT_UTTERANCE, turn_id=utterance_id,
                data={"utterance_id": utterance_id, "usage": usage.model_dump(), "end_of_turn_ms": end_of_turn_ms,
                      "latency_ms": end_of_turn_ms, "end_reason": end_reason,
                      "audio_ms": round((event.ended_at - started_at) * 1000), "confidence": event.confidence},
                timing=TurnTiming(speech_ended_at=event.ended_at, transcript_at=emitted_at,
                                  stt_provider=self.provider),
            ),
            subjects.event(self.call_id),
        )

    # -- hang-up ----------------------------------------------------------------------------

    async def _stop_work(self, reason: str) -> None:
        self.mode = "closed"
        await super()._stop_work(reason)
        if self._connect is not None and not self._connect.done():
            self._connect.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._connect
        stream, self.stream = self.stream, None
        if stream is not None:
            await stream.aclose()  # CloseStream; what it still says is no longer wanted
        if self._reader is not None and not self._reader.done():
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader


def call_keyterms(custom: dict[str, str]) -> tuple[str, ...]:
    """The words this call's agent expects (`stt_keyterms`, comma-separated, set by the edge)."""
    return tuple(term.strip() for term in custom.get("stt_keyterms", "").split(",") if term.strip())


def build_cloud(settings: SttSettings) -> DeepgramRecognizer:
    key = settings.deepgram_api_key.get_secret_value() if settings.deepgram_api_key is not None else ""
    return DeepgramRecognizer(DeepgramOptions(
        api_key=key,
        model=settings.deepgram_model,
        language=settings.language,
        endpointing_ms=settings.deepgram_endpointing_ms,
        utterance_end_ms=settings.deepgram_utterance_end_ms,
        keyterms=tuple(settings.deepgram_keyterms),
        base_url=settings.deepgram_base_url,
        send_ms=settings.deepgram_send_ms,
    ))
