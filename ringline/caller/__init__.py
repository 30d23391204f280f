"""The simulated caller: rings the telephony edge exactly as Twilio would (`ringline call`)."""

from .call import CallResult, TurnResult, place_call
from .speech import Utterance, from_pcm, read_wav

__all__ = ["CallResult", "TurnResult", "Utterance", "from_pcm", "place_call", "read_wav"]
