"""The phone line of the simulated caller: one Media Stream, driven in real time like Twilio.

A sender task sends a 20 ms media frame every 20 ms for the whole call (the caller's speech, or
mu-law silence between utterances) and echoes marks once the audio before them has "played";
a receiver task feeds agent audio, marks and `clear` into the playback emulator. All socket
writes happen in the sender task, so they never interleave. Everything seen and done is also
written to a `Timeline`, for the verdicts computed after the call.

With an `ActionFollower`, a stream the edge ends (or loses) while the call is up is followed as
Twilio does (see `failover`): the receiver requests the action URL and carries on on the new
stream; meanwhile the caller goes on talking into the void, and the audio that had not played
is gone with the old stream. `closed` is set only when the call is over.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from .failover import ActionFollower, Reconnect
from .playback import PlaybackEmulator
from .speech import FRAME_BYTES, SILENCE, Utterance
from .timeline import Timeline
from .twilio_sim import StreamMessages

log = logging.getLogger("ringline.caller.line")

FRAME_S = 0.02


@dataclass
class Speaking:
    """One utterance on its way out; times are wall-clock seconds."""

    utterance: Utterance
    voiced_frames: int
    sent: int = 0
    started_at: float = 0.0
    speech_end_at: float = 0.0  # when the last frame with speech in it was sent
    ended_at: float = 0.0
    done: asyncio.Event = field(default_factory=asyncio.Event)
    onset_frame: int = 0
    sent_at: dict[int, float] = field(default_factory=dict)  # send time of the frames in `watch`
    watch: frozenset[int] = frozenset()

    @property
    def onset_at(self) -> float:
        """When the first frame with speech in it was sent (0.0 before)."""
        return self.sent_at.get(self.onset_frame, 0.0)

    def pause_spans(self) -> list[tuple[float, float]]:
        """Wall-clock [start, end) of the utterance's inner pauses that were sent."""
        return [(self.sent_at[a], self.sent_at[b]) for a, b in self.utterance.pauses
                if a in self.sent_at and b in self.sent_at]


@dataclass
class Listening:
    """What the agent sent while this window was open."""

    opened_at: float
    first_media_at: float | None = None
    last_media_at: float = 0.0
    frames: int = 0  # 20 ms of agent audio each
    marks: list[str] = field(default_factory=list)
    cleared: int = 0
    marks_before_clear: int = 0  # how many of `marks` had come when the last `clear` came
    got_media: asyncio.Event = field(default_factory=asyncio.Event)


