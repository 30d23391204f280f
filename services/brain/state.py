"""One call's turn-taking state, in one object of plain data (`TurnState`).

Everything the brain's decisions (`decide`) read lives here: where the call is (`stage`), the
caller's current utterance, every agent turn that went out with what the caller heard of it,
the agent turn in flight, a paused or held reply, the silence count and a pending hang-up.
Nothing else holds turn-taking flags; the session changes the state only by applying actions
(`apply`), and `to_dict`/`from_dict` write it down for a checkpoint and read it back on the
replica that takes the call over.

`phase` names what the call is doing now, derived from that data:

- `greeting`: the greeting has not been said yet;
- `listening`: nobody talks and no reply is being made;
- `thinking`: a reply (or a preemptive guess) is being generated, none of it playing;
- `speaking`: the caller is hearing the agent;
- `paused`: the caller talked over the agent, which stopped and waits for their words;
- `voicemail`: the caller is leaving a message; turn-taking is off;
- `ending`: the goodbye is being said, the hang-up follows; `ended`: the call is over.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

Stage = Literal["opening", "talking", "ending", "ended"]
Phase = Literal["greeting", "listening", "thinking", "speaking", "paused", "voicemail", "ending", "ended"]
Ending = Literal["heard", "timeout", "cleared", "interrupted"]
CUT: frozenset[str] = frozenset({"interrupted", "cleared"})
SHORT_BURST = "short burst"  # why the agent went on: the caller's speech went quiet before its words came
REMEMBER_TURNS = 64  # spoken turns kept (the ended ones beyond this are forgotten, oldest first)


@dataclass
class CallerSpeech:
    """The caller's current utterance, from voice activity events."""

    utterance_id: str = ""
    started_at: float = 0.0
    voiced_ms: float = 0.0
    active: bool = False
    resumed_ms: float = 0.0  # voiced when the agent last resumed over this utterance
    voice_at: float = 0.0  # the end of its last voiced audio heard of so far (the STT's clock)
    gaps: int = 0  # silences inside it: a murmur is one burst, talk has gaps between words


@dataclass
class SpokenTurn:
    """One agent turn as it went out: its chunks by seq, and what the caller heard of it.

    It is speaking from its first chunk until the mark of its final chunk is heard (`ended`
    "heard"), the edge cleared it, it was interrupted, or its final mark did not come back in
    time ("timeout"). A paused turn still counts as speaking."""

    turn_id: str
    kind: str = "answer"
    started_at: float = 0.0
    chunks: dict[int, str] = field(default_factory=dict)
    final_seq: int | None = None
    heard_seq: int = -1
    ended: Ending | None = None
    ended_at: float = 0.0
    paused: bool = False
    first_audio_at: float = 0.0  # the edge wrote its first audio to the phone (0: not yet)

    def text_between(self, first: int, last: int) -> str:
        return " ".join(t for seq, t in sorted(self.chunks.items()) if first <= seq <= last and t)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["chunks"] = [[seq, text] for seq, text in sorted(self.chunks.items())]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SpokenTurn:
        values = dict(data)
        values["chunks"] = {int(seq): str(text) for seq, text in data.get("chunks", [])}
        return cls(**values)


@dataclass
class InFlight:
    """The agent's LLM turn: the one being generated, or the last one."""

    turn_id: str = ""
    generating: bool = False  # the LLM is still producing it
    finished: bool = False  # generation ran to its end (the whole reply was published)
    guessing: bool = False  # a preemptive turn runs, held, on an interim transcript
    held_turn_id: str = ""  # a reply held back because the caller went on talking


@dataclass
class Hangup:
    """The last line is being said; the call is hung up (or transferred) once it was heard."""

    turn_id: str
    text: str
    reason: str
    transfer_to: str = ""
    started_at: float = 0.0
    done: bool = False


