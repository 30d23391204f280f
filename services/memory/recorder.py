"""Builds one call's record from what flows on its subjects. Pure: no I/O."""

from __future__ import annotations

from pydantic import ValidationError

from ringline.contracts.events import (
    CALL_SUMMARY,
    CALL_TRANSFER,
    STAGE_QUERY,
    STAGE_READY,
    STAGE_TAKEOVER,
    STT_UTTERANCE,
    TURN_BARGE_IN,
    TURN_FIRST_AUDIO,
    TURN_LLM,
    TURN_PAUSED,
    TURN_RESUMED,
    TURN_TOOL,
    VOICEMAIL_MESSAGE,
    VOICEMAIL_STARTED,
)
from ringline.contracts.messages import (
    CallEvent,
    CallRecord,
    CallStart,
    ReplyChunk,
    Transcript,
    TurnRecord,
    now,
)
from ringline.contracts.messages.records import SummaryRecord, TransferRecord, VoicemailRecord
from ringline.contracts.pricing import DEFAULT_PRICES, PriceTable, Usage, call_cost, turn_cost


class CallRecorder:
    def __init__(self, call: CallStart, max_events: int = 500, prices: PriceTable = DEFAULT_PRICES) -> None:
        self.prices = prices
        self.record = CallRecord(
            call_id=call.call_id,
            agent_id=call.agent_id,
            caller=call.caller,
            callee=call.callee,
            direction=call.direction,
            started_at=call.started_at,
        )
        self.max_events = max_events
        self.chunks: dict[str, dict[int, str]] = {}
        self._served_by: dict[str, str] = {}  # agent turn -> the LLM that answered it (`turn.llm`)

    def on_transcript(self, t: Transcript) -> bool:
        """A final transcript is a caller turn. Returns True when the record changed."""
        if not (t.is_final and t.text.strip()):
            return False
        turn = self._turn(t.utterance_id, "caller")
        turn.text = t.text.strip()
        turn.started_at = t.speech_started_at or t.emitted_at
        turn.ended_at = t.speech_ended_at or t.emitted_at
        turn.latency_ms = {"stt": round((t.emitted_at - t.speech_ended_at) * 1000, 1)} if t.speech_ended_at else {}
        turn.providers = {"stt": t.provider} if t.provider else {}
        self._sort()
        return True

    def on_reply(self, chunk: ReplyChunk) -> bool:
        """Reply chunks assemble the agent turn; the record changes when the turn is complete."""
        parts = self.chunks.setdefault(chunk.turn_id, {})
        if chunk.text:
            parts[chunk.seq] = chunk.text
        turn = self._turn(chunk.turn_id, "agent")
        turn.kind = chunk.kind
        turn.in_reply_to = chunk.in_reply_to
        if not turn.started_at:
            turn.started_at = chunk.timing.first_chunk_at or now()
        turn.text = " ".join(parts[seq] for seq in sorted(parts))
        if chunk.final:
            turn.ended_at = now()
            self.chunks.pop(chunk.turn_id, None)
        self._sort()
        return chunk.final

    def on_event(self, event: CallEvent) -> bool:
        if event.name == STAGE_QUERY:
            return False
        if event.name == STAGE_READY:  # who serves each stage: changes only on a takeover or a handover
            stage, replica = str(event.data.get("stage", "")), str(event.data.get("replica", ""))
            if not stage or not replica or self.record.replicas.get(stage) == replica:
                return False
            self.record.replicas[stage] = replica
            return True
        if event.name == STAGE_TAKEOVER:
            self.record.takeovers += 1
        if event.name == TURN_FIRST_AUDIO and event.timing is not None:
            turn = self._turn(event.turn_id, "agent")
            turn.latency_ms = event.timing.stages_ms()
            providers = {
                "stt": event.timing.stt_provider,
                "llm": event.timing.llm_provider,
                "tts": event.timing.tts_provider,
            }
            turn.providers = {k: v for k, v in providers.items() if v}
            if event.turn_id in self._served_by:  # the link that answered, not a chain's filler
                turn.providers["llm"] = self._served_by[event.turn_id]
            if not turn.started_at:
                turn.started_at = event.timing.edge_sent_at
            self._sort()
        elif event.name == TURN_LLM and event.turn_id and event.data.get("provider"):
            self._served_by[event.turn_id] = str(event.data["provider"])
            answered = self.record.turn(event.turn_id)
            if answered is not None and answered.providers:
                answered.providers["llm"] = self._served_by[event.turn_id]
        elif event.name == TURN_BARGE_IN and event.turn_id:
            turn = self._turn(event.turn_id, "agent")
            turn.interrupted = True
            turn.heard_text = str(event.data.get("heard_text", ""))
            if "reaction_ms" in event.data:
                turn.latency_ms["barge_in_reaction"] = float(event.data["reaction_ms"])
        elif event.name == TURN_PAUSED and event.turn_id and event.data.get("reaction_ms") is not None:
            turn = self._turn(event.turn_id, "agent")
            turn.latency_ms.setdefault("pause_reaction", float(event.data["reaction_ms"]))
        elif event.name == TURN_RESUMED and event.turn_id:
            turn = self._turn(event.turn_id, "agent")
            turn.resumed += 1
            if event.data.get("paused_ms") is not None:  # the caller heard nothing this long
                turn.latency_ms["paused"] = turn.latency_ms.get("paused", 0.0) + float(event.data["paused_ms"])
        elif event.name == STT_UTTERANCE and event.turn_id and "end_of_turn_ms" in event.data:
            turn = self._turn(event.turn_id, "caller")
            turn.latency_ms["end_of_turn"] = float(event.data["end_of_turn_ms"])
        elif event.name == TURN_TOOL and event.turn_id:
            turn = self._turn(event.turn_id, "agent")
            if event.data.get("filler_ms") is not None:
                turn.latency_ms["filler"] = float(event.data["filler_ms"])
            if event.data.get("ms") is not None:
                turn.latency_ms[f"tool:{event.data.get('name', '?')}"] = float(event.data["ms"])
        else:
            self._on_call_event(event)
        usages = event.data.get("usages")
        if not isinstance(usages, list):
            usages = [event.data.get("usage")]
        for usage in usages:
            if isinstance(usage, dict):
                self._charge(event, usage)
        if len(self.record.events) < self.max_events:
            entry = {"name": event.name, "turn_id": event.turn_id, "at": event.at, **event.data}
            self.record.events.append(entry)
        return True

    def _on_call_event(self, event: CallEvent) -> None:
        """What happens around the call: voicemail, the summary, a transfer (typed fields)."""
        data = event.data
        if event.name == VOICEMAIL_STARTED and self.record.voicemail is None:
            self.record.voicemail = VoicemailRecord(reason=str(data.get("reason", "")), started_at=event.at)
        elif event.name == VOICEMAIL_MESSAGE:
            voicemail = self.record.voicemail or VoicemailRecord(started_at=event.at)
            voicemail.reason = str(data.get("reason") or voicemail.reason)
            voicemail.text = str(data.get("text", ""))
            voicemail.duration_s = _number(data.get("duration_s"))
            voicemail.taken_at = event.at
            self.record.voicemail = voicemail
        elif event.name == CALL_SUMMARY:
            self.record.summary = SummaryRecord(text=str(data.get("summary", "")), facts=data.get("facts"),
                                                at=event.at)
        elif event.name == CALL_TRANSFER:
            self.record.transfer = TransferRecord(target=str(data.get("target", "")),
                                                  outcome=str(data.get("outcome", "")), at=event.at)

    def _charge(self, event: CallEvent, data: dict) -> None:
        """Price a stage's usage onto its turn (caller turns carry STT, agent turns LLM and TTS)."""
        try:
            usage = Usage.model_validate(data)
        except ValidationError:
            return
        speaker = "caller" if usage.stt_provider and not (usage.llm_model or usage.tts_provider) else "agent"
        turn = self._turn(event.turn_id or f"{event.name}:{event.at}", speaker)
        turn.usage.append(usage.model_dump(exclude_defaults=True))
        turn.cost = turn_cost(self._usages(turn), self.prices).rounded()
        self.record.cost = call_cost([self._usages(t) for t in self.record.turns], self.prices).rounded()

    @staticmethod
    def _usages(turn: TurnRecord) -> list[Usage]:
        return [Usage.model_validate(u) for u in turn.usage]

    def on_end(self, reason: str, at: float | None = None) -> None:
        self.record.ended_at = at or now()
        self.record.end_reason = reason

    def _turn(self, turn_id: str, speaker: str) -> TurnRecord:
        turn = self.record.turn(turn_id)
        if turn is None:
            turn = TurnRecord(turn_id=turn_id, speaker=speaker, text="")
            self.record.turns.append(turn)
        return turn

    def _sort(self) -> None:
        self.record.turns.sort(key=lambda t: t.started_at or float("inf"))


def _number(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0
