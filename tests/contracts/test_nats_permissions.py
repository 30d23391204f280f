"""NATS users and grants on a real nats-server configured like `ringline up` configures it.

Every service logs in as its own user with only the subjects of its role
(`contracts/runtime/permissions.py`): the flows of a call still reach their consumers, the
memory service still keeps records and answers, and a service reaching outside its role is
refused by the server (the STT cannot publish a control message, the TTS cannot hear the caller).
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client

from ringline.contracts import subjects
from ringline.contracts.codec import CONTENT_TYPE, pack
from ringline.contracts.messages import CallEnd, CallStart, ReplyChunk, Transcript
from ringline.contracts.runtime.permissions import OPERATOR, ROLES, SERVICES, inbox_prefix
from ringline.nats_config import write_users
from ringline.records import get_call
from ringline.services.memory.app import MemoryService
from ringline.services.memory.settings import MemorySettings
from ringline.stack import free_port, nats_server_binary, port_open

from doubles.bus import settled

pytestmark = pytest.mark.integration

CALL = "CAperm0001"
QUIET_S = 0.4  # long enough for a message that was going to arrive on localhost


@dataclass
class SecuredNats:
    url: str
    passwords: dict[str, str]
    proc: subprocess.Popen

    def operator_url(self) -> str:
        return self.url.replace("nats://", f"nats://{OPERATOR}:{self.passwords[OPERATOR]}@")


@pytest.fixture
def secured_nats(tmp_path: Path) -> Iterator[SecuredNats]:
    port = free_port()
    url = f"nats://127.0.0.1:{port}"
    users = write_users(tmp_path, url)
    log = open(tmp_path / "nats.log", "wb")
    proc = subprocess.Popen([nats_server_binary(), "-a", "127.0.0.1", "-p", str(port), "-js", "-sd",
                             str(tmp_path / "js"), "-c", str(users.config)], stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(200):
            if port_open("127.0.0.1", port):
                break
            assert proc.poll() is None, (tmp_path / "nats.log").read_text()
            asyncio.run(asyncio.sleep(0.05))
        yield SecuredNats(url, users.passwords, proc)
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


class User:
    """One service's connection, and the permission errors the server sent it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.errors: list[str] = []
        self.nc: Client | None = None

    async def connect(self, server: SecuredNats) -> User:
        async def on_error(exc: Exception) -> None:
            self.errors.append(str(exc))

        self.nc = await nats.connect(server.url, user=self.name, password=server.passwords[self.name],
                                     inbox_prefix=inbox_prefix(self.name), error_cb=on_error,
                                     allow_reconnect=False, max_reconnect_attempts=0)
        return self

    async def inbox(self, subject: str) -> asyncio.Queue[str]:
        received: asyncio.Queue[str] = asyncio.Queue()

        async def on_message(msg: nats.aio.msg.Msg) -> None:
            received.put_nowait(msg.subject)

        assert self.nc is not None
        await self.nc.subscribe(subject, cb=on_message)
        await settled(self.nc)
        return received


@pytest.fixture
async def users(secured_nats: SecuredNats) -> AsyncIterator[dict[str, User]]:
    connected = {name: await User(name).connect(secured_nats) for name in (*SERVICES, OPERATOR)}
    yield connected
    for user in connected.values():
        assert user.nc is not None
        await user.nc.close()


def _concrete(pattern: str) -> str:
    return pattern.replace("*", CALL)


def _denied(user: User, kind: str, subject: str) -> bool:
    """The server told `user` it may not publish / subscribe (`kind`) to `subject` (nats-py lower-cases it)."""
    return any(f"permissions violation for {kind}" in e.lower() and subject.lower() in e.lower() for e in user.errors)


async def _nothing_arrives(queue: asyncio.Queue[str]) -> bool:
    try:
        await asyncio.wait_for(queue.get(), QUIET_S)
    except TimeoutError:
        return True
    return False


async def test_a_client_without_the_password_is_refused(secured_nats: SecuredNats) -> None:
    with pytest.raises(Exception, match=r"(?i)authorization"):
        await nats.connect(secured_nats.url, allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=2)
    with pytest.raises(Exception, match=r"(?i)authorization"):
        await nats.connect(secured_nats.url, user="stt", password="not-it", allow_reconnect=False,
                           max_reconnect_attempts=0, connect_timeout=2)


async def test_every_per_call_flow_reaches_every_service_that_consumes_it(users: dict[str, User]) -> None:
    flows = [(producer, pattern, consumer)
             for producer, role in ROLES.items() for pattern in role.publish if pattern.startswith("call.")
             for consumer, other in ROLES.items() if pattern in other.subscribe and consumer != producer]
    assert len(flows) >= 15  # audio in/out, speech, transcript, reply, playback, control, events...
    inboxes = {(pattern, consumer): await users[consumer].inbox(pattern) for _, pattern, consumer in flows}
    for producer, pattern, consumer in flows:
        nc = users[producer].nc
        assert nc is not None
        await nc.publish(_concrete(pattern), b"x")
        await settled(nc)
        got = await asyncio.wait_for(inboxes[(pattern, consumer)].get(), 2.0)
        assert got == _concrete(pattern), f"{producer} -> {consumer} on {pattern}"
    assert not any(user.errors for user in users.values()), {n: u.errors for n, u in users.items() if u.errors}


