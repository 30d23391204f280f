"""Who may publish and subscribe to what on NATS: one user per service, least privilege.

This table is the only statement of it. `ringline up` renders it into the nats-server config it
generates (`nats_auth_config`), and the Helm chart reads `infra/k8s/ringline/files/
nats-permissions.json`, written from it by `python -m ringline.contracts.runtime.permissions
--write` (a test checks the chart's rendered permissions equal this table).

* Per-call subjects are granted with a `*` for the call id: a service may use the subjects of
  its role on every call, never another role's (the STT cannot publish a control message, the
  TTS cannot hear the caller's audio).
* Each user gets its own reply inbox prefix (`_INBOX.<user>.`), so no service can read the
  replies meant for another; services that answer requests (memory) publish their answers
  through `allow_responses` instead of a publish grant on inboxes.
* JetStream: the API calls on the streams behind the user's own key-value buckets and object
  stores only (`$JS.API.<op>.KV_<bucket>`), never the whole `$JS.API.>`.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .. import subjects
from .leases import CALLS_BUCKET, CHECKPOINTS_BUCKET, lease_bucket

SERVICES = ("telephony", "stt", "brain", "tts", "memory")
OPERATOR = "operator"  # the `ringline calls|memory|voicemail` commands and the simulated caller's record reads

LEASE_STAGES = ("stt", "brain", "tts", "memory", "telephony")
EDGE_ENDED_BUCKET = "ringline-edge-ended"  # the edge's calls that are over (TelephonySettings.ended_bucket)

def _any_call(build: Callable[[str], str]) -> str:
    """`call.*.<leaf>`: one per-call subject (built by `subjects`) over every call."""
    return build("x").replace("call.x.", "call.*.", 1)


AUDIO_IN, AUDIO_OUT = _any_call(subjects.audio_in), _any_call(subjects.audio_out)
SPEECH, TRANSCRIPT, REPLY = _any_call(subjects.speech), _any_call(subjects.transcript), _any_call(subjects.reply)
PLAYBACK, CONTROL, EVENT = _any_call(subjects.playback), _any_call(subjects.control), _any_call(subjects.event)

# What every stage that claims calls (`CallRouter`) needs: the claim queue and the end of calls.
_CLAIMS = (subjects.CALLS_START, subjects.CALLS_END)
# The durable state every stage keeps (leases, call registry, checkpoints).
_CALL_STATE = (CALLS_BUCKET, CHECKPOINTS_BUCKET)


@dataclass(frozen=True)
class Role:
    """One NATS user's grants. `kv`/`objects` name buckets whose JetStream streams it may use."""

    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    kv: tuple[str, ...] = ()
    objects: tuple[str, ...] = ()
    responds: bool = False  # answers requests: may publish once to a received message's reply subject


ROLES: dict[str, Role] = {
    "telephony": Role(
        publish=(subjects.CALLS_START, subjects.CALLS_END, AUDIO_IN, PLAYBACK, CONTROL, EVENT,
                 # the dashboard's call list, transcripts and voicemail
                 subjects.MEMORY_CALLS_LIST, subjects.MEMORY_CALLS_GET, subjects.MEMORY_VOICEMAIL_GET),
        # its calls' audio and control; the dashboard's live view of every call (never the caller's audio)
        subscribe=(AUDIO_OUT, CONTROL, EVENT, *_CLAIMS, SPEECH, TRANSCRIPT, REPLY),
        kv=("ringline_outbound", EDGE_ENDED_BUCKET, *_CALL_STATE, *(lease_bucket(s) for s in LEASE_STAGES)),
    ),
    "stt": Role(
        publish=(SPEECH, TRANSCRIPT, EVENT),
        subscribe=(*_CLAIMS, AUDIO_IN, CONTROL, EVENT, REPLY),  # the agent's words: Whisper's prompt
        kv=(lease_bucket("stt"), *_CALL_STATE),
    ),
    "brain": Role(
        publish=(REPLY, CONTROL, EVENT, subjects.MEMORY_RECALL_GET, subjects.MEMORY_RECALL_PUT,
                 subjects.MEMORY_RECALL_FORGET, subjects.MEMORY_SPEND_GET),
        subscribe=(*_CLAIMS, EVENT, CONTROL, PLAYBACK, SPEECH, TRANSCRIPT),
        kv=(lease_bucket("brain"), *_CALL_STATE),
    ),
    "tts": Role(
        publish=(AUDIO_OUT, EVENT),
        subscribe=(*_CLAIMS, CONTROL, REPLY, EVENT),
        kv=(lease_bucket("tts"), *_CALL_STATE),
    ),
    "memory": Role(
        publish=(EVENT,),
        subscribe=(*_CLAIMS, AUDIO_IN, AUDIO_OUT, TRANSCRIPT, REPLY, EVENT, CONTROL, "memory.>"),
        kv=("ringline_calls", "ringline_spend", "ringline_live", "ringline_recall", lease_bucket("memory"),
            *_CALL_STATE),
        objects=("ringline_audio",),
        responds=True,
    ),
    OPERATOR: Role(  # asks memory (calls, voicemail, caller memory); reads no bucket itself
        publish=("memory.>",),
        subscribe=(),
    ),
}

