"""The edge fails over through Twilio: `<Connect action>` and its webhook, `POST /twilio/action`.

Every `<Connect>` the edge answers names an action URL that carries the Ringline call id (and
the agent), so Twilio's signature covers it. When the stream ends while the call goes on (the
edge serving it died, or drained and handed its streams over), Twilio requests that URL, through
the load balancer, on any edge replica. The answer is a new `<Connect action><Stream>` for the
same call with `takeover=1`: that edge re-attaches to the live call instead of starting one.
A call that is really over gets `<Hangup/>`.

Which calls are over: the edge that ends a call for good (the caller's `stop`, an agent hang-up,
a transfer, an error) writes its id to the JetStream key-value bucket `ringline-edge-ended`
(`ended_bucket`; entries expire after `ended_ttl_s`) *before* it closes the stream, so the
action request that the close may cause already finds it. A drained or dead edge writes
nothing, and its calls reconnect. An action form whose `CallStatus` says the call is over is
answered `<Hangup/>` too. Each edge also remembers the calls it ended itself (the last
`LOCAL_ENDED` of them), so its own answer holds without JetStream. When the bucket cannot be read
the call is reconnected: a wrong reconnect costs a stream that ends at once, a wrong hang-up
costs the call.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Request, Response
from nats.js.errors import KeyNotFoundError
from twilio.twiml.voice_response import VoiceResponse

from ringline.contracts import subjects
from ringline.contracts.runtime.leases import LazyBucket

from .settings import TelephonySettings
from .signature import SignatureChecker

ACTION_PATH = "/twilio/action"
TAKEOVER_PARAM = "takeover"  # the `<Parameter>` that tells the edge a stream re-attaches to a live call
OVER_STATUSES = frozenset({"completed", "canceled", "failed", "busy", "no-answer"})
LOCAL_ENDED = 10_000  # calls this edge ended, remembered in memory too

log = logging.getLogger("ringline.telephony.failover")


def action_query(call_id: str, agent: str) -> str:
    """The action URL's query: the call id and its agent (covered by Twilio's signature)."""
    return urlencode({"call": call_id, "agent": agent})


def hangup_twiml() -> str:
    response = VoiceResponse()
    response.hangup()
    return str(response)


def is_takeover(custom_parameters: dict[str, str]) -> bool:
    return custom_parameters.get(TAKEOVER_PARAM) == "1"


class EndedCalls:
    """The calls that are over, for the action webhook of every replica (a KV bucket)."""

    def __init__(self, broker: object, bucket: str, ttl_s: float, timeout_s: float = 1.0) -> None:
        self.timeout_s = timeout_s
        self._bucket = LazyBucket(broker, bucket, "Ringline calls that are over (the edge answers their action URL "
                                  "<Hangup/>)", ttl_s)
        self._local: OrderedDict[str, None] = OrderedDict()

    async def mark(self, call_id: str, reason: str) -> None:
        """Record that `call_id` is over; failures are logged, never raised."""
        self._local[call_id] = None
        while len(self._local) > LOCAL_ENDED:
            self._local.popitem(last=False)
        try:
            async with asyncio.timeout(self.timeout_s):
                await (await self._bucket.open()).put(call_id, reason.encode("utf-8")[:200])
        except Exception as exc:
            log.warning("call %s: recording its end for the action webhook failed: %r", call_id, exc)

    async def is_over(self, call_id: str) -> bool:
        """True when the call was ended for good; False when unknown or unreadable (logged)."""
        if call_id in self._local:
            return True
        try:
            async with asyncio.timeout(self.timeout_s):
                await (await self._bucket.open()).get(call_id)
            return True
        except KeyNotFoundError:
            return False
        except Exception as exc:
            log.warning("call %s: reading whether it is over failed (reconnecting it): %r", call_id, exc)
            return False


def action_router(settings: TelephonySettings, checker: SignatureChecker, ended: EndedCalls,
                  connect_twiml: Callable[[dict[str, str], str, str], str]) -> APIRouter:
    """`connect_twiml(form, agent, call_id)` is the voice webhook's own `<Connect>` builder
    (`twiml.reconnect_twiml`), so a reconnected stream gets what a new one gets."""
    router = APIRouter()

    @router.post(ACTION_PATH)
    async def action(request: Request) -> Response:
        body = (await request.body()).decode("utf-8", errors="replace")
        pairs = parse_qsl(body, keep_blank_values=True)
        if not checker.check_webhook(ACTION_PATH, request.url.query, pairs, request.headers):
            return Response("invalid Twilio signature", status_code=403, media_type="text/plain")
        form = dict(pairs)
        call_id = request.query_params.get("call", "")
        agent = request.query_params.get("agent") or settings.default_agent
        try:
            subjects.check_call_id(call_id)
        except subjects.InvalidCallId:
            return Response("the action URL names no valid call", status_code=400, media_type="text/plain")
        if form.get("CallSid") and form["CallSid"] != call_id:
            log.warning("action for call %s posted with CallSid %s: hanging up", call_id, form["CallSid"])
            return Response(hangup_twiml(), media_type="application/xml")
        status = form.get("CallStatus", "")
        if status in OVER_STATUSES or await ended.is_over(call_id):
            log.info("call %s: stream ended with the call (%s): <Hangup/>", call_id, status or "over")
            return Response(hangup_twiml(), media_type="application/xml")
        log.info("call %s: stream ended while the call goes on: reconnecting it", call_id)
        twiml = connect_twiml(form, agent, call_id)
        return Response(twiml, media_type="application/xml")

    return router
