"""An outbound call through the whole stack: `POST /calls` asks Twilio (the REST double, served
from this test process) to place it, then the simulated callee does what Twilio does once the call
is answered (the call's URL with `AnsweredBy`, then the Media Stream). A person hears the agent
open with the call's purpose; an answering machine gets a message and the agent hangs up.

Until the brain's session opens outbound calls with `services/brain/outbound.outbound_opening`,
the agent greets an outbound call like an inbound one: the two tests of what the agent says are
expected to fail (strict, so the marker goes once the session is wired). The first test checks
everything before that: POST /calls, Twilio, the answered call's webhook, stream and record.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from ringline.caller import CallResult, place_call
from ringline.caller.report import format_result
from ringline.caller.scenario import ExpectHangup, Say, Scenario
from ringline.dial import request_call
from ringline.stack import Stack

from doubles.twilio import TwilioApi

pytestmark = pytest.mark.e2e

ACCOUNT = "AC" + "fedcba9876543210" * 2
TWILIO_TOKEN = "0123456789abcdef0123456789abcdef"
API_TOKEN = "e2e-outbound-token"
CALLEE = "+15550100777"
PURPOSE = "confirm your dentist appointment on Tuesday at ten"
AGENTS = """
agents:
  - id: reception
    name: Ava
    numbers: ["+15550100001"]
    greeting: "Hi, this is Ava at Smile Dental. How can I help?"
"""


@pytest.fixture(scope="module")
def twilio_api() -> Iterator[TwilioApi]:
    with TwilioApi() as api:
        yield api


@pytest.fixture(scope="module")
def outbound_stack(tmp_path_factory: pytest.TempPathFactory, twilio_api: TwilioApi) -> Iterator[Stack]:
    data = tmp_path_factory.mktemp("ringline-outbound")
    agents = data / "agents.yaml"
    agents.write_text(AGENTS)
    env = {"RINGLINE_AGENTS_FILE": str(agents), "RINGLINE_TELEPHONY_API_TOKEN": API_TOKEN,
           "TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
           "RINGLINE_TELEPHONY_TWILIO_API_URL": twilio_api.url}
    stack = Stack.on_free_ports(data_dir=data, quiet=True, env=env)
    stack.start(timeout=300)
    yield stack
    stack.stop()


def dial_and_answer(stack: Stack, api: TwilioApi, answered_by: str, says: list[str],
                    out: Path | None = None) -> tuple[dict, CallResult]:
    """`POST /calls`, then play Twilio once the callee picks up, as `answered_by`."""
    placed = asyncio.run(request_call(stack.edge_url, API_TOKEN, CALLEE, PURPOSE, "reception"))
    created = next(c for c in api.created if c["sid"] == placed["call_sid"])
    url = urlsplit(created["Url"])
    assert f"{url.scheme}://{url.netloc}" == stack.edge_url
    steps = [Say(text) for text in says] if answered_by == "human" else [ExpectHangup(timeout_s=40)]
    result = asyncio.run(place_call(
        stack.edge_url, Scenario(steps), caller=created["From"], callee=created["To"],
        voice_path=f"{url.path}?{url.query}", call_sid=created["sid"], answered_by=answered_by,
        auth_token=TWILIO_TOKEN, nats_url=stack.url, out=out, reply_timeout=30.0, record_timeout=15.0))
    print(format_result(result))
    return placed, result


@pytest.fixture(scope="module")
def person(outbound_stack, twilio_api, tmp_path_factory):
    out = tmp_path_factory.mktemp("outbound") / "heard.wav"
    return dial_and_answer(outbound_stack, twilio_api, "human", [], out=out)


def test_an_outbound_call_is_placed_answered_and_recorded_as_outbound(person, twilio_api) -> None:
    placed, result = person
    (created,) = [c for c in twilio_api.created if c["sid"] == placed["call_sid"]]
    assert (created["To"], created["From"], created["MachineDetection"]) == (CALLEE, "+15550100001",
                                                                           "DetectMessageEnd")
    assert result.ok, result.problems
    opening = result.turns[0]
    assert opening.speaker == "agent" and opening.audio_s > 1.0  # the callee heard the agent first
    record = result.record
    assert record is not None and record.call_id == placed["call_sid"]
    assert record.direction == "outbound" and record.agent_id == "reception"


def test_a_person_answering_hears_the_agent_open_with_the_purpose(person) -> None:
    _, result = person
    assert result.record is not None
    said = next(t.text for t in result.record.turns if t.speaker == "agent")
    assert said.startswith("Hi, this is Ava, an AI assistant, calling to confirm your dentist appointment"), said


def test_an_answering_machine_gets_a_message_and_the_agent_hangs_up(outbound_stack, twilio_api) -> None:
    _, result = dial_and_answer(outbound_stack, twilio_api, "machine_end_beep", [])
    assert result.ok, result.problems
    assert result.ended_by == "agent"
    record = result.record
    assert record is not None and record.direction == "outbound"
    said = " ".join(t.text for t in record.turns if t.speaker == "agent")
    assert "dentist appointment" in said and "Goodbye" in said
