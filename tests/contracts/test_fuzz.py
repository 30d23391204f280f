"""Property tests over everything that reads bytes from outside a service (issue 11).

Whatever arrives — a Media Streams message from the internet, a msgpack body from the bus, any
dict posing as a contract message, an agents file an operator typed — the reader either returns
a value or raises its own documented error, never anything else; and what the writers produce
reads back the same.
"""

from __future__ import annotations

import base64
import importlib
import inspect
import json
import pkgutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

import ringline.contracts.messages as messages_pkg
from ringline.contracts.agents import AgentBook, AgentsFileError, load_agents
from ringline.contracts.codec import MalformedMessage, pack, unpack
from ringline.services.telephony import twilio_protocol as tp

pytestmark = pytest.mark.unit

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FUZZ_EACH = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])  # per model

# JSON-ish values, nested a little: what a peer could put anywhere.
scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**64 - 1),
                    st.floats(allow_nan=False), st.text(max_size=30))
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)), max_leaves=12)
wire_values = st.one_of(json_values, st.binary(max_size=40))  # msgpack also carries bytes


# ------------------------------------------------------------------------- Twilio translator

@FUZZ
@given(st.one_of(st.text(max_size=300), st.binary(max_size=300)))
def test_any_bytes_from_the_socket_parse_or_fail_with_a_protocol_error(data: str | bytes) -> None:
    try:
        event = tp.parse_message(data)
    except tp.ProtocolError as exc:
        assert str(exc)
    else:
        assert isinstance(event, tp.Connected | tp.Start | tp.Media | tp.Mark | tp.Dtmf | tp.Stop)


twilio_shaped = st.fixed_dictionaries(
    {"event": st.sampled_from(["connected", "start", "media", "mark", "dtmf", "stop", "clear", ""]),
     "sequenceNumber": st.one_of(st.integers(-5, 10**20), st.text(max_size=22), st.none())},
    optional={"start": st.one_of(json_values, st.fixed_dictionaries(
                  {"callSid": st.text(max_size=40), "streamSid": st.text(max_size=40),
                   "mediaFormat": st.one_of(json_values, st.just({"encoding": "audio/x-mulaw", "sampleRate": 8000,
                                                                  "channels": 1})),
                   "tracks": json_values, "customParameters": json_values})),
              "media": st.one_of(json_values, st.fixed_dictionaries(
                  {"payload": st.one_of(st.text(max_size=40), st.binary(max_size=40).map(
                      lambda b: base64.b64encode(b).decode())),
                   "chunk": json_values, "timestamp": json_values, "track": json_values})),
              "mark": json_values, "dtmf": json_values, "stop": json_values, "streamSid": json_values})


@FUZZ
@given(twilio_shaped)
def test_twilio_shaped_messages_parse_or_fail_with_a_protocol_error(message: dict[str, Any]) -> None:
    try:
        event = tp.parse_message(json.dumps(message))
    except tp.ProtocolError:
        return
    if isinstance(event, tp.Start):  # what the edge does next with a start must not crash either
        call = tp.to_call_start(event, "CAfuzz", "default", 0.0)
        assert call.call_id == "CAfuzz"
        assert all(isinstance(v, str) for v in call.custom.values())


@FUZZ
@given(st.binary(min_size=1, max_size=1000), st.text(min_size=1, max_size=34))
def test_agent_audio_written_to_twilio_reads_back_frame_for_frame(payload: bytes, stream_sid: str) -> None:
    frames = [tp.parse_message(text) for text in tp.media_messages(stream_sid, payload)]
    assert all(isinstance(f, tp.Media) and len(f.payload) == 160 for f in frames)
    joined = b"".join(f.payload for f in frames)
    assert joined[:len(payload)] == payload and set(joined[len(payload):]) <= {0xFF}


# ------------------------------------------------------------------------------ msgpack codec

@FUZZ
@given(st.binary(max_size=300))
def test_any_bus_body_unpacks_or_is_reported_malformed(body: bytes) -> None:
    try:
        unpack(body)
    except MalformedMessage as exc:
        assert "msgpack" in str(exc)


@FUZZ
@given(st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.floats(allow_nan=False),
                              st.text(max_size=30), st.binary(max_size=30)),
                    lambda inner: st.one_of(st.lists(inner, max_size=4),
                                            st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=12))
def test_what_is_packed_unpacks_the_same(value: Any) -> None:
    assert unpack(pack({"v": value}))["v"] == (value if not isinstance(value, tuple) else list(value))


# --------------------------------------------------------------------------- contract models

def _contract_models() -> list[type[BaseModel]]:
    found: dict[str, type[BaseModel]] = {}
    for info in pkgutil.iter_modules(messages_pkg.__path__):
        module = importlib.import_module(f"{messages_pkg.__name__}.{info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, BaseModel) and cls.__module__ == module.__name__:
                found[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return [found[k] for k in sorted(found)]


MODELS = _contract_models()


def _message_like(model: type[BaseModel]) -> st.SearchStrategy[dict[str, Any]]:
    """Dicts with the model's own field names (and its type tag, mostly right) holding anything."""
    fields = {name: wire_values for name in model.model_fields}
    tag = model.model_fields.get("type")
    if tag is not None and isinstance(tag.default, str):
        fields["type"] = st.one_of(st.just(tag.default), wire_values)
    return st.fixed_dictionaries({}, optional=fields)


def test_every_message_family_is_covered() -> None:
    names = {m.__name__ for m in MODELS}
    assert {"CallStart", "AudioFrame", "Transcript", "ReplyChunk", "AgentAudio", "Control", "CallEvent",
            "CallRecord", "RecallGetRequest"} <= names, names


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_any_payload_validates_or_is_refused_and_a_valid_one_survives_the_wire(model: type[BaseModel]) -> None:
    @FUZZ_EACH
    @given(_message_like(model))
    def check(data: dict[str, Any]) -> None:
        try:
            message = model.model_validate(data)
        except ValidationError:
            return
        assert model.model_validate(unpack(pack(message))) == message

    check()


# ------------------------------------------------------------------------------- agents file

agent_like = st.fixed_dictionaries({"id": st.one_of(st.text(max_size=12), json_values)}, optional={
    "name": json_values, "numbers": st.one_of(st.lists(st.text(max_size=16), max_size=3), json_values),
    "transfer_number": json_values, "allow": json_values, "voice": json_values, "limits": json_values,
    "hours": json_values, "voicemail": json_values, "reports": json_values, "outbound": json_values,
    "providers": json_values, "turn_taking": json_values, "tools": json_values, "persona": json_values})
agents_files = st.one_of(
    st.text(max_size=300),
    st.fixed_dictionaries({"agents": st.one_of(st.lists(agent_like, max_size=3), json_values)},
                          optional={"default_agent": json_values}).map(lambda d: yaml.safe_dump(d)),
    st.lists(agent_like, max_size=3).map(lambda d: yaml.safe_dump(d)),
)


@FUZZ
@given(agents_files)
def test_any_agents_file_loads_or_fails_with_a_message(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "agents.yaml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            book = load_agents(path)
        except AgentsFileError as exc:
            assert str(path) in str(exc)
        else:
            assert isinstance(book, AgentBook)
            assert book.fallback is not None
