"""`place_call`: ring the edge like Twilio does, play a scenario, listen, and report what the caller
experienced: mouth-to-ear per reply, barge-in reaction, false cut-offs, how the call ended."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from . import twilio_sim
from .failover import ActionFollower
from .line import PhoneLine
from .record import fetch_record
from .records_merge import merge_record
from .results import CallResult, StepResult, TurnResult
from .runner import ScenarioRunner, Timeouts
from .scenario import Scenario, from_utterances, prepare
from .speech import Utterance, write_wav
from .verdicts import judge

__all__ = ["CallResult", "StepResult", "TurnResult", "place_call"]

log = logging.getLogger("ringline.caller")


async def _ring(client: httpx.AsyncClient, url: str, form: dict[str, str], agent: str | None,
                auth_token: str | None, public_url: str | None, path: str | None = None) -> twilio_sim.StreamTarget:
    path = path or "/twilio/voice" + (f"?{httpx.QueryParams({'agent': agent})}" if agent else "")
    headers = {}
    if auth_token:
        headers[twilio_sim.SIGNATURE_HEADER] = twilio_sim.signature(auth_token, (public_url or url) + path, form)
    response = await client.post(url + path, data=form, headers=headers)
    if response.status_code != 200:
        raise RuntimeError(f"voice webhook answered {response.status_code}: {response.text[:200]}")
    return twilio_sim.read_twiml(response.text)


async def place_call(
    url: str,
    utterances: Sequence[Utterance] | Scenario,
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
    voice_path: str | None = None,
    call_sid: str | None = None,
    answered_by: str | None = None,
) -> CallResult:
    """Place one simulated call to the telephony edge at `url` and report what happened.

    `utterances` is a `Scenario` (see `scenario`), or a plain list of utterances, each said in turn
    with its reply heard out. Text in a scenario is synthesized first (off the event loop).
    Every wait is bounded; failures end up in `CallResult.problems`, never as a hang.
    `auth_token` signs the webhook and the socket (X-Twilio-Signature) for `public_url or url`.
    `garbage_after_greeting` are raw socket messages sent once the greeting has played.
    An outbound call placed by `POST /calls` is answered with `voice_path` (its webhook path and
    query), `call_sid` (Twilio's) and `answered_by` (`human`, `machine_start`, ...); `caller` is
    then the number it was placed from and `callee` the one answering.
    A stream that ends while the call is up is followed through `<Connect action>` as Twilio does;
    `CallResult.reconnects` says when, and the gap the caller heard.
    """
    from websockets.asyncio.client import connect

    scenario = utterances if isinstance(utterances, Scenario) else from_utterances(utterances)
    if not scenario.prepared:
        scenario = await asyncio.to_thread(prepare, scenario)
    timeouts = Timeouts(reply=reply_timeout, greeting=greeting_timeout or reply_timeout, quiet=quiet_s,
                        max_reply=max_reply_s)
    url = url.rstrip("/")
    call_sid, account_sid = call_sid or twilio_sim.sid("CA"), twilio_sim.sid("AC")
    result = CallResult(call_sid=call_sid, stream_sid=twilio_sim.sid("MZ"), started_at=time.time())
    form = (twilio_sim.outbound_answer_form(call_sid, account_sid, caller, callee, answered_by) if answered_by
            else twilio_sim.voice_webhook_form(call_sid, account_sid, caller, callee))
    line: PhoneLine | None = None
    try:
        async with httpx.AsyncClient(timeout=connect_timeout) as client:
            target = await _ring(client, url, form, agent, auth_token, public_url, voice_path)
        headers = {}
        if auth_token:
            headers[twilio_sim.SIGNATURE_HEADER] = twilio_sim.signature(auth_token, target.url)
        async with connect(target.url, additional_headers=headers, open_timeout=connect_timeout,
                           max_size=2**20, ping_interval=None, compression=None) as ws:  # as Twilio: no deflate
            follower = ActionFollower(url, form, account_sid, auth_token=auth_token, public_url=public_url,
                                      timeout=connect_timeout)
            follower.action = target.action
            line = PhoneLine(ws, twilio_sim.StreamMessages(result.stream_sid, call_sid, account_sid), follower)
            await line.open(target.parameters)
            try:
                await ScenarioRunner(line, result, timeouts).run(scenario, garbage_after_greeting)
            finally:
                hung_up_by_agent = line.closed.is_set() and line.timeline.closed_by != "caller"
                await line.hang_up()
            result.ended_by = "agent" if hung_up_by_agent else "caller"
            if hung_up_by_agent and line.close_code not in (1000, None):
                result.problems.append(f"the edge closed the stream: {line.close_code} {line.close_reason}")
            result.problems.extend(dict.fromkeys(line.unexpected))  # unique, in order
            result.reconnects = line.reconnects
            result.problems.extend(f"the stream dropped ({r.close_code}) and the call could not go on: {r.error}"
                                   for r in line.reconnects if r.error and r.reconnected_at is None)
    except Exception as exc:
        log.debug("call failed", exc_info=True)
        result.problems.append(f"call failed: {exc!r}" if not isinstance(exc, RuntimeError) else str(exc))
        result.ended_by = result.ended_by or "error"
    result.ended_at = time.time()
    if line is not None:
        judge(result, line.timeline, line.playback.clock, line.playback.pieces)
        result.audio_stalls_ms, result.agent_audio_s = line.playback.stalls_ms(), line.playback.played_seconds()
    if line is not None and out is not None:
        result.agent_wav = write_wav(out, line.playback.timeline(result.started_at, result.ended_at))
    if nats_url and line is not None:
        result.record, result.record_error = await fetch_record(nats_url, call_sid, record_timeout)
        if result.record is not None:
            merge_record(result.turns, result.record)
    return result
