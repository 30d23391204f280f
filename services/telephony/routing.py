"""Which agent answers a call, and the agent's per-call options that ride on `CallStart.custom`.

Pure: the agents file is read by `WatchedAgentBook`; these functions only look things up. The
voice options travel with the call so the TTS and STT stages stay agent-agnostic: they honour
`custom["tts_voice"]`, `custom["tts_model"]`, `custom["stt_keyterms"]` and the agent's end-of-turn
timing (`custom["stt_end_silence_ms"]`, ...) without knowing agents.
"""

from __future__ import annotations

from ringline.contracts.agents import Agent, WatchedAgentBook


def route_agent(agents: WatchedAgentBook, dialled: str, requested: str | None, default_agent: str) -> str:
    """The agent id of a call to `dialled`. `requested` (`?agent=` on the webhook, as on the URL of
    an outbound call) wins; without an agents file every other call goes to `default_agent`."""
    if requested:
        return requested
    if agents.path is None:
        return default_agent
    return agents.book.for_number(dialled).id


def call_options(agent: Agent) -> dict[str, str]:
    """The agent's voice and vocabulary for the other stages; only what the agent sets."""
    options: dict[str, str] = {}
    if agent.voice.cartesia_voice_id:
        options["tts_voice"] = agent.voice.cartesia_voice_id
    if agent.voice.cartesia_model:
        options["tts_model"] = agent.voice.cartesia_model
    if agent.providers.keyterms:
        options["stt_keyterms"] = ",".join(agent.providers.keyterms)
    options.update(agent.turn_taking.stt_options())
    return options
