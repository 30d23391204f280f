"""`ringline dial`: POST /calls on a running edge, and `--simulate`, which plays Twilio and the
callee so an outbound call can be heard without Twilio. A real edge (uvicorn) on a real
nats-server, with a stand-in agent that opens every call with a marked tone and hangs up on an
answering machine once its message has played."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import uvicorn

from ringline import dial
from ringline.contracts import subjects
from ringline.contracts.audio import mulaw_encode
from ringline.contracts.events import STAGE_READY
from ringline.contracts.messages import AgentAudio, CallEvent, CallStart, Control, Playback, make_mark
from ringline.contracts.runtime import ServiceSettings, create_broker
from ringline.services.telephony.app import create_app
from ringline.services.telephony.hold import STAGES
from ringline.services.telephony.settings import TelephonySettings

pytestmark = pytest.mark.integration

TOKEN = "dial-token"
PURPOSE = "remind you of the library book that is due on Friday"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class OpeningAgent:
    """Stands in for every stage: claims each call (`stage.ready` for each, as the stages do, so the
    edge plays no hold line), opens it with 0.6 s of tone (one marked chunk); to a machine it then
    hangs up."""

    broker: Any
    starts: list[CallStart] = field(default_factory=list)
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    def attach(self) -> None:
        self.broker.subscriber(subjects.CALLS_START)(self.on_start)
        self.broker.subscriber("call.*.playback")(self.on_playback)

    async def on_start(self, call: CallStart) -> None:
        self.starts.append(call)
        for stage in STAGES:
            await self.broker.publish(CallEvent(call_id=call.call_id, name=STAGE_READY,
                                                data={"stage": stage, "replica": f"{stage}-a"}),
                                      subjects.event(call.call_id))
        t = np.arange(4800) / 8000
        audio = mulaw_encode((np.sin(2 * np.pi * 550 * t) * 0.3 * 32767).astype(np.int16))
        await asyncio.sleep(0.1)
        await self.broker.publish(AgentAudio(call_id=call.call_id, turn_id="opening", seq=0, payload=audio,
                                             mark=make_mark("opening", 0), final=True),
                                  subjects.audio_out(call.call_id))

    async def on_playback(self, playback: Playback) -> None:
        call = next((c for c in self.starts if c.call_id == playback.call_id), None)
        if call is not None and call.custom.get("answered_by", "").startswith("machine"):
            await self.broker.publish(Control(call_id=call.call_id, action="hangup", reason="message left"),
                                      subjects.control(call.call_id))


@pytest.fixture
async def edge(nats_server, monkeypatch) -> AsyncIterator[SimpleNamespace]:
    for name in ("TWILIO_AUTH_TOKEN", "TWILIO_ACCOUNT_SID", "RINGLINE_AGENTS_FILE"):
        monkeypatch.delenv(name, raising=False)
    settings = TelephonySettings(port=free_port(), nats_url=nats_server.url, api_token=TOKEN, drain_timeout_s=3.0)
    agent = OpeningAgent(create_broker(ServiceSettings(nats_url=nats_server.url), "agent"))
    agent.attach()
    await agent.broker.start()
    config = uvicorn.Config(create_app(settings), host=settings.host, port=settings.port, lifespan="on",
                            log_level="warning", log_config=None)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 10
    while not server.started:
        assert not task.done() and time.monotonic() < deadline, "the edge did not start"
        await asyncio.sleep(0.02)
    try:
        yield SimpleNamespace(url=settings.base_url, agent=agent)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)
        await agent.broker.stop()


def run_cli(*argv: str) -> int:
    return dial.main(list(argv))


async def test_dial_simulate_plays_a_human_answering_and_the_call_starts_as_outbound(edge, capsys) -> None:
    code = await asyncio.to_thread(run_cli, "+1 555 010 0777", "--purpose", PURPOSE, "--url", edge.url,
                                   "--token", TOKEN, "--simulate", "--nats", "", "--reply-timeout", "5")
    out = capsys.readouterr().out
    assert code == 0, out
    (call,) = edge.agent.starts
    assert call.direction == "outbound" and call.agent_id == "default"
    assert call.custom["purpose"] == PURPOSE and call.custom["answered_by"] == "human"
    assert call.callee == "+15550100777" and call.caller == dial.SIMULATED_FROM
    assert "simulated: CallSid " + call.call_id in out
    assert "agent : [greeting, 0.6 s of audio]" in out  # the opening was heard


async def test_dial_simulate_machine_hears_the_message_and_the_agent_hangs_up(edge, capsys) -> None:
    placed = await dial.request_call(edge.url, TOKEN, "+15550100777", PURPOSE, simulate=True)
    result = await dial.answer(edge.url, placed, dial.callee_scenario([], machine=True, hangup_timeout_s=5),
                               machine=True, nats_url=None, reply_timeout=5.0)
    assert result.ok, result.problems
    assert result.ended_by == "agent"
    (call,) = edge.agent.starts
    assert call.call_id == placed["call_sid"] and call.custom["answered_by"] == "machine_start"


async def test_dial_reports_what_the_edge_refused(edge, capsys) -> None:
    code = await asyncio.to_thread(run_cli, "+15550100777", "--purpose", PURPOSE, "--url", edge.url,
                                   "--token", "wrong", "--simulate")
    assert code == 1
    assert "401" in capsys.readouterr().err
    code = await asyncio.to_thread(run_cli, "+15550100777", "--purpose", PURPOSE, "--url", edge.url,
                                   "--token", TOKEN)  # a real call, but the edge has no Twilio
    assert code == 1
    assert "TWILIO_ACCOUNT_SID" in capsys.readouterr().err
    assert edge.agent.starts == []