@dataclass
class TurnState:
    stage: Stage = "opening"
    greeted: bool = False  # the greeting (or the outbound opening, or the voicemail prompt) went out
    greeting_turn_id: str = ""
    voicemail: str = ""  # why the call went to voicemail ("" when the agent talks)
    caller: CallerSpeech = field(default_factory=CallerSpeech)
    turns: dict[str, SpokenTurn] = field(default_factory=dict)
    last_finished_at: float = 0.0  # when the agent last stopped speaking
    agent: InFlight = field(default_factory=InFlight)
    paused_at: float = 0.0  # when the caller's speech paused the agent (0: not paused)
    pause_onset: float = 0.0  # when the speech that paused it started
    pause_why: str = ""  # "talk-over" (speech over a playing turn) or "collision" (as an answer began)
    owed: bool = False  # the agent was cut off: the caller's next words get an answer
    silence_count: int = 0  # silences acted on (0: the next one re-prompts, then goodbye)
    last_text: str = ""  # the last agent turn the caller heard in full
    hangup: Hangup | None = None

    # -- where the call is --------------------------------------------------------------------

    @property
    def ended(self) -> bool:
        return self.stage == "ended"

    @property
    def ending(self) -> bool:
        """The goodbye is being said: no new turns, no barge-in."""
        return self.stage == "ending"

    @property
    def phase(self) -> Phase:
        if self.stage in ("ended", "ending"):
            return self.stage
        if self.voicemail:
            return "voicemail"
        if not self.greeted:
            return "greeting"
        if self.agent_paused:
            return "paused"
        if self.speaking:
            return "speaking"
        if self.agent.generating or self.agent.guessing:
            return "thinking"
        return "listening"

    def quiet(self) -> bool:
        """Nobody is talking and nothing is about to be said."""
        return not (self.stage in ("ended", "ending") or self.speaking or self.caller.active
                    or self.agent.generating or self.agent.guessing or self.voicemail)

    # -- what the agent said and the caller heard ---------------------------------------------

    @property
    def speaking(self) -> bool:
        return any(t.ended is None for t in self.turns.values())

    def speaking_turns(self) -> list[SpokenTurn]:
        return [t for t in self.turns.values() if t.ended is None]

    @property
    def paused(self) -> bool:
        """A turn is paused (the edge stopped its audio and keeps it)."""
        return any(t.ended is None and t.paused for t in self.turns.values())

    @property
    def agent_paused(self) -> bool:
        """The caller's speech paused the agent and it waits for their words."""
        return bool(self.paused_at) and self.paused

    def heard_text(self, turn_id: str) -> str:
        turn = self.turns.get(turn_id)
        return turn.text_between(0, turn.heard_seq) if turn is not None else ""

    def said_text(self, turn_id: str) -> str:
        """Everything published for the turn, heard or not."""
        turn = self.turns.get(turn_id)
        return turn.text_between(0, max(turn.chunks, default=-1)) if turn is not None else ""

    def heard_seq(self, turn_id: str) -> int:
        turn = self.turns.get(turn_id)
        return turn.heard_seq if turn is not None else -1

    def played(self, turn_id: str) -> bool:
        """Did any of the turn's audio reach the phone (first audio written, or a mark heard)?"""
        turn = self.turns.get(turn_id)
        return turn is not None and (bool(turn.first_audio_at) or turn.heard_seq >= 0)

    def sent_chunks(self, turn_id: str) -> int:
        turn = self.turns.get(turn_id)
        return len(turn.chunks) if turn is not None else 0

    def spoke_since(self, at: float, grace_s: float) -> bool:
        """Was the agent speaking at wall-clock time `at` (or within `grace_s` before it)?"""
        if self.speaking:
            return True
        return bool(self.last_finished_at) and at <= self.last_finished_at + grace_s

    # -- bookkeeping (called by `apply`) ------------------------------------------------------

    def record_chunk(self, turn_id: str, seq: int, text: str, final: bool, kind: str, at: float) -> None:
        turn = self.turns.get(turn_id)
        if turn is None:
            turn = self.turns[turn_id] = SpokenTurn(turn_id, kind, at)
            self._forget_old()
        if turn.ended is not None:
            return
        turn.chunks[seq] = text
        turn.kind = kind
        if final:
            turn.final_seq = seq

    def end_turn(self, turn_id: str, how: Ending, at: float) -> None:
        turn = self.turns.get(turn_id)
        if turn is None or turn.ended is not None:
            return
        turn.ended, turn.ended_at = how, at
        self.last_finished_at = at
        if how not in CUT:
            self.last_text = self.said_text(turn_id)

    def _forget_old(self) -> None:
        while len(self.turns) > REMEMBER_TURNS:
            oldest = next(iter(self.turns))
            if self.turns[oldest].ended is None:
                break
            del self.turns[oldest]

    def copy(self) -> TurnState:
        """A deep copy (a decision's scratch state), faster than `copy.deepcopy`."""
        turns = {tid: replace(t, chunks=dict(t.chunks)) for tid, t in self.turns.items()}
        hangup = replace(self.hangup) if self.hangup is not None else None
        return replace(self, caller=replace(self.caller), turns=turns, agent=replace(self.agent), hangup=hangup)

    # -- checkpoints --------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain data (str, int, float, bool, None, lists, dicts with str keys): JSON or msgpack."""
        return {
            "stage": self.stage, "phase": self.phase, "greeted": self.greeted,
            "greeting_turn_id": self.greeting_turn_id, "voicemail": self.voicemail,
            "caller": asdict(self.caller),
            "turns": [t.to_dict() for t in self.turns.values()],
            "last_finished_at": self.last_finished_at, "agent": asdict(self.agent),
            "paused_at": self.paused_at, "pause_onset": self.pause_onset, "pause_why": self.pause_why,
            "owed": self.owed,
            "silence_count": self.silence_count, "last_text": self.last_text,
            "hangup": asdict(self.hangup) if self.hangup is not None else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TurnState:
        turns = [SpokenTurn.from_dict(t) for t in data.get("turns", [])]
        hangup = data.get("hangup")
        return cls(
            stage=data.get("stage", "opening"), greeted=bool(data.get("greeted")),
            greeting_turn_id=data.get("greeting_turn_id", ""), voicemail=data.get("voicemail", ""),
            caller=CallerSpeech(**data.get("caller", {})), turns={t.turn_id: t for t in turns},
            last_finished_at=data.get("last_finished_at", 0.0), agent=InFlight(**data.get("agent", {})),
            paused_at=data.get("paused_at", 0.0), pause_onset=data.get("pause_onset", 0.0),
            pause_why=data.get("pause_why", ""),
            owed=bool(data.get("owed")), silence_count=int(data.get("silence_count", 0)),
            last_text=data.get("last_text", ""), hangup=Hangup(**hangup) if hangup else None,
        )