USERS = (*SERVICES, OPERATOR)


def inbox_prefix(user: str) -> str:
    """The reply inbox prefix of `user`'s connection; its subscribe grant covers only these."""
    return f"_INBOX.{user}"


def _stream_api(stream: str) -> list[str]:
    """The JetStream API calls a client of one KV bucket / object store makes on its stream."""
    api = "$JS.API"
    return [
        f"{api}.STREAM.INFO.{stream}", f"{api}.STREAM.CREATE.{stream}", f"{api}.STREAM.UPDATE.{stream}",
        f"{api}.STREAM.MSG.GET.{stream}", f"{api}.STREAM.MSG.DELETE.{stream}", f"{api}.STREAM.PURGE.{stream}",
        f"{api}.DIRECT.GET.{stream}", f"{api}.DIRECT.GET.{stream}.>",
        f"{api}.CONSUMER.CREATE.{stream}", f"{api}.CONSUMER.CREATE.{stream}.>",
        f"{api}.CONSUMER.DELETE.{stream}.>", f"{api}.CONSUMER.INFO.{stream}.>",
        f"{api}.CONSUMER.MSG.NEXT.{stream}.>",
        f"$JS.FC.{stream}.>", f"$JS.ACK.{stream}.>",
    ]


def grants(user: str) -> dict[str, object]:
    """The nats-server `permissions` block of `user`: what it may publish and subscribe to."""
    role = ROLES[user]
    publish = list(role.publish)
    for bucket in role.kv:
        publish += [*_stream_api(f"KV_{bucket}"), f"$KV.{bucket}.>"]
    for bucket in role.objects:
        publish += [*_stream_api(f"OBJ_{bucket}"), f"$O.{bucket}.>"]
    permissions: dict[str, object] = {
        "publish": {"allow": publish},
        "subscribe": {"allow": [*role.subscribe, f"{inbox_prefix(user)}.>"]},
    }
    if role.responds:
        permissions["allow_responses"] = True
    return permissions


def permissions_table() -> dict[str, dict[str, object]]:
    """Every user's grants, as the chart's `files/nats-permissions.json` holds them."""
    return {user: grants(user) for user in USERS}


def nats_auth_config(passwords: dict[str, str]) -> str:
    """An `authorization { users = [...] }` block of a nats-server config, one user per entry of
    `passwords` (a password, or a `$VARIABLE` the server resolves from its environment)."""
    users = []
    for user in USERS:
        secret = passwords[user]
        value = secret if secret.startswith("$") else json.dumps(secret)
        users.append(f"    {{user: {json.dumps(user)}, password: {value}, "
                     f"permissions: {json.dumps(grants(user))}}}")
    return "authorization {\n  users = [\n" + ",\n".join(users) + "\n  ]\n}\n"


CHART_FILE = Path(__file__).resolve().parents[2] / "infra" / "k8s" / "ringline" / "files" / "nats-permissions.json"


def render_json() -> str:
    return json.dumps(permissions_table(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="print (or --write into the Helm chart) the NATS permission table")
    parser.add_argument("--write", action="store_true", help=f"write {CHART_FILE}")
    args = parser.parse_args(argv)
    if args.write:
        CHART_FILE.parent.mkdir(parents=True, exist_ok=True)
        CHART_FILE.write_text(render_json())
    else:
        print(render_json(), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
