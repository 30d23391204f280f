"""`ringline voicemail`: the messages callers left, and their audio, from the memory service.

    ringline voicemail                       # list the messages, newest first
    ringline voicemail play CALL_ID          # write voicemail-CALL_ID.wav and play it
    ringline voicemail play CALL_ID --out message.wav --no-play
    ringline voicemail play CALL_ID --recording   # both sides of the call (agents with record_audio)
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import nats

from ringline.contracts import subjects
from ringline.contracts.codec import CONTENT_TYPE, pack, unpack
from ringline.contracts.messages.voicemail import (
    AudioReply,
    AudioRequest,
    VoicemailListReply,
    VoicemailListRequest,
    VoicemailSummary,
)

from .nats_config import DEFAULT_NATS_URL, client_url, connect_client, safe_url
from .records import MemoryUnavailable, memory_request

PLAYERS = ("paplay", "aplay")


class NoAudio(LookupError):
    """The memory service has no audio for that call; the message says why."""


async def list_voicemail(nats_url: str, limit: int = 20, agent_id: str = "",
                         timeout: float = 5.0) -> list[VoicemailSummary]:
    request = VoicemailListRequest(limit=limit, agent_id=agent_id)
    data = await memory_request(nats_url, subjects.MEMORY_VOICEMAIL_LIST, pack(request), timeout)
    return VoicemailListReply.model_validate(data).messages


async def fetch_wav(nats_url: str, call_id: str, subject: str = subjects.MEMORY_VOICEMAIL_GET,
                    timeout: float = 10.0) -> bytes:
    """The whole WAV file, asked for piece by piece (a NATS message holds about 1 MB)."""
    try:
        nc = await connect_client(nats_url)
    except Exception as exc:
        raise MemoryUnavailable(f"cannot reach NATS at {safe_url(nats_url)}: {exc}") from exc
    wav = bytearray()
    try:
        while True:
            request = pack(AudioRequest(call_id=call_id, offset=len(wav)))
            try:
                msg = await nc.request(subject, request, timeout=timeout, headers={"content-type": CONTENT_TYPE})
            except (nats.errors.NoRespondersError, nats.errors.TimeoutError) as exc:
                raise MemoryUnavailable(f"the memory service did not answer on {subject}") from exc
            reply = AudioReply.model_validate(unpack(msg.data))
            if not reply.found:
                raise NoAudio(reply.error or f"no audio for call {call_id}")
            if reply.offset != len(wav) or (not reply.data and len(wav) < reply.total_bytes):
                raise MemoryUnavailable(f"the memory service sent audio out of order for call {call_id}")
            wav += reply.data
            if len(wav) >= reply.total_bytes:
                return bytes(wav)
    finally:
        await nc.close()


def _clock(ts: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M") if ts else "-"


def format_voicemail(messages: list[VoicemailSummary]) -> str:
    if not messages:
        return "no voicemail"
    lines = [f"{'CALL':<36} {'AGENT':<10} {'CALLER':<14} {'WHEN':<16} {'SECS':>5}  MESSAGE"]
    for m in messages:
        text = m.text or "(nothing said)"
        if not m.has_audio:
            text += "  [no audio]"
        lines.append(f"{m.call_id:<36} {m.agent_id:<10} {m.caller or '-':<14} {_clock(m.taken_at):<16} "
                     f"{m.duration_s:>5.0f}  {text}")
    return "\n".join(lines)


def player() -> str | None:
    return next((found for name in PLAYERS if (found := shutil.which(name))), None)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", nargs="?", choices=["list", "play"], default="list")
    parser.add_argument("call_id", nargs="?", help="play: the call the message was left on")
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--agent", default="", help="list: one agent's messages only")
    parser.add_argument("--json", action="store_true", help="list: as JSON")
    parser.add_argument("--out", help="play: the WAV file to write (default voicemail-CALL_ID.wav)")
    parser.add_argument("--no-play", action="store_true", help="play: write the WAV file only")
    parser.add_argument("--recording", action="store_true",
                        help="play: the whole call, caller left and agent right (agents with record_audio)")
    parser.add_argument("--nats", help=f"NATS URL (default $NATS_URL or {DEFAULT_NATS_URL})")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    url = client_url(args.nats)
    try:
        if args.action == "list":
            messages = asyncio.run(list_voicemail(url, args.limit, args.agent))
            if args.json:
                print("[" + ",".join(m.model_dump_json() for m in messages) + "]")
            else:
                print(format_voicemail(messages))
            return 0
        if not args.call_id:
            print("usage: ringline voicemail play CALL_ID [--out FILE.wav]", file=sys.stderr)
            return 2
        subject = subjects.MEMORY_RECORDING_GET if args.recording else subjects.MEMORY_VOICEMAIL_GET
        wav = asyncio.run(fetch_wav(url, args.call_id, subject))
    except MemoryUnavailable as exc:
        print(f"{exc} (is `ringline up` running?)", file=sys.stderr)
        return 1
    except NoAudio as exc:
        print(str(exc), file=sys.stderr)
        return 1
    out = Path(args.out or f"{'call' if args.recording else 'voicemail'}-{args.call_id}.wav")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(wav)
    seconds = max(0, len(wav) - 44) / 2 / 8000 / (2 if args.recording else 1)
    found = None if args.no_play else player()
    if found is None:
        print(f"wrote {out} ({seconds:.1f} s)")
        return 0
    print(f"wrote {out} ({seconds:.1f} s); playing it with {Path(found).name}")
    try:
        subprocess.run([found, str(out)], check=False)
    except OSError as exc:
        print(f"could not play it ({exc}); the message is in {out}", file=sys.stderr)
    return 0
