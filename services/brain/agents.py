"""The brain's view of an agent from the agents file: the settings its calls run with.

Only what the agent sets replaces the service's settings (its `turn_taking` included); everything
else (timeouts, the local model) stays as configured for the service. The implicit `default` agent (no
agents file) changes nothing.
"""

from __future__ import annotations

from typing import Any

from ringline.contracts.agents import Agent
from ringline.contracts.messages import CallStart

from .outbound import instructions
from .settings import BrainSettings


def agent_settings(settings: BrainSettings, agent: Agent, call: CallStart | None = None) -> BrainSettings:
    """`settings` with the agent's persona, greeting, tools, providers and limits applied; an
    outbound `call` also tells the persona that the agent placed it, and why."""
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
    update.update(agent.turn_taking.brain_settings())
    if agent.limits.daily_spend is not None:
        update["daily_spend_cap"] = agent.limits.daily_spend
    # Only what the file sets: the implicit default agent keeps the environment's values.
    if "max_call_s" in agent.limits.model_fields_set:
        update["max_call_s"] = agent.limits.max_call_s
    if agent.transfer_number is not None:
        update["transfer_number"] = agent.transfer_number
    if "on_machine" in agent.outbound.model_fields_set:
        update["outbound_machine"] = agent.outbound.on_machine
    if agent.outbound.machine_message:
        update["outbound_machine_message"] = agent.outbound.machine_message
    placed = instructions(call) if call is not None else ""
    if placed:
        update["system_prompt"] = f"{update.get('system_prompt', settings.system_prompt)}\n{placed}"
    return settings.model_copy(update=update)


def model_key(settings: BrainSettings) -> tuple[Any, ...]:
    """Calls whose settings give the same key can share one chat model."""
    return (settings.resolved_chain, settings.strong_route, settings.strong_min_words,
            tuple(settings.strong_keywords))
