"""What the agent says first on a call it placed, from who answered it.

The edge marks an answered outbound call with `CallStart.direction == "outbound"`,
`custom["purpose"]` (from `POST /calls`) and `custom["answered_by"]` (Twilio's answering-machine
detection: `human`, `machine_start`, `machine_end_beep`, `machine_end_silence`,
`machine_end_other`, `fax`, `unknown`). Pure: no I/O, no bus.

- a person (or `unknown`: better to talk to a machine than to hang up on a person) hears the
  agent introduce itself with the purpose: "Hi, this is Ava, an AI assistant, calling to confirm
  your appointment on Tuesday. Do you have a moment?";
- an answering machine gets a short message and then the call ends (`outbound_machine:
  leave_message`, the message from `outbound_machine_message` or made from the purpose), or the
  agent hangs up at once (`outbound_machine: hangup`);
- a fax machine is hung up on at once.

`instructions` is what the LLM should know for the rest of the call (the purpose), to add to
the system prompt.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from ringline.contracts.messages import CallStart

if TYPE_CHECKING:
    from .settings import BrainSettings

HUMAN = frozenset({"human", "unknown", ""})
# Purposes written as a bare verb phrase ("confirm the appointment") read as "calling to confirm...".
_VERBS = frozenset({"ask", "book", "cancel", "check", "collect", "confirm", "discuss", "follow", "invite",
                    "let", "offer", "remind", "renew", "reschedule", "schedule", "see", "share", "tell",
                    "thank", "update", "verify", "welcome"})
_LEADS = ("to ", "about ", "regarding ", "re ", "on behalf of ", "from ", "because ", "with ", "for ")


@dataclass(frozen=True)
class OutboundOpening:
    """The first line of an outbound call and what follows it.

    `kind` is the ReplyChunk kind to say it with: "greeting" (the conversation goes on) or
    "goodbye" (say it, then hang up once it has been heard). An empty `text` with `hang_up`
    means: hang up at once, saying nothing. `reason` is the hang-up reason for the record.
    """

    text: str
    kind: Literal["greeting", "goodbye"]
    hang_up: bool
    answered_by: str
    reason: str = ""


def purpose_phrase(purpose: str) -> str:
    """`"confirm Tuesday's appointment."` -> `"to confirm Tuesday's appointment"`; `"your order 4521"`
    -> `"about your order 4521"`; a purpose that already leads with "to", "about", ... is kept."""
    text = " ".join(purpose.split()).rstrip(" .!?;:,")
    if not text:
        return ""
    if len(text) > 1 and text[0].isupper() and not text[1].isupper():
        text = text[0].lower() + text[1:]  # "Confirm ..." but not "SKU ..."
    lowered = text.lower()
    if lowered.startswith(_LEADS):
        return text
    first = re.split(r"[\s,]", lowered, maxsplit=1)[0]
    return f"to {text}" if first in _VERBS else f"about {text}"


def introduction(agent_name: str, purpose: str) -> str:
    phrase = purpose_phrase(purpose)
    return f"Hi, this is {agent_name}, an AI assistant, calling {phrase}." if phrase else \
        f"Hi, this is {agent_name}, an AI assistant."


def machine_message(settings: BrainSettings, purpose: str) -> str:
    """The message left on a machine: the configured one (`{agent_name}` and `{purpose}` filled
    in), else one made from the purpose."""
    if settings.outbound_machine_message.strip():
        return (settings.outbound_machine_message.replace("{agent_name}", settings.agent_name)
                .replace("{purpose}", " ".join(purpose.split())))
    return f"{introduction(settings.agent_name, purpose)} Sorry I missed you. I'll try again later. Goodbye!"


def outbound_opening(call: CallStart, settings: BrainSettings) -> OutboundOpening | None:
    """What the agent says first on `call`; None for an inbound call (the usual greeting).

    Reads `settings.agent_name`, `settings.outbound_machine` and `settings.outbound_machine_message`
    (the agent's, from the agents file) and `call.custom["purpose"]` / `["answered_by"]`."""
    if call.direction != "outbound":
        return None
    answered_by = call.custom.get("answered_by", "").strip().lower()
    purpose = call.custom.get("purpose", "")
    if answered_by in HUMAN:
        text = introduction(settings.agent_name, purpose) + " Do you have a moment?"
        return OutboundOpening(text=text, kind="greeting", hang_up=False, answered_by=answered_by or "unknown")
    if answered_by == "fax":
        return OutboundOpening(text="", kind="goodbye", hang_up=True, answered_by=answered_by,
                               reason="a fax machine answered")
    if settings.outbound_machine == "hangup":
        return OutboundOpening(text="", kind="goodbye", hang_up=True, answered_by=answered_by,
                               reason="an answering machine answered")
    return OutboundOpening(text=machine_message(settings, purpose), kind="goodbye", hang_up=True,
                           answered_by=answered_by, reason="message left on an answering machine")


def instructions(call: CallStart) -> str:
    """For the system prompt of an outbound call: the agent placed it, and why. "" when inbound."""
    if call.direction != "outbound":
        return ""
    purpose = " ".join(call.custom.get("purpose", "").split())
    lines = ["This is an outbound call: you called this person; they did not call you."]
    if purpose:
        lines.append(f"The purpose of your call: {purpose}. Keep to it, and end the call politely once it is done.")
    return "\n".join(lines)
