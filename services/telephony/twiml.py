"""`POST /twilio/voice`: answer a call with TwiML that connects a Media Stream.

The agent is picked by the dialled number (`To`) from the agents file; `?agent=` wins (the URL
of an outbound call names its agent). An answered outbound call (`?outbound=<id>`) also carries
its stored purpose and who answered (`AnsweredBy`, from answering-machine detection) as stream
parameters, so its `CallStart` says `direction="outbound"` with `custom["purpose"]` and
`custom["answered_by"]`.
"""

from __future__ import annotations

import logging
import time
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request, Response
from twilio.twiml.voice_response import Connect, Parameter, Stream, VoiceResponse

from ringline.contracts.agents import WatchedAgentBook

from .failover import ACTION_PATH, TAKEOVER_PARAM, action_query
from .limits import CallRates
from .outbound import OutboundContext, OutboundStore
from .routing import route_agent
from .settings import TelephonySettings
from .signature import SignatureChecker
from .stream_token import STREAM_TOKEN_PARAM

VOICE_PATH = "/twilio/voice"
STREAM_PATH = "/twilio/stream"

log = logging.getLogger("ringline.telephony.twiml")


def connect_stream_twiml(stream_url: str, parameters: dict[str, str], action: str | None = None) -> str:
    """`<Response><Connect action=...><Stream url=...><Parameter .../>...` as an XML string.
    Twilio requests `action` when the stream ends: see `failover`."""
    response = VoiceResponse()
    connect = Connect(action=action) if action else Connect()
    stream = Stream(url=stream_url)
    for name, value in parameters.items():
        stream.append(Parameter(name=name, value=value))
    connect.append(stream)
    response.append(connect)
    return str(response)


def reject_twiml() -> str:
    """`<Reject reason="busy"/>`: the caller hears a busy tone, nothing is connected."""
    response = VoiceResponse()
    response.reject(reason="busy")
    return str(response)


def stream_parameters(form: dict[str, str], agent: str) -> dict[str, str]:
    """The `<Parameter>`s Twilio hands back in the stream's `start.customParameters`."""
    params = {
        "agent": agent,
        "caller": form.get("From", ""),
        "callee": form.get("To", ""),
        "call_sid": form.get("CallSid", ""),
    }
    direction = form.get("Direction", "")
    if direction.startswith("outbound"):
        params["direction"] = "outbound"
    return params


def outbound_parameters(form: dict[str, str], outbound_id: str, context: OutboundContext | None) -> dict[str, str]:
    """What an answered outbound call adds: its direction, purpose and who answered."""
    return {
        "direction": "outbound",
        "outbound": outbound_id,
        "purpose": context.purpose if context is not None else "",
        "answered_by": form.get("AnsweredBy", "") or "unknown",
    }


def reconnect_twiml(checker: SignatureChecker, form: dict[str, str], agent: str, call_id: str) -> str:
    """The answer to an action request of a call that goes on: the same `<Connect action><Stream>`
    as the voice webhook's, plus `takeover=1` so the edge re-attaches to the live call."""
    params = {**stream_parameters(form, agent), "call_sid": call_id, TAKEOVER_PARAM: "1",
              STREAM_TOKEN_PARAM: checker.tokens.issue(call_id, time.time())}
    return connect_stream_twiml(checker.ws_url(STREAM_PATH), params,
                                checker.http_url(ACTION_PATH, action_query(call_id, agent)))


def voice_router(settings: TelephonySettings, checker: SignatureChecker, agents: WatchedAgentBook,
                 outbound: OutboundStore | None = None) -> APIRouter:
    router = APIRouter()
    rates = CallRates(settings.caller_calls_per_minute, settings.agent_calls_per_minute)

    @router.post(VOICE_PATH)
    async def voice(request: Request) -> Response:
        body = (await request.body()).decode("utf-8", errors="replace")
        pairs = parse_qsl(body, keep_blank_values=True)
        query = request.url.query
        if not checker.check_webhook(VOICE_PATH, query, pairs, request.headers):
            return Response("invalid Twilio signature", status_code=403, media_type="text/plain")
        form = dict(pairs)
        outbound_id = request.query_params.get("outbound", "")
        context = await outbound.get(outbound_id) if outbound_id and outbound is not None else None
        requested = request.query_params.get("agent") or (context.agent if context is not None else None)
        agent = route_agent(agents, form.get("To", ""), requested, settings.default_agent)
        refused = None if outbound_id else rates.refuse(form.get("From", ""), agent, time.monotonic())
        if refused is not None:
            log.warning("call %s to agent %s refused: %s", form.get("CallSid", "?"), agent, refused)
            return Response(reject_twiml(), media_type="application/xml")
        params = stream_parameters(form, agent)
        if outbound_id:
            params.update(outbound_parameters(form, outbound_id, context))
        params[STREAM_TOKEN_PARAM] = checker.tokens.issue(form.get("CallSid", ""), time.time())
        stream_url = checker.ws_url(STREAM_PATH)
        twiml = connect_stream_twiml(stream_url, params, checker.http_url(ACTION_PATH, action_query(
            form.get("CallSid", ""), agent)))
        log.info("call %s from %s to %s: streaming to %s (agent %s%s)",
                 form.get("CallSid", "?"), form.get("From", "?"), form.get("To", "?"), stream_url, agent,
                 f", outbound, answered by {params['answered_by']}" if outbound_id else "")
        return Response(twiml, media_type="application/xml")

    return router
