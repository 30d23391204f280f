"""Message families. Import from here: `from ringline.contracts.messages import AudioFrame`."""

from .audio import (
    FRAME_BYTES,
    FRAME_MS,
    SAMPLE_RATE,
    AgentAudio,
    AudioFrame,
    Playback,
    is_replayed_mark,
    make_mark,
    parse_mark,
)
from .base import CallMessage, Message, now
from .calls import CallEnd, CallStart
from .control import Control
from .dialogue import ReplyChunk, TurnTiming
from .ownership import Checkpoint, Lease, LiveCall
from .recall import (
    CallerMemory,
    CallNotes,
    Fact,
    RecallForgetReply,
    RecallForgetRequest,
    RecallGetReply,
    RecallGetRequest,
    RecallListReply,
    RecallListRequest,
    RecallPutReply,
    RecallPutRequest,
)
from .records import (
    CallEvent,
    CallGetReply,
    CallGetRequest,
    CallListRequest,
    CallRecord,
    CallSummary,
    SpendReply,
    SpendRequest,
    TurnRecord,
)
from .transcript import SpeechEvent, Transcript

__all__ = [
    "FRAME_BYTES", "FRAME_MS", "SAMPLE_RATE",
    "AgentAudio", "AudioFrame", "CallEnd", "Checkpoint", "Lease", "LiveCall", "CallEvent", "CallGetReply",
    "CallGetRequest",
    "CallListRequest", "CallMessage", "CallRecord", "CallStart", "CallSummary", "Control",
    "Message", "Playback", "SpendReply", "SpendRequest", "ReplyChunk", "SpeechEvent", "Transcript", "TurnRecord",
    "TurnTiming", "is_replayed_mark", "make_mark", "now", "parse_mark",
    "CallNotes", "CallerMemory", "Fact", "RecallForgetReply", "RecallForgetRequest", "RecallGetReply",
    "RecallGetRequest", "RecallListReply", "RecallListRequest", "RecallPutReply", "RecallPutRequest",
]