class PhoneLine:
    def __init__(self, ws: Any, messages: StreamMessages, follower: ActionFollower | None = None) -> None:
        self.ws = ws
        self.messages = messages
        self.follower = follower
        self.reconnects: list[Reconnect] = []
        self._down = False  # between two streams of the call
        self._after_reconnect: Reconnect | None = None  # waiting for its first agent audio
        self._stream_base = 0  # frames sent before the current stream began (its timestamps start at 0)
        self.playback = PlaybackEmulator()
        self.timeline = Timeline()
        self.closed = asyncio.Event()
        self.close_code: int | None = None
        self.close_reason = ""
        self.last_media_at = 0.0
        self.unexpected: list[str] = []
        self.fell_behind = 0
        self._speaking: deque[Speaking] = deque()
        self._echoes: deque[tuple[str, str, bool]] = deque()  # (raw message, mark echoed, via clear)
        self._window: Listening | None = None
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []

    # ---------------------------------------------------------------------- script side

    async def open(self, custom_parameters: dict[str, str]) -> None:
        await self.ws.send(self.messages.connected())
        await self.ws.send(self.messages.start(custom_parameters))
        self._tasks = [asyncio.create_task(self._send_loop(), name="caller:send"),
                       asyncio.create_task(self._receive_loop(), name="caller:receive")]

    def speak(self, utterance: Utterance) -> Speaking:
        onset = utterance.onset_frame
        watch = frozenset({onset, *(i for pause in utterance.pauses for i in pause)})
        speaking = Speaking(utterance, voiced_frames=utterance.voiced_frames, onset_frame=onset, watch=watch)
        self._speaking.append(speaking)
        return speaking

    def send_raw(self, raw: str) -> None:
        """Queue a raw text message for the socket, between media frames (for fault injection)."""
        self._echoes.append((raw, "", False))

    def press(self, digit: str) -> None:
        """Press a key: a `dtmf` message, as Twilio sends it."""
        self._echoes.append((self.messages.dtmf(digit), "", False))
        self.timeline.sent_keys.append((time.time(), digit))

    def listen(self) -> Listening:
        """Open a new listening window (the previous one stops collecting)."""
        self._window = Listening(opened_at=time.time())
        return self._window

    async def wait_media(self, window: Listening, timeout: float) -> bool:
        """Until the agent's first audio in `window` arrives (False on timeout or hang-up)."""
        closed = asyncio.ensure_future(self.closed.wait())
        got = asyncio.ensure_future(window.got_media.wait())
        try:
            await asyncio.wait({closed, got}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closed.cancel()
            got.cancel()
        return window.got_media.is_set()

    async def wait_quiet(self, quiet_s: float, timeout: float) -> bool:
        """Until all agent audio has played, its marks are echoed and `quiet_s` passed with no new audio."""
        deadline = time.monotonic() + timeout
        while not self.closed.is_set():
            now = time.time()
            if self.playback.idle(now) and not self._echoes and \
                    now - max(self.last_media_at, self.playback.clock) >= quiet_s:
                return True
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(FRAME_S)
        return True

    async def hang_up(self, timeout: float = 2.0) -> None:
        """Send `stop` and close the socket, as Twilio does when the caller hangs up."""
        self._stopping = True
        self.timeline.close(time.time(), "caller")
        send_task = self._tasks[0] if self._tasks else None
        if send_task is not None:
            await asyncio.wait({send_task}, timeout=timeout)
        if not self.closed.is_set():
            try:
                await self.ws.send(self.messages.stop())
                await asyncio.wait_for(self.ws.close(), timeout)
            except Exception as exc:
                log.debug("closing the stream: %r", exc)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.closed.set()

    # ------------------------------------------------------------------------ the sender

    def _next_frame(self, now: float) -> bytes:
        while self._speaking:
            speaking = self._speaking[0]
            audio = speaking.utterance.audio
            if speaking.sent * FRAME_BYTES >= len(audio):
                speaking.ended_at = now
                speaking.done.set()
                self._speaking.popleft()
                continue
            if speaking.sent == 0:
                speaking.started_at = now
            if speaking.sent in speaking.watch:
                speaking.sent_at[speaking.sent] = now
            frame = audio[speaking.sent * FRAME_BYTES:(speaking.sent + 1) * FRAME_BYTES]
            speaking.sent += 1
            if speaking.sent == speaking.voiced_frames:
                speaking.speech_end_at = now
            return frame
        return SILENCE * FRAME_BYTES

    async def _send_loop(self) -> None:
        loop = asyncio.get_running_loop()
        start, sent = loop.time(), 0
        try:
            while not self._stopping and not self.closed.is_set():
                now = time.time()
                if self._down:
                    self._next_frame(now)  # the caller goes on talking; nothing carries it
                    self._stream_base = sent + 1
                else:
                    try:
                        await self._send_due(now, (sent - self._stream_base) * 20)
                    except Exception:
                        if self.follower is None:
                            raise
                        # the stream is gone: the receiver follows the action; this frame is lost
                sent += 1
                delay = start + sent * FRAME_S - loop.time()
                if delay < -0.2:  # stalled: carry on in real time rather than send a burst
                    self.fell_behind += 1
                    start = loop.time() - sent * FRAME_S
                    delay = 0.0
                await asyncio.sleep(max(0.0, delay))
        except Exception as exc:  # the socket closed under us
            log.debug("sender stopped: %r", exc)
        finally:
            for speaking in self._speaking:  # release anyone waiting on unfinished speech
                speaking.done.set()

    async def _send_due(self, now: float, timestamp_ms: int) -> None:
        for name in self.playback.due_marks(now):
            self._echoes.append((self.messages.mark(name), name, False))
        while self._echoes:
            raw, mark, cleared = self._echoes.popleft()
            await self.ws.send(raw)
            if mark:
                self.timeline.echo(time.time(), mark, cleared)
        await self.ws.send(self.messages.media(self._next_frame(now), timestamp_ms))

    # ---------------------------------------------------------------------- the receiver

    async def _receive_loop(self) -> None:
        ended_at = 0.0
        try:
            while True:
                try:
                    async for raw in self.ws:
                        self._on_message(raw)
                except Exception as exc:
                    log.debug("receiver stopped: %r", exc)
                ended_at = time.time()
                self.close_code = getattr(self.ws, "close_code", None)
                self.close_reason = getattr(self.ws, "close_reason", "") or ""
                if self._stopping or self.follower is None or not await self._follow():
                    return
        finally:
            self.timeline.close(ended_at or time.time(), "agent")  # when the last stream ended
            self.closed.set()

    async def _follow(self) -> bool:
        """The stream ended while the call is up: follow the action to the call's next stream
        (False when the call is over)."""
        assert self.follower is not None
        now = time.time()
        heard = min(self.playback.clock, now) if self.last_media_at else None
        drop = Reconnect(dropped_at=now, close_code=self.close_code, close_reason=self.close_reason,
                         last_agent_audio_at=heard)
        self._down = True
        self.reconnects.append(drop)
        stream = await self.follower.follow(drop)
        if stream is None or self._stopping:  # the call is over: the verdicts see the line as it was
            if stream is not None:
                await stream.ws.close()
            return False
        self.playback.on_clear(drop.dropped_at)  # what the old stream had not played went with it
        self._echoes.clear()  # and its marks never come back
        self.ws, self.messages = stream.ws, stream.messages
        await self.ws.send(self.messages.connected())
        await self.ws.send(self.messages.start(stream.parameters))
        drop.reconnected_at, drop.stream_sid, drop.error = time.time(), stream.messages.stream_sid, ""
        self._after_reconnect = drop
        self._down = False
        log.info("stream dropped (%s %s): reconnected in %.0f ms", drop.close_code, drop.close_reason,
                 drop.reconnect_ms or 0)
        return True

    def _on_message(self, raw: str | bytes) -> None:
        now = time.time()
        try:
            msg = json.loads(raw)
            event = msg["event"]
        except (ValueError, KeyError, TypeError):
            self.unexpected.append(f"unreadable message {str(raw)[:60]!r}")
            return
        window = self._window
        if event == "media":
            try:
                audio = base64.b64decode(msg["media"]["payload"], validate=True)
            except (KeyError, TypeError, ValueError):
                self.unexpected.append("media without a valid base64 payload")
                return
            if not audio:  # any length plays (Twilio queues it and plays it in real time); nothing is a bug
                self.unexpected.append("media with an empty payload")
            self.playback.on_media(now, audio)
            self.timeline.media(now)
            if self._after_reconnect is not None:
                self._after_reconnect.first_agent_audio_at = now
                self._after_reconnect = None
            self.last_media_at = now
            if window is not None:
                if window.first_media_at is None:
                    window.first_media_at = now
                    window.got_media.set()
                window.frames += max(1, round(len(audio) / FRAME_BYTES))  # 20 ms frames, whatever the message size
                window.last_media_at = now
        elif event == "mark":
            name = str(msg.get("mark", {}).get("name", ""))
            self.playback.on_mark(now, name)
            self.timeline.mark(now, name)
            if window is not None:
                window.marks.append(name)
        elif event == "clear":
            echoes = self.playback.on_clear(now)
            self.timeline.clear(now)
            self._echoes.extend((self.messages.mark(name), name, True) for name in echoes)
            if window is not None and window.first_media_at is not None:  # a clear before any audio cut nothing
                window.cleared += 1
                window.marks_before_clear = len(window.marks)
        else:
            self.unexpected.append(f"unknown event {event!r}")
