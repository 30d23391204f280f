"""A call no brain has room for, to an agent that takes messages when busy: within two seconds the
caller hears the agent's voicemail prompt instead of the busy line, what they say is the message
(on the bus for the record, as when the brain takes one), then the goodbye, and the call ends. A
full STT still gets the busy line (nothing would hear the caller finish). The edge renders the
lines with the local Piper voice (hence the integration tier); `Listening` is pure (unit tests).
"""

from __future__ import annotations

import base64
import time
from pathlib import Path

import pytest

from ringline.contracts import subjects
from ringline.contracts.agent_options import Voicemail
from ringline.contracts.events import CALL_BUSY, CALL_REFUSED, VOICEMAIL_MESSAGE, VOICEMAIL_STARTED
from ringline.contracts.messages import CallEvent, SpeechEvent, Transcript
from ringline.services.telephony.busy_message import NOTHING_SAID_S, Listening
from ringline.services.telephony.settings import TelephonySettings

pytestmark = pytest.mark.integration

CALL = "CA" + "0123456789abcdef" * 2
PROMPT = "Sorry, every line is busy. Please leave a message after the tone."
AGENTS = f"""
agents:
  - id: default
    name: Ava
    voicemail: {{prompt: "{PROMPT}", silence_s: 1.0, when_busy: true}}
"""