async def test_the_stt_cannot_publish_a_control_message(users: dict[str, User]) -> None:
    edge_control = await users["telephony"].inbox(subjects.control(CALL))
    stt = users["stt"].nc
    assert stt is not None
    await stt.publish(subjects.control(CALL), b"hangup")
    await settled(stt)
    assert await _nothing_arrives(edge_control), "a control message from the STT reached the edge"
    assert _denied(users["stt"], "publish", subjects.control(CALL)), users["stt"].errors


async def test_the_tts_cannot_hear_the_callers_audio(users: dict[str, User]) -> None:
    tts_ears = await users["tts"].inbox(subjects.audio_in(CALL))
    stt_ears = await users["stt"].inbox(subjects.audio_in(CALL))
    edge = users["telephony"].nc
    assert edge is not None
    await edge.publish(subjects.audio_in(CALL), b"\xff" * 160)
    await settled(edge)
    assert await asyncio.wait_for(stt_ears.get(), 2.0) == subjects.audio_in(CALL)  # the STT does hear it
    assert await _nothing_arrives(tts_ears), "the TTS received caller audio"
    assert _denied(users["tts"], "subscription", subjects.audio_in(CALL)), users["tts"].errors


async def test_no_service_reads_the_replies_meant_for_another(users: dict[str, User]) -> None:
    snoop = await users["tts"].inbox(f"{inbox_prefix('brain')}.>")
    assert await _nothing_arrives(snoop)
    assert _denied(users["tts"], "subscription", inbox_prefix("brain")), users["tts"].errors
    stt = users["stt"].nc
    assert stt is not None
    await stt.publish(subjects.MEMORY_RECALL_FORGET, b"{}")  # only the brain (and the operator) ask memory
    await settled(stt)
    await asyncio.sleep(0.1)
    assert _denied(users["stt"], "publish", subjects.MEMORY_RECALL_FORGET), users["stt"].errors


async def test_a_service_cannot_touch_another_services_buckets(users: dict[str, User]) -> None:
    stt = users["stt"].nc
    assert stt is not None
    js = stt.jetstream(timeout=1.0)
    with pytest.raises(Exception):  # noqa: B017 - the server answers nothing to a denied API call: a timeout
        await js.key_value("ringline_calls")
    assert _denied(users["stt"], "publish", "KV_ringline_calls"), users["stt"].errors


async def test_memory_keeps_records_and_answers_under_its_own_user(secured_nats: SecuredNats,
                                                                  users: dict[str, User]) -> None:
    settings = MemorySettings(nats_url=secured_nats.url, NATS_USER="memory",
                              NATS_PASSWORD=secured_nats.passwords["memory"], summary_wait_s=0.0)
    service = MemoryService(settings, env={})
    await service.open_store()  # key-value buckets and the audio object store, created by the memory user
    await service.broker.start()
    try:
        await settled(service.broker._connection)
        edge, stt, brain = users["telephony"].nc, users["stt"].nc, users["brain"].nc
        assert edge is not None and stt is not None and brain is not None
        headers = {"content-type": CONTENT_TYPE}
        start = CallStart(call_id=CALL, agent_id="default", caller="+15550100001", callee="+15550100002")
        await edge.publish(subjects.CALLS_START, pack(start), headers=headers)
        await asyncio.sleep(0.3)
        heard = Transcript(call_id=CALL, utterance_id="u1", text="hello there", end_of_turn=True)
        await stt.publish(subjects.transcript(CALL), pack(heard), headers=headers)
        await brain.publish(subjects.reply(CALL), pack(ReplyChunk(call_id=CALL, turn_id="t1", seq=0, text="Hi!",
                                                                  final=True)), headers=headers)
        await asyncio.sleep(0.3)
        await edge.publish(subjects.CALLS_END, pack(CallEnd(call_id=CALL, reason="caller hung up")), headers=headers)
        record = None
        for _ in range(40):
            record = await get_call(secured_nats.operator_url(), CALL, timeout=2.0)
            if record is not None and record.ended_at:
                break
            await asyncio.sleep(0.1)
        assert record is not None, "the operator could not read the call record"
        texts = " ".join(turn.text for turn in record.turns)
        assert "hello there" in texts and "Hi!" in texts
    finally:
        await service.shutdown()
        await service.broker.stop()
    assert not any(u.errors for u in users.values()), {n: u.errors for n, u in users.items() if u.errors}
