"""The simulated caller: rings the telephony edge exactly as Twilio would (`ringline call`)."""

from .call import CallResult, StepResult, TurnResult, place_call
from .scenario import (
    Backchannel,
    Dtmf,
    ExpectHangup,
    Hangup,
    Interrupt,
    Pause,
    Say,
    Scenario,
    ScenarioError,
    Wait,
    Wav,
    prepare,
)
from .scenario_file import load_scenario
from .speech import Utterance, from_pcm, read_wav

__all__ = [
    "Backchannel", "CallResult", "Dtmf", "ExpectHangup", "Hangup", "Interrupt", "Pause", "Say", "Scenario",
    "ScenarioError", "StepResult", "TurnResult", "Utterance", "Wait", "Wav", "from_pcm", "load_scenario",
    "place_call", "prepare", "read_wav",
]
