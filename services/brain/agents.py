"""The brain's view of an agent from the agents file: the settings its calls run with.

Only what the agent sets replaces the service's settings; everything else (timeouts, the local
model, turn-taking) stays as configured for the service. The implicit `default` agent (no
agents file) changes nothing.
"""

from __future__ import annotations

from typing import Any

from ringline.contracts.agents import Agent

from .settings import BrainSettings


def agent_settings(settings: BrainSettings, agent: Agent) -> BrainSettings:
    """`settings` with the agent's persona, greeting, tools, providers and limits applied."""
    update: dict[str, Any] = {}
    if agent.name is not None:
        update["agent_name"] = agent.name
    if agent.persona is not None:
        update["system_prompt"] = agent.persona
    if agent.greeting is not None:
        update["greeting"] = agent.greeting
    if agent.tools:
        own = {tool.name for tool in agent.tools}
        update["tools"] = [*agent.tools, *(tool for tool in settings.tools if tool.name not in own)]
    providers = agent.providers
    if providers.brain_chain is not None:
        update["chain"] = list(providers.brain_chain)
    if providers.strong_route is not None:
        update["strong_route"] = providers.strong_route
    if providers.strong_keywords is not None:
        update["strong_keywords"] = list(providers.strong_keywords)
    if agent.limits.daily_spend is not None:
        update["daily_spend_cap"] = agent.limits.daily_spend
    update["max_call_s"] = agent.limits.max_call_s
    update["transfer_number"] = agent.transfer_number
    update["outbound_machine"] = agent.outbound.on_machine
    update["outbound_machine_message"] = agent.outbound.machine_message
    return settings.model_copy(update=update)


def model_key(settings: BrainSettings) -> tuple[Any, ...]:
    """Calls whose settings give the same key can share one chat model."""
    return (settings.resolved_chain, settings.strong_route, settings.strong_min_words,
            tuple(settings.strong_keywords))
