"""`place_call`: ring the edge like Twilio does, talk, listen, and measure mouth-to-ear."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx

from ringline.contracts.messages import CallRecord, parse_mark

from . import twilio_sim
from .line import Listening, PhoneLine, Speaking
from .record import fetch_record
from .records_merge import merge_record
from .speech import Utterance, write_wav

log = logging.getLogger("ringline.caller")


@dataclass
class TurnResult:
    speaker: Literal["agent", "caller"]
    text: str = ""  # caller: the script's text; agent: the reply text from the call record
    heard_as: str = ""  # caller: what speech-to-text made of it (call record)
    turn_ids: list[str] = field(default_factory=list)
    started_at: float = 0.0  # wall clock: first frame sent (caller) / received (agent)
    ended_at: float = 0.0  # caller: end of speech; agent: its audio finished playing
    mouth_to_ear_ms: float | None = None  # agent replies: caller's end of speech -> first agent audio
    stages_ms: dict[str, float] = field(default_factory=dict)  # stt/brain/tts/edge/total (record)
    audio_s: float = 0.0
    interrupted: bool = False
    note: str = ""


@dataclass
class CallResult:
    call_sid: str
    stream_sid: str = ""
    turns: list[TurnResult] = field(default_factory=list)
    agent_wav: Path | None = None
    record: CallRecord | None = None
    record_error: str = ""
    problems: list[str] = field(default_factory=list)
    ended_by: str = ""
    started_at: float = 0.0
    ended_at: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def replies(self) -> list[TurnResult]:
        return [t for t in self.turns if t.speaker == "agent" and t.mouth_to_ear_ms is not None]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["agent_wav"] = str(self.agent_wav) if self.agent_wav else None
        data["record"] = self.record.model_dump(mode="json") if self.record else None
        data["ok"] = self.ok
        return data


def _agent_turn(window: Listening, line: PhoneLine, speaking: Speaking | None) -> TurnResult:
    turn_ids: list[str] = []
    for name in window.marks:
        turn_id = parse_mark(name)[0] or name
        if turn_id not in turn_ids:
            turn_ids.append(turn_id)
    turn = TurnResult(speaker="agent", turn_ids=turn_ids, started_at=window.first_media_at or 0.0,
                      ended_at=max(line.playback.clock, window.last_media_at),
                      audio_s=round(window.frames * 0.02, 2), interrupted=window.cleared > 0)
    if speaking is not None and window.first_media_at is not None:
        speech_end = speaking.speech_end_at or speaking.ended_at
        turn.mouth_to_ear_ms = round((window.first_media_at - speech_end) * 1000, 1)
        if turn.mouth_to_ear_ms < 0:
            turn.note = "the agent started before the caller finished"
    return turn


async def _ring(client: httpx.AsyncClient, url: str, form: dict[str, str], agent: str | None,
                auth_token: str | None, public_url: str | None) -> twilio_sim.StreamTarget:
    path = "/twilio/voice" + (f"?{httpx.QueryParams({'agent': agent})}" if agent else "")
    headers = {}
    if auth_token:
        headers[twilio_sim.SIGNATURE_HEADER] = twilio_sim.signature(auth_token, (public_url or url) + path, form)
    response = await client.post(url + path, data=form, headers=headers)
    if response.status_code != 200:
        raise RuntimeError(f"voice webhook answered {response.status_code}: {response.text[:200]}")
    return twilio_sim.read_twiml(response.text)


async def _converse(line: PhoneLine, result: CallResult, utterances: Sequence[Utterance], *,
                    reply_timeout: float, greeting_timeout: float, quiet_s: float, max_reply_s: float,
                    garbage: Sequence[str] = ()) -> None:
    greeting = line.listen()
    if await line.wait_media(greeting, greeting_timeout):
        if not await line.wait_quiet(quiet_s, max_reply_s):
            result.problems.append(f"the greeting was still playing after {max_reply_s:.0f} s")
        result.turns.append(_agent_turn(greeting, line, None))
    elif not line.closed.is_set():
        result.problems.append(f"no greeting within {greeting_timeout:.0f} s")
    for raw in garbage:  # fault injection: the call must carry on regardless
        line.send_raw(raw)
    for utterance in utterances:
        if line.closed.is_set():
            result.problems.append(f"the call ended before the caller said {utterance.label!r}")
            return
        window = line.listen()
        speaking = line.speak(utterance)
        try:
            await asyncio.wait_for(speaking.done.wait(), utterance.duration_s + 5.0)
        except TimeoutError:
            result.problems.append(f"could not finish sending {utterance.label!r}")
        result.turns.append(TurnResult(speaker="caller", text=utterance.text or f"[{utterance.label}]",
                                       started_at=speaking.started_at,
                                       ended_at=speaking.speech_end_at or speaking.ended_at,
                                       audio_s=round(utterance.duration_s, 2)))
        if not await line.wait_media(window, reply_timeout):
            if not line.closed.is_set():
                result.problems.append(f"no reply to {utterance.label!r} within {reply_timeout:.0f} s")
            continue
        if not await line.wait_quiet(quiet_s, max_reply_s):
            result.problems.append(f"the reply to {utterance.label!r} was still playing after {max_reply_s:.0f} s")
        result.turns.append(_agent_turn(window, line, speaking))


async def place_call(
    url: str,
    utterances: Sequence[Utterance],
    *,
    caller: str = "+15550100001",
    callee: str = "+15550100002",
    agent: str | None = None,
    out: str | Path | None = None,
    nats_url: str | None = "nats://127.0.0.1:4222",
    reply_timeout: float = 20.0,
    greeting_timeout: float | None = None,
    quiet_s: float = 1.0,
    max_reply_s: float = 90.0,
    auth_token: str | None = None,
    public_url: str | None = None,
    record_timeout: float = 3.0,
    connect_timeout: float = 10.0,
    garbage_after_greeting: Sequence[str] = (),
) -> CallResult:
    """Place one simulated call to the telephony edge at `url` and report what happened.

    Every wait is bounded; failures end up in `CallResult.problems`, never as a hang.
    `auth_token` signs the webhook and the socket (X-Twilio-Signature) for `public_url or url`.
    `garbage_after_greeting` are raw socket messages sent once the greeting has played.
    """
    from websockets.asyncio.client import connect

    url = url.rstrip("/")
    call_sid, account_sid = twilio_sim.sid("CA"), twilio_sim.sid("AC")
    result = CallResult(call_sid=call_sid, stream_sid=twilio_sim.sid("MZ"), started_at=time.time())
    form = twilio_sim.voice_webhook_form(call_sid, account_sid, caller, callee)
    line: PhoneLine | None = None
    try:
        async with httpx.AsyncClient(timeout=connect_timeout) as client:
            target = await _ring(client, url, form, agent, auth_token, public_url)
        headers = {}
        if auth_token:
            headers[twilio_sim.SIGNATURE_HEADER] = twilio_sim.signature(auth_token, target.url)
        async with connect(target.url, additional_headers=headers, open_timeout=connect_timeout,
                           max_size=2**20, ping_interval=None) as ws:
            line = PhoneLine(ws, twilio_sim.StreamMessages(result.stream_sid, call_sid, account_sid))
            await line.open(target.parameters)
            try:
                await _converse(line, result, utterances, reply_timeout=reply_timeout,
                                greeting_timeout=greeting_timeout or reply_timeout,
                                quiet_s=quiet_s, max_reply_s=max_reply_s,
                                garbage=garbage_after_greeting)
            finally:
                hung_up_by_agent = line.closed.is_set()
                await line.hang_up()
            result.ended_by = "agent" if hung_up_by_agent else "caller"
            if hung_up_by_agent and line.close_code not in (1000, None):
                result.problems.append(f"the edge closed the stream: {line.close_code} {line.close_reason}")
            result.problems.extend(dict.fromkeys(line.unexpected))  # unique, in order
    except Exception as exc:
        log.debug("call failed", exc_info=True)
        result.problems.append(f"call failed: {exc!r}" if not isinstance(exc, RuntimeError) else str(exc))
        result.ended_by = result.ended_by or "error"
    result.ended_at = time.time()
    if line is not None and out is not None:
        result.agent_wav = write_wav(out, line.playback.timeline(result.started_at, result.ended_at))
    if nats_url and line is not None:
        result.record, result.record_error = await fetch_record(nats_url, call_sid, record_timeout)
        if result.record is not None:
            merge_record(result.turns, result.record)
    return result
