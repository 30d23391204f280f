"""The Media Streams socket loop: one `CallStream` per connection, thin on purpose.

Reading: Twilio messages are parsed by `twilio_protocol` and published as contract messages.
Writing: agent audio goes through `Playout` into one `Outbox`; control goes first.
Barge-in: `Control(interrupt)` clears the phone's buffer; the marks that the clear flushes come
back as `Playback(cleared=True)`, and the moment the `clear` was written is an `edge.clear` event.
`Control(pause)` clears it too (`edge.clear` with `pause: true`) but keeps the turn's audio, and
the echoes of its flushed marks are not published; `Control(resume)` plays it on from where the
pause cut in (less a short rewind), with replayed mark names (`turn~n:seq`); an interrupt ends it
for good.
Ending: `stop`, a disconnect, an agent hang-up (also completed through Twilio's REST API when
credentials are set), a transfer or shutdown publishes `CallEnd` exactly once.
Transfer: `Control(transfer, target)` moves the call to `target` through Twilio's REST API
(`<Dial>`), records a `call.transfer` event with the outcome, then closes the stream; without
Twilio credentials the stream is closed as after a hang-up.
Agents: at `start` the agent's voice and vocabulary join `CallStart.custom` (see `routing`).
Failover (see `failover`): a stream that starts with `takeover=1` re-attaches to a live call
(no `calls.start`; an `edge.takeover` event instead); `hand_over()` (a draining edge at its
deadline) closes the stream without ending the call, so Twilio reconnects it elsewhere. A call
that ends for good is written to the ended-calls bucket before its stream closes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections import deque

import anyio
from faststream.nats import NatsBroker
from opentelemetry import trace
from opentelemetry.context import Context
from starlette.websockets import WebSocket, WebSocketState

from ringline.contracts import subjects
from ringline.contracts.agents import WatchedAgentBook
from ringline.contracts.events import EDGE_CLEAR, EDGE_HANDOVER, EDGE_TAKEOVER, TURN_FIRST_AUDIO
from ringline.contracts.messages import FRAME_MS, AgentAudio, AudioFrame, CallEnd, CallEvent, Control, TurnTiming
from ringline.contracts.runtime import CallBus, inject_headers, tracer
from ringline.contracts.runtime.fastpath import FramePublisher, subscribe_frames

from . import twilio_protocol as tp
from .agent_actions import AgentActions
from .busy import BusyWatch
from .busy_message import BusyMessage
from .failover import EndedCalls, is_takeover
from .hold import HoldWatch
from .outbox import Outbox
from .playout import ClearSent, Playout
from .registry import CLOSE_GOING_AWAY, CLOSE_NORMAL, CLOSE_POLICY, CLOSE_TOO_BIG, CallRegistry
from .routing import call_options
from .settings import TelephonySettings
from .stream_token import STREAM_TOKEN_PARAM, StreamTokens
from .twilio_rest import TwilioCalls

log = logging.getLogger("ringline.telephony.stream")

# Why a call ended when the socket closed without a `stop` (uvicorn sends 1012 on shutdown).
_DISCONNECT_REASONS = {1000: "caller hung up", 1001: "caller hung up", 1005: "caller hung up",
                       1012: "service shutting down"}


class CallStream(AgentActions):
    def __init__(self, ws: WebSocket, broker: NatsBroker, settings: TelephonySettings,
                 registry: CallRegistry, twilio: TwilioCalls | None = None,
                 agents: WatchedAgentBook | None = None, ended: EndedCalls | None = None,
                 tokens: StreamTokens | None = None) -> None:
        self.ws = ws
        self.broker = broker
        self.settings = settings
        self.registry = registry
        self.twilio = twilio
        self.agents = agents
        self.ended = ended
        self.tokens = tokens  # None: streams are not bound to calls (tests of the loop alone)
        self.agent_id = ""
        self._ignored_target = False
        self.outbox = Outbox(ws.send_text)
        self.playout: Playout | None = None
        self.done = asyncio.Event()
        self.call_id = ""
        self.stream_sid = ""
        self.bus: CallBus | None = None
        self._frames: FramePublisher | None = None  # the caller's audio onto the bus, once started
        self._last_rx = time.monotonic()  # when the phone side last sent anything
        self._span: trace.Span | None = None
        self._early: deque[tuple[tp.Media, float]] = deque(maxlen=settings.max_buffered_frames)
        self._early_dropped = 0
        self._malformed = 0
        self._stopping = asyncio.Event()
        self._close: tuple[int, str] | None = None
        self._end_reason = "caller hung up"
        self._ended = False
        self._hangup: asyncio.Task[None] | None = None  # an agent hang-up or a transfer
        self._message: BusyMessage | None = None  # the agent takes a message when a stage is full
        self._transfer = False
        self._handed_over = False  # the stream closes, the call goes on (elsewhere)

    # ------------------------------------------------------------------------ lifecycle

    async def run(self) -> None:
        self.registry.streams.add(self)
        writer = asyncio.create_task(self.outbox.run(), name="telephony:writer")
        reader = asyncio.create_task(self._read_loop(), name="telephony:reader")
        stopper = asyncio.create_task(self._stopping.wait(), name="telephony:stopper")
        idle = asyncio.create_task(self._watch_idle(), name="telephony:idle")
        try:
            await asyncio.wait({reader, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if reader.done() and not reader.cancelled() and reader.exception() is not None:
                log.error("call %s: reader failed", self.call_id or "?", exc_info=reader.exception())
                self._end_reason = "edge error"
                self._close = self._close or (1011, "internal error")
        finally:
            # Shielded: a cancelled connection (server shutdown) must still end the call.
            with anyio.CancelScope(shield=True):
                for task in (reader, stopper, idle):
                    task.cancel()
                await asyncio.gather(reader, stopper, idle, return_exceptions=True)
                if self._transfer and self._hangup is not None:  # its event goes before CallEnd
                    await asyncio.gather(self._hangup, return_exceptions=True)
                await self._finish()
                if self._hangup is not None:  # the caller may have hung up first; bounded by its timeout
                    await asyncio.gather(self._hangup, return_exceptions=True)
                self.outbox.close()
                await asyncio.gather(writer, return_exceptions=True)
                await self._close_socket()
                self.registry.streams.discard(self)
                self.done.set()

    def request_close(self, code: int, reason: str, end_reason: str | None = None, *, now: bool = True) -> None:
        """Close the socket soon (from any task) and end the call with `end_reason`; with
        `now=False` only the reason is settled (a `stop` or disconnect meanwhile keeps it)."""
        if self._close is None:
            self._close = (code, reason)
            self._end_reason = end_reason or reason
        if now:
            self._stopping.set()

    def hand_over(self, reason: str = "edge draining") -> None:
        """Close the stream but not the call: Twilio requests the action URL and the call
        reconnects to another replica. A call already ending ends as it was going to."""
        if self._close is None:
            self._handed_over = True
            self.request_close(CLOSE_GOING_AWAY, reason)

    async def _close_socket(self) -> None:
        code, reason = self._close or (CLOSE_NORMAL, "")
        if self.ws.application_state != WebSocketState.CONNECTED or self.ws.client_state != WebSocketState.CONNECTED:
            return
        try:
            await self.ws.close(code=code, reason=reason)
        except Exception as exc:  # already gone
            log.debug("closing socket of call %s: %r", self.call_id or "?", exc)

    async def _finish(self) -> None:
        """Publish CallEnd and Control(ended) once, then drop this call's subscriptions."""
        if self._ended:
            return
        self._ended = True
        bus, reason = self.bus, self._end_reason
        if bus is None:
            log.info("socket closed before `start` (%s)", reason)
            return
        if self._handed_over:
            await self._release(bus, reason)
            return
        if self.ended is not None:  # before the socket closes: its action request must find it
            await self.ended.mark(self.call_id, reason)
        if self.registry.announcer is not None:  # every stage lets go, memory closes the record
            await self.registry.announcer.ended(CallEnd(call_id=self.call_id, reason=reason))
        try:
            await bus.publish(CallEnd(call_id=self.call_id, reason=reason), subjects.CALLS_END)
            await bus.publish(Control(call_id=self.call_id, action="ended", reason=reason),
                              subjects.control(self.call_id))
        except Exception:
            log.exception("call %s: publishing the end failed", self.call_id)
        finally:
            await bus.close()
            if self.registry.calls.get(self.call_id) is self:
                del self.registry.calls[self.call_id]
            if self._span is not None:
                self._span.set_attribute("call.end_reason", reason)
                self._span.end()
        log.info("call %s ended: %s", self.call_id, reason)

    async def _release(self, bus: CallBus, reason: str) -> None:
        """A handed-over stream: drop the call's subscriptions here, publish no end."""
        try:
            await bus.publish(CallEvent(call_id=self.call_id, name=EDGE_HANDOVER,
                                        data={"stream_sid": self.stream_sid, "reason": reason,
                                              "replica": self.settings.replica_id}),
                              subjects.event(self.call_id))
        except Exception:
            log.exception("call %s: publishing the handover failed", self.call_id)
        finally:
            await bus.close()
            if self.registry.calls.get(self.call_id) is self:
                del self.registry.calls[self.call_id]
            if self._span is not None:
                self._span.set_attribute("call.handed_over", True)
                self._span.end()
        log.info("call %s: stream handed over (%s); the call goes on", self.call_id, reason)

    # ---------------------------------------------------------------------------- reading

    async def _watch_idle(self) -> None:
        """Cut off a socket that sends no `start` in time, or goes quiet after it (one timer a call,
        not a timeout around every receive)."""
        start_by = time.monotonic() + self.settings.start_timeout_s
        while True:
            due = self._last_rx + self.settings.idle_timeout_s if self.bus is not None else start_by
            wait = due - time.monotonic()
            if wait <= 0:
                self._cut_off_silent()
                return
            await asyncio.sleep(min(wait, self.settings.idle_timeout_s))  # a `start` meanwhile changes `due`

    async def _read_loop(self) -> None:
        limit = self.settings.max_message_bytes
        while True:
            message = await self.ws.receive()
            self._last_rx = time.monotonic()
            if message["type"] == "websocket.disconnect":
                if self._close is None:  # not already ending for a reason of its own
                    code = message.get("code") or CLOSE_NORMAL
                    self._end_reason = _DISCONNECT_REASONS.get(code, f"connection lost ({code})")
                return
            if message["type"] != "websocket.receive":
                continue
            data = message.get("text")
            if data is None:
                data = message.get("bytes") or b""
            size = len(data) if isinstance(data, bytes) else len(data.encode("utf-8", "surrogatepass"))
            if size > limit:
                log.warning("call %s: %d-byte message over the %d-byte limit; closing",
                            self.call_id or "?", size, limit)
                self.request_close(CLOSE_TOO_BIG, "message too big", "edge closed: message too big")
                return
            try:
                event = tp.parse_message(data)
                await self._on_event(event)
            except tp.ProtocolError as exc:
                self._malformed += 1
                log.warning("call %s: skipped a bad message (%d/%d): %s", self.call_id or "?",
                            self._malformed, self.settings.max_malformed, exc)
                if self._malformed >= self.settings.max_malformed:
                    self.request_close(CLOSE_POLICY, "too many malformed messages",
                                       "edge closed: too many malformed messages")
                    return
            if self._stopping.is_set():
                return

    def _cut_off_silent(self) -> None:
        """No `start` within `start_timeout_s`, or nothing at all for `idle_timeout_s` after it."""
        if self.bus is None:
            log.warning("a socket sent no `start` within %.0f s; closing it", self.settings.start_timeout_s)
            self._early.clear()
            self.request_close(CLOSE_POLICY, "no start", "edge closed: no start")
        else:
            log.warning("call %s: nothing from the phone side for %.0f s; closing the stream",
                        self.call_id, self.settings.idle_timeout_s)
            self.request_close(CLOSE_POLICY, "stream idle", "edge closed: stream idle")

    async def _on_event(self, event: tp.TwilioEvent) -> None:
        now = time.time()
        match event:
            case tp.Media() if event.track in ("outbound", "outbound_track"):
                return
            case tp.Media() if self.bus is None:
                if len(self._early) == self._early.maxlen:
                    self._early_dropped += 1
                self._early.append((event, now))
            case tp.Media() if self._frames is not None:
                await self._frames.publish(seq=event.sequence_number, payload=event.payload, captured_at=now)
            case tp.Start() if self.bus is not None:
                raise tp.ProtocolError("a second `start` on the same stream")
            case tp.Start():
                await self._start(event, now)
            case tp.Mark() if self.bus is not None:
                echo = self.playout.echoed(event.name) if self.playout is not None else "heard"
                if echo != "kept":  # a pause flushed it: the turn plays it again on resume
                    await self.bus.publish(tp.to_playback(event, self.call_id, now, cleared=echo == "cleared"),
                                           subjects.playback(self.call_id))
            case tp.Dtmf() if self.bus is not None:
                await self.bus.publish(tp.to_dtmf_control(event, self.call_id, now), subjects.control(self.call_id))
            case tp.Stop():
                self.request_close(CLOSE_NORMAL, "", "caller hung up")
            case tp.Connected():
                log.debug("stream connected (%s %s)", event.protocol, event.version)
            case _:
                raise tp.ProtocolError(f"`{type(event).__name__.lower()}` before `start`")

    async def _start(self, start: tp.Start, now: float) -> None:
        try:
            call_id = subjects.check_call_id(start.call_sid)
        except subjects.InvalidCallId as exc:
            self.request_close(CLOSE_POLICY, "invalid callSid", "edge closed: invalid callSid")
            log.warning("rejected a stream: %s", exc)
            return
        if self.tokens is not None:
            refused = self.tokens.check(start.custom_parameters.get(STREAM_TOKEN_PARAM), call_id, now)
            if refused is not None:
                self.request_close(CLOSE_POLICY, "stream not authorized", f"edge closed: {refused}")
                log.warning("rejected a stream for call %s: %s", call_id, refused)
                return
        start = dataclasses.replace(start, custom_parameters={
            k: v for k, v in start.custom_parameters.items() if k != STREAM_TOKEN_PARAM})
        takeover = is_takeover(start.custom_parameters)
        if takeover and call_id in self.registry.calls:  # the old stream here has not noticed it is gone
            self.registry.calls[call_id].hand_over("reconnected")
            del self.registry.calls[call_id]
        if call_id in self.registry.calls:
            self.request_close(CLOSE_POLICY, "call already streaming", "edge closed: duplicate stream")
            log.warning("rejected a second stream for call %s", call_id)
            return
        self.call_id, self.stream_sid = call_id, start.stream_sid
        self.registry.calls[call_id] = self
        self.playout = Playout(self.outbox, start.stream_sid, self._first_audio, self._clear_written,
                               rewind_s=self.settings.resume_rewind_ms / 1000,
                               rewind_after_s=self.settings.resume_rewind_after_ms / 1000,
                               frames_per_message=self.settings.media_message_ms // FRAME_MS)
        call = tp.to_call_start(start, call_id, self.settings.default_agent, now)
        self.agent_id = call.agent_id
        if self.agents is not None:
            options = call_options(self.agents.book.agent(call.agent_id))
            if options:
                call = call.model_copy(update={"custom": {**call.custom, **options}})
        self._span = tracer("telephony").start_span(
            "call", context=Context(), kind=trace.SpanKind.SERVER,
            attributes={"call.id": call_id, "call.agent_id": call.agent_id, "call.stream_sid": start.stream_sid,
                        "call.takeover": takeover},
        )
        bus = CallBus(self.broker, call_id)
        self.bus = bus
        self._frames = FramePublisher(bus, subjects.audio_in(call_id), AudioFrame(call_id=call_id, seq=0, payload=b""))
        # Subscribe first, so no agent audio or control published in answer to the start is missed.
        await subscribe_frames(bus, subjects.audio_out(call_id), AgentAudio, self._on_agent_audio)
        await bus.subscribe(subjects.control(call_id), self._on_control)
        if self.registry.busy_line is not None and not takeover:  # a stage with no room: the busy line
            self._message = self._busy_message(bus, call)
            watch = BusyWatch(bus, self.registry.busy_line, self.playout.audio, self._busy_hang_up,
                              self.settings.busy_grace_s, self._message)
            await bus.subscribe(subjects.event(call_id), watch.on_event)
        if self.registry.hold_lines is not None and not takeover:  # a stage that is late: the hold line
            hold, sorry = self.registry.hold_lines
            waiting = HoldWatch(bus, hold, sorry, self.playout.audio, self._busy_hang_up,
                                self.settings.hold_after_s, self.settings.hold_give_up_s)
            await bus.subscribe(subjects.event(call_id), waiting.on_event)
            waiting.start()
        if takeover:  # a live call reconnected here: carry on, start nothing
            await bus.publish(CallEvent(call_id=call_id, name=EDGE_TAKEOVER, at=now,
                                        data={"stream_sid": start.stream_sid, "replica": self.settings.replica_id}),
                              subjects.event(call_id))
            log.info("call %s re-attached on this edge (stream %s, %d early frames)",
                     call_id, start.stream_sid, len(self._early))
        else:
            headers = inject_headers(trace.set_span_in_context(self._span))
            if self.registry.announcer is not None:  # durable: a stage that is not up yet claims it later
                await self.registry.announcer.announce(call, headers)
            await bus.publish(call, subjects.CALLS_START, headers=headers)
            log.info("call %s started: agent %s, from %r to %r (%d early frames)",
                     call_id, call.agent_id, call.caller, call.callee, len(self._early))
        if self.registry.announcer is not None:  # the call lives while this edge streams it
            bus.spawn(self.registry.announcer.keep_alive(call_id), "registry")
        if self._early_dropped:
            log.warning("call %s: %d media frames before `start` did not fit the buffer", call_id, self._early_dropped)
        while self._early:
            media, at = self._early.popleft()
            await bus.publish(tp.to_audio_frame(media, call_id, at), subjects.audio_in(call_id))

    # ---------------------------------------------------------------------- bus handlers

    async def _on_agent_audio(self, msg: AgentAudio) -> None:
        if not self._ended and self.playout is not None and not (self._message and self._message.active):
            self.playout.audio(msg)

    def _publish_event(self, event: CallEvent, name: str) -> None:
        bus = self.bus
        if bus is not None and not bus.closed:
            bus.spawn(bus.publish(event, subjects.event(self.call_id)), name=name)

    def _first_audio(self, turn_id: str, timing: TurnTiming) -> None:
        """Runs once the turn's first frame is written: report it with the edge's send time."""
        stamped = timing.model_copy(update={"edge_sent_at": time.time()})
        self._publish_event(CallEvent(call_id=self.call_id, name=TURN_FIRST_AUDIO, turn_id=turn_id,
                                      timing=stamped), "first-audio")
        if self._span is not None:
            self._span.add_event(TURN_FIRST_AUDIO, {"turn.id": turn_id, **stamped.stages_ms()})

    def _clear_written(self, clear: ClearSent) -> None:
        """Runs once `clear` is written: the moment the caller stops hearing the agent."""
        data = {"at": clear.at, "unheard_marks": list(clear.unheard_marks), "dropped": clear.dropped}
        if clear.pause:
            data["pause"] = True
        self._publish_event(CallEvent(call_id=self.call_id, name=EDGE_CLEAR, turn_id=clear.turn_id, at=clear.at,
                                      data=data), "edge-clear")
        if self._span is not None:
            self._span.add_event(EDGE_CLEAR, {"turn.id": clear.turn_id, "marks.unheard": len(clear.unheard_marks)})
