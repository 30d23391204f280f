"""What a simulated call reports: the turns as the caller heard them, and one result per step."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from ringline.contracts.messages import CallRecord

from .failover import Reconnect


@dataclass
class TurnResult:
    speaker: Literal["agent", "caller"]
    text: str = ""  # caller: the script's text; agent: the reply text from the call record
    heard_as: str = ""  # caller: what speech-to-text made of it (call record)
    turn_ids: list[str] = field(default_factory=list)
    started_at: float = 0.0  # wall clock: first frame sent (caller) / received (agent)
    ended_at: float = 0.0  # caller: end of speech; agent: its audio finished playing
    mouth_to_ear_ms: float | None = None  # agent replies: caller's end of speech -> first agent audio
    stages_ms: dict[str, float] = field(default_factory=dict)  # stt/brain/tts/edge/total (record)
    audio_s: float = 0.0
    interrupted: bool = False  # a `clear` came and the agent did not go on after it
    paused: int = 0  # `clear`s the agent went on after (it paused for a backchannel)
    note: str = ""


@dataclass
class StepResult:
    """One scenario step as the caller experienced it. Times are wall-clock seconds; the verdicts
    (`clear_received` and below) are filled in after the call, from everything the line saw."""

    index: int
    kind: str
    label: str
    started_at: float = 0.0
    ended_at: float = 0.0
    speech_onset_at: float | None = None  # first frame with speech in it sent
    speech_end_at: float | None = None  # last frame with speech in it sent
    voiced_ms: float | None = None  # onset to end of speech, inner pauses included
    pauses: list[tuple[float, float]] = field(default_factory=list)  # inner silent gaps, as sent
    reply_started_at: float | None = None  # the agent reply this step acted on: its first audio
    acted_at: float | None = None  # speaking steps: speech onset; dtmf: key sent; hangup: hung up
    clear_received: bool | None = None  # interrupt, backchannel: a `clear` came while/after speaking
    barge_in_ms: float | None = None  # interrupt: caller speech onset -> `clear` received
    audio_after_clear_ms: float | None = None  # interrupt: audio of the interrupted turn after the clear
    agent_stopped: bool | None = None  # interrupt, backchannel: a `clear` came and the agent's turn never came back
    paused_ms: float | None = None  # backchannel: `clear` -> the agent's turn playing again
    replayed_ms: float | None = None  # backchannel: agent audio heard before the `clear` and again after it
    clears: int | None = None  # interrupt, backchannel: `clear`s the step drew (a pause, then the interrupt...)
    false_cutoff: bool | None = None  # say with inner pauses: agent audio before the utterance finished
    agent_hung_up: bool | None = None  # expect_hangup
    note: str = ""


@dataclass
class CallResult:
    call_sid: str
    stream_sid: str = ""
    turns: list[TurnResult] = field(default_factory=list)
    steps: list[StepResult] = field(default_factory=list)
    agent_wav: Path | None = None
    record: CallRecord | None = None
    record_error: str = ""
    problems: list[str] = field(default_factory=list)
    ended_by: str = ""
    started_at: float = 0.0
    ended_at: float = 0.0
    hung_up_after_goodbye: bool | None = None  # the agent ended the call: only once its last audio had played?
    unplayed_at_hangup_ms: float | None = None  # agent audio still to play when the agent ended the call
    reconnects: list[Reconnect] = field(default_factory=list)  # streams that ended while the call was up
    audio_stalls_ms: list[float] = field(default_factory=list)  # agent audio that came late: hiccups heard
    agent_audio_s: float = 0.0  # agent audio the caller played

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def replies(self) -> list[TurnResult]:
        return [t for t in self.turns if t.speaker == "agent" and t.mouth_to_ear_ms is not None]

    @property
    def false_cutoffs(self) -> int:
        return sum(1 for s in self.steps if s.false_cutoff)

    def step(self, kind: str) -> list[StepResult]:
        return [s for s in self.steps if s.kind == kind]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["agent_wav"] = str(self.agent_wav) if self.agent_wav else None
        data["record"] = self.record.model_dump(mode="json") if self.record else None
        data["ok"] = self.ok
        data["false_cutoffs"] = self.false_cutoffs
        for out, reconnect in zip(data["reconnects"], self.reconnects, strict=True):
            out.update(reconnect_ms=reconnect.reconnect_ms, gap_ms=reconnect.gap_ms)
        return data
