"""`POST /calls`: the agent calls someone.

    POST /calls   Authorization: Bearer <RINGLINE_TELEPHONY_API_TOKEN>
    {"to": "+15550100009", "agent": "reception", "purpose": "confirm Tuesday's appointment"}
    -> 201 {"id": "<outbound id>", "call_sid": "CA...", ...}

The context is stored first (`OutboundStore`), then Twilio places the call with answering-machine
detection and requests `/twilio/voice?agent=A&outbound=<id>` once it is answered. For an agent
that leaves messages on machines (`outbound.on_machine: leave_message`, the default) detection
waits for the end of the machine's greeting (`DetectMessageEnd`); for one that hangs up on them
it answers as soon as it can tell (`Enable`). No token
configured: 503 (the endpoint is off); a wrong or missing token: 401; a bad body or an unknown
agent: 422; no Twilio credentials: 503; Twilio refusing: 502. With `"simulate": true` nothing is
placed: the answer carries a made-up CallSid and the webhook URL, for a simulated callee.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from ringline.contracts.agents import WatchedAgentBook

from .outbound import OutboundContext, OutboundRequest, OutboundStore, new_outbound_id
from .settings import TelephonySettings
from .twilio_rest import TwilioCalls, TwilioError
from .twiml import VOICE_PATH

CALLS_PATH = "/calls"

log = logging.getLogger("ringline.telephony.calls")


def _error(status: int, detail: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def _authorized(settings: TelephonySettings, request: Request) -> JSONResponse | None:
    """None when the bearer token matches; otherwise the answer to send."""
    if settings.api_token is None or not settings.api_token.get_secret_value():
        return _error(503, "outbound calls are disabled: set RINGLINE_TELEPHONY_API_TOKEN on the edge to enable "
                           "POST /calls")
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    expected = settings.api_token.get_secret_value()
    if scheme.lower() != "bearer" or not secrets.compare_digest(given.strip().encode(), expected.encode()):
        return _error(401, "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"})
    return None


def _known_agent(settings: TelephonySettings, agents: WatchedAgentBook, requested: str | None) -> str | None:
    """The agent id to call with, or None when it is not known."""
    if agents.path is None:  # no agents file: only the edge's default agent exists
        return settings.default_agent if requested in (None, settings.default_agent) else None
    book = agents.book
    if requested is None:
        return book.fallback.id
    return requested if book.get(requested) is not None else None


def calls_router(settings: TelephonySettings, agents: WatchedAgentBook, store: OutboundStore,
                 twilio: TwilioCalls | None) -> APIRouter:
    router = APIRouter()

    @router.post(CALLS_PATH, status_code=201)
    async def place_call(request: Request) -> JSONResponse:
        refused = _authorized(settings, request)
        if refused is not None:
            return refused
        try:
            body = OutboundRequest.model_validate_json(await request.body())
        except ValidationError as exc:
            return _error(422, [{"field": ".".join(str(p) for p in e["loc"]), "error": e["msg"]}
                                for e in exc.errors(include_url=False, include_context=False)])
        agent_id = _known_agent(settings, agents, body.agent)
        if agent_id is None:
            return _error(422, [{"field": "agent", "error": f"unknown agent {body.agent!r}"}])
        if twilio is None and not body.simulate:
            return _error(503, "placing calls needs Twilio: set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN on the "
                               "edge (or simulate the call with `ringline dial --simulate`)")
        agent = agents.book.get(agent_id)
        caller_id = (agent.numbers[0] if agent is not None and agent.numbers else None) or settings.outbound_from
        if caller_id is None and not body.simulate:
            return _error(422, [{"field": "agent", "error": f"agent {agent_id!r} has no number to call from: "
                                 "list one in its `numbers` or set RINGLINE_TELEPHONY_OUTBOUND_FROM"}])
        context = OutboundContext(id=new_outbound_id(), to=body.to, caller_id=caller_id or "", agent=agent_id,
                                  purpose=body.purpose, simulated=body.simulate)
        try:
            await store.put(context)
        except Exception as exc:
            log.error("outbound call to %s: storing its context failed: %r", body.to, exc)
            return _error(503, f"cannot store the call's context in JetStream ({type(exc).__name__}); "
                               "is NATS with JetStream reachable?")
        voice_url = f"{VOICE_PATH}?{urlencode({'agent': agent_id, 'outbound': context.id})}"
        if body.simulate:
            call_sid = "CA" + secrets.token_hex(16)
        else:
            assert twilio is not None
            try:
                leaves_messages = agent is None or agent.outbound.on_machine == "leave_message"
                call_sid = await twilio.place(body.to, context.caller_id, settings.base_url + voice_url,
                                              body.status_callback,
                                              "DetectMessageEnd" if leaves_messages else "Enable")
            except TwilioError as exc:
                await store.delete(context.id)
                log.warning("outbound call to %s (agent %s) not placed: %s", body.to, agent_id, exc)
                return _error(502, f"Twilio did not place the call: {exc}")
        log.info("outbound call %s to %s by agent %s%s: %s", context.id, body.to, agent_id,
                 " (simulated)" if body.simulate else "", body.purpose)
        return JSONResponse({"id": context.id, "call_sid": call_sid, "to": body.to, "from": context.caller_id,
                             "agent": agent_id, "purpose": body.purpose, "voice_url": voice_url,
                             "simulated": body.simulate}, status_code=201)

    return router
