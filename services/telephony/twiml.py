"""`POST /twilio/voice`: answer an incoming call with TwiML that connects a Media Stream."""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request, Response
from twilio.twiml.voice_response import Connect, Parameter, Stream, VoiceResponse

from .settings import TelephonySettings
from .signature import SignatureChecker

VOICE_PATH = "/twilio/voice"
STREAM_PATH = "/twilio/stream"

log = logging.getLogger("ringline.telephony.twiml")


def connect_stream_twiml(stream_url: str, parameters: dict[str, str]) -> str:
    """`<Response><Connect><Stream url=...><Parameter .../>...` as an XML string."""
    response = VoiceResponse()
    connect = Connect()
    stream = Stream(url=stream_url)
    for name, value in parameters.items():
        stream.append(Parameter(name=name, value=value))
    connect.append(stream)
    response.append(connect)
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


def voice_router(settings: TelephonySettings, checker: SignatureChecker) -> APIRouter:
    router = APIRouter()

    @router.post(VOICE_PATH)
    async def voice(request: Request) -> Response:
        body = (await request.body()).decode("utf-8", errors="replace")
        pairs = parse_qsl(body, keep_blank_values=True)
        query = request.url.query
        if not checker.check_webhook(VOICE_PATH, query, pairs, request.headers):
            return Response("invalid Twilio signature", status_code=403, media_type="text/plain")
        form = dict(pairs)
        agent = request.query_params.get("agent") or settings.default_agent
        stream_url = checker.ws_url(STREAM_PATH)
        twiml = connect_stream_twiml(stream_url, stream_parameters(form, agent))
        log.info("call %s from %s to %s: streaming to %s (agent %s)",
                 form.get("CallSid", "?"), form.get("From", "?"), form.get("To", "?"), stream_url, agent)
        return Response(twiml, media_type="application/xml")

    return router
