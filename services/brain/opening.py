"""How a call opens, besides the greeting: the daily spend check that may replace it, and the
prompt-cache warm-up that runs while it plays.

Spend: with `daily_spend_cap` set, the brain asks the memory service for the agent's spend
today (`memory.spend.get`, request/reply). At or above the cap the caller hears
`unavailable_line` instead of the greeting and the agent hangs up once it has been heard. A
memory service that does not answer in time never keeps a call from being answered.

Warm-up: one cheap request (`max_tokens=1`) with the call's cacheable prefix, in the background,
so the first answer reads the prompt from Claude's cache. It never delays the greeting; what it
cost is charged to the greeting turn (`llm.warmup` event with `data["usage"]`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from ringline.contracts import subjects
from ringline.contracts.codec import unpack
from ringline.contracts.messages import CallEvent, CallStart, SpendReply, SpendRequest
from ringline.contracts.runtime import CallBus

from ringline.contracts.events import LLM_WARMUP

from .accounting import usage_data
from .llm.base import ChatModel, ToolSpec

if TYPE_CHECKING:
    from .settings import BrainSettings

log = logging.getLogger("ringline.brain.opening")

WARM_TIMEOUT_S = 10.0


async def open_call(bus: CallBus, call: CallStart, settings: BrainSettings, model: ChatModel,
                    tools: Sequence[ToolSpec], greeting_turn: Callable[[], Awaitable[str]]) -> bool:
    """True when the agent is over its daily spend cap (say `unavailable_line`, not the greeting);
    otherwise the prompt-cache warm-up starts in the background and this returns False."""
    if await over_daily_cap(bus, call, settings.daily_spend_cap, settings.spend_check_timeout_s):
        return True
    if settings.warm_prompt_cache and model.capabilities.prompt_cache and not bus.closed:
        bus.spawn(warm_up(bus, model, settings.persona, tools, greeting_turn), "warm-up")
    return False


async def spent_today(bus: CallBus, agent_id: str, timeout: float) -> SpendReply | None:
    """The agent's spend today from the memory service; None when it does not answer in time."""
    try:
        message = await bus.broker.request(SpendRequest(agent_id=agent_id), subjects.MEMORY_SPEND_GET,
                                           timeout=timeout)
        return SpendReply.model_validate(unpack(message.body))
    except Exception as exc:  # a timeout, no responders, a malformed answer: answer the call anyway
        log.warning("call %s: no spend answer from memory for agent %s in %.1fs (%s: %s); no cap applied",
                    bus.call_id, agent_id, timeout, type(exc).__name__, exc)
        return None


async def over_daily_cap(bus: CallBus, call: CallStart, cap: float | None, timeout: float) -> bool:
    if cap is None:
        return False
    reply = await spent_today(bus, call.agent_id, timeout)
    if reply is None or reply.spent < cap:
        return False
    log.warning("call %s: agent %s spent %.4f %s on %s, at or above its daily cap of %.4f; the line is unavailable",
                call.call_id, call.agent_id, reply.spent, reply.currency, reply.day, cap)
    return True


async def warm_up(bus: CallBus, model: ChatModel, system_prompt: str, tools: Sequence[ToolSpec],
                  greeting_turn: Callable[[], Awaitable[str]]) -> None:
    """Prime the model's prompt cache; report what it cost on the greeting turn."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(WARM_TIMEOUT_S):
            usage = await model.warm([{"role": "system", "content": system_prompt}], tools)
    except Exception as exc:  # only a missed saving: the turns go on as usual
        log.warning("call %s: prompt-cache warm-up failed: %s", bus.call_id, exc)
        return
    if usage is None:
        return
    ms = round((time.monotonic() - started) * 1000, 1)
    log.info("call %s: prompt cache warmed in %.0f ms (%s: %d written, %d read)", bus.call_id, ms,
             usage.llm_model, usage.cache_creation_input_tokens, usage.cache_read_input_tokens)
    turn_id = await greeting_turn()
    if not turn_id:  # the call ended before its greeting: no turn to charge it to
        return
    event = CallEvent(call_id=bus.call_id, name=LLM_WARMUP, turn_id=turn_id,
                      data={"usage": usage_data(usage), "model": usage.llm_model, "ms": ms})
    await bus.publish(event, subjects.event(bus.call_id))