@pytest.fixture
def edge(tw, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("TWILIO_AUTH_TOKEN", raising=False)
    agents = tmp_path / "agents.yaml"
    agents.write_text(AGENTS)
    settings = TelephonySettings(public_url="https://edge.example.com", RINGLINE_AGENTS_FILE=str(agents))
    yield from tw.make_edge(settings)


def lines_ready(edge) -> None:
    registry = edge.client.app.state.registry
    deadline = time.monotonic() + 90
    while not (registry.busy_line.audio and registry.message_lines.line(PROMPT).audio):
        assert time.monotonic() < deadline, "the busy line and the agent's prompt were never rendered"
        time.sleep(0.05)


def refuse(edge, stage: str) -> float:
    edge.publish(CallEvent(call_id=CALL, name=CALL_REFUSED, data={"stage": stage, "replica": f"{stage}-a",
                                                                  "reason": "at max_calls 4"}),
                 subjects.event(CALL))
    return time.monotonic()


def audio_until_quiet(tw, ws, quiet_s: float) -> tuple[bytes, dict | None]:
    """Agent audio until `quiet_s` without any, or the socket closing (then its close)."""
    audio = b""
    while True:
        try:
            got = tw.receive(ws, timeout=quiet_s)
        except TimeoutError:
            return audio, None
        if "close" in got:
            return audio, got
        if got["json"]["event"] == "media":
            audio += base64.b64decode(got["json"]["media"]["payload"])


def test_a_full_brain_gets_the_caller_the_agents_voicemail_and_the_message_is_kept(edge, tw) -> None:
    lines_ready(edge)
    prompt_s = edge.client.app.state.registry.message_lines.line(PROMPT).seconds
    ws = tw.open_call(edge)
    try:
        leave_a_message(edge, tw, ws, prompt_s)
    finally:
        ws.__exit__(None, None, None)


def leave_a_message(edge, tw, ws, prompt_s: float) -> None:
    refused_at = refuse(edge, "brain")
    first = tw.receive_json(ws, timeout=3.0)
    first_at = time.monotonic()
    assert first["event"] == "media" and first_at - refused_at < 2.0  # never silence
    prompt, closed = audio_until_quiet(tw, ws, quiet_s=0.3 + 0.5)
    prompt = base64.b64decode(first["media"]["payload"]) + prompt
    assert closed is None and len(prompt) / 8000 == pytest.approx(prompt_s, abs=0.05)  # the prompt, not the busy line
    started = [e for e in edge.wait_for(subjects.event(CALL)) if e["name"] == VOICEMAIL_STARTED]
    assert started and "no brain capacity" in started[0]["data"]["reason"]

    # Once the prompt has played, the caller leaves a message; the STT (which had room) hears it.
    time.sleep(max(0.0, first_at + prompt_s + 0.5 - time.monotonic()))
    t0 = time.time()
    for kind, at in (("started", t0), ("continuing", t0 + 0.5), ("stopped", t0 + 1.2)):
        edge.publish(SpeechEvent(call_id=CALL, utterance_id="u1", kind=kind, at=at, voiced_ms=600),
                     subjects.speech(CALL))
        time.sleep(0.3)
    edge.publish(Transcript(call_id=CALL, utterance_id="u1", text="It's Sam, please call me back about Tuesday."),
                 subjects.transcript(CALL))
    goodbye, closed = audio_until_quiet(tw, ws, quiet_s=6.0)
    assert len(goodbye) / 8000 > 1.0 and len(set(goodbye)) > 20  # the goodbye, spoken
    assert closed == {"close": 1000, "reason": "busy"}
    events = edge.wait_for(subjects.event(CALL))
    message = next(e for e in events if e["name"] == VOICEMAIL_MESSAGE)
    assert message["data"]["text"] == "It's Sam, please call me back about Tuesday."
    assert message["data"]["ended"] == "silence" and message["data"]["duration_s"] > 0
    busy = next(e for e in events if e["name"] == CALL_BUSY)
    assert busy["data"]["stage"] == "brain" and busy["data"]["voicemail"] is True
    end = edge.wait_for(subjects.CALLS_END)[0]
    assert end["reason"].startswith("busy: no brain capacity") and end["reason"].endswith("message taken")


def test_a_full_stt_still_gets_the_busy_line(edge, tw) -> None:
    lines_ready(edge)
    line_s = edge.client.app.state.registry.busy_line.seconds
    ws = tw.open_call(edge)
    try:
        refuse(edge, "stt")
        audio, closed = audio_until_quiet(tw, ws, quiet_s=line_s + 3.0)
        assert closed == {"close": 1000, "reason": "busy"}
        assert len(audio) / 8000 == pytest.approx(line_s, abs=0.05)
        assert not [e for e in edge.on(subjects.event(CALL)) if e["name"] == VOICEMAIL_STARTED]
    finally:
        ws.__exit__(None, None, None)


# -- when the message is over (pure) -------------------------------------------------------------

OPTIONS = Voicemail(silence_s=2.0, max_s=30.0)


def speech(kind: str, utterance: str = "u1") -> SpeechEvent:
    return SpeechEvent(call_id=CALL, utterance_id=utterance, kind=kind)  # type: ignore[arg-type]


@pytest.mark.unit
def test_the_message_ends_after_the_callers_silence_once_their_last_words_are_in() -> None:
    heard = Listening(started=0.0, options=OPTIONS)
    heard.on_speech(speech("started"), 1.0)
    assert heard.done(5.0) is None  # still talking
    heard.on_speech(speech("stopped"), 3.0)
    assert heard.done(4.9) is None  # not silent long enough
    assert heard.done(5.5) is None  # silent long enough, but the words are still being transcribed
    heard.on_transcript(Transcript(call_id=CALL, utterance_id="u1", text="Call me back."))
    assert heard.done(5.5) == "silence" and heard.text == "Call me back."


@pytest.mark.unit
def test_a_transcript_that_never_comes_does_not_hold_the_call_and_nothing_said_ends_it_too() -> None:
    heard = Listening(started=0.0, options=OPTIONS)
    heard.on_speech(speech("started"), 1.0)
    heard.on_speech(speech("stopped"), 2.0)
    assert heard.done(5.9) is None and heard.done(6.1) == "silence" and heard.text == ""
    quiet = Listening(started=0.0, options=OPTIONS)
    assert quiet.done(NOTHING_SAID_S - 0.1) is None and quiet.done(NOTHING_SAID_S) == "nothing said"
    talker = Listening(started=0.0, options=OPTIONS)
    talker.on_speech(speech("started"), 1.0)
    assert talker.done(OPTIONS.max_s) == "max length"
