"""Names of `CallEvent`s, so producers and the memory service agree on them."""

from __future__ import annotations

STAGE_READY = "stage.ready"  # a stage owns the call and listens on its subjects
STAGE_QUERY = "stage.query"  # ask every owner to repeat STAGE_READY
# Issue 9: ownership changes hands. data: {"stage", "replica", ...}
STAGE_TAKEOVER = "stage.takeover"  # a replica took the call over from one that died or drained:
#   data["previous"] (replica), ["gap_s"] (seconds the stage had no owner), ["restored"] (checkpoint found)
STAGE_RELEASED = "stage.released"  # a draining replica let go of the call for another to take: data["reason"]
CALL_REFUSED = "call.refused"  # a replica could not claim the call: data["stage"], ["reason"]
CALL_HOLD = "call.hold"  # the edge played the hold line: no owner yet for data["stages"]
CALL_BUSY = "call.busy"  # no replica of data["stage"] could take the call: the edge played the busy line
#   (data["reason"]: the refusal, ["line"]: what the caller heard) and hangs up

STT_UTTERANCE = "stt.utterance"  # one utterance recognised, with decode timings
STT_EMPTY = "stt.empty"  # speech that recognised as nothing
TURN_LLM = "turn.llm"  # one agent turn generated: tokens, provider, timings
LLM_USAGE = "llm.usage"  # more usage of one turn, beyond the `turn.llm` event's own (a fallback)
LLM_WARMUP = "llm.warmup"  # the prompt-cache warm-up at call start (charged to the greeting turn)
TURN_FIRST_AUDIO = "turn.first_audio"  # the edge wrote a turn's first audio to the caller
TURN_BARGE_IN = "turn.barge_in"  # the caller interrupted an agent turn
TURN_PAUSED = "turn.paused"  # the caller started talking over the agent: its audio stopped, kept
TURN_RESUMED = "turn.resumed"  # that was only a backchannel or a noise: the agent goes on
TURN_TOOL = "turn.tool"  # a tool call and its outcome
TTS_TURN = "tts.turn"  # one agent turn synthesised
TTS_ERROR = "tts.error"  # synthesis of one chunk failed
CALL_HANGUP = "call.hangup"  # the agent decided to end the call
EDGE_CLEAR = "edge.clear"  # the edge wrote Twilio `clear` (barge-in): data["at"] is when

# Issue 5: what happens around a call, beyond its turns.
VOICEMAIL_STARTED = "voicemail.started"  # the brain sends this call to voicemail: data["reason"]
VOICEMAIL_MESSAGE = "voicemail.message"  # the message is taken: data["text"], ["duration_s"], ["reason"]
CALL_SUMMARY = "call.summary"  # after the call, from the brain's LLM: data["summary"], ["facts"]
CALL_TRANSFER = "call.transfer"  # the call was handed to a human: data["target"], ["outcome"]
CALL_LIMIT = "call.limit"  # the agent's max call length was reached: data["max_call_s"]

# Issue 9: calls that never drop.
EDGE_TAKEOVER = "edge.takeover"  # a reconnected stream re-attached to a live call on another edge: data["stream_sid"]
EDGE_HANDOVER = "edge.handover"  # a draining edge ended its stream so the call reconnects elsewhere (not a call end)
