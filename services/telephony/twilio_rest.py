"""Twilio's REST API, when the edge has the account's credentials: ending, placing and moving calls.

Closing the Media Stream alone ends a `<Connect><Stream>` call once Twilio runs out of TwiML,
but completing the call explicitly is what Twilio documents, and it also ends calls whose TwiML
goes on after the stream. An outbound call is created with answering-machine detection, so the
voice webhook learns who answered (`AnsweredBy`). A transfer replaces the live call's TwiML with
`<Dial>`, which also ends its Media Stream. The `twilio` client is blocking, so each request runs
on a worker thread, off the event loop, with a timeout. `api_url` points it at another server
(tests).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TypeVar

from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client
from twilio.twiml.voice_response import Dial, VoiceResponse

from .settings import TelephonySettings

log = logging.getLogger("ringline.telephony.twilio_rest")
# The twilio client logs every request and response at INFO; one hang-up is worth one line.
_http_log = logging.getLogger("ringline.telephony.twilio_rest.http")
_http_log.setLevel(logging.WARNING)

T = TypeVar("T")


class TwilioError(RuntimeError):
    """Twilio refused a request or could not be reached; `str(err)` says why."""


def dial_twiml(number: str) -> str:
    """`<Response><Dial>NUMBER</Dial></Response>`: what a transferred call runs next."""
    response = VoiceResponse()
    response.append(Dial(number))
    return str(response)


class TwilioCalls:
    """`complete(sid)` ends a live call, `place(...)` starts an outbound one, `transfer(sid, number)`
    moves a live call to another number."""

    def __init__(self, account_sid: str, auth_token: str, api_url: str | None = None,
                 timeout_s: float = 5.0) -> None:
        self.account_sid = account_sid
        self._auth_token = auth_token
        self.api_url = api_url.rstrip("/") if api_url else None
        self.timeout_s = timeout_s

    @classmethod
    def from_settings(cls, settings: TelephonySettings) -> TwilioCalls | None:
        """None unless both TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are set."""
        token = settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else ""
        if not (settings.twilio_account_sid and token):
            return None
        return cls(settings.twilio_account_sid, token, settings.twilio_api_url, settings.twilio_api_timeout_s)

    def _client(self) -> Client:
        http = TwilioHttpClient(timeout=self.timeout_s, logger=_http_log)
        client = Client(self.account_sid, self._auth_token, http_client=http)
        if self.api_url:
            client.api.base_url = self.api_url
        return client

    async def _request(self, fn: Callable[..., T], *args: object) -> T:
        """Run one blocking request on a thread; every failure becomes a `TwilioError`."""
        try:
            return await asyncio.wait_for(asyncio.to_thread(fn, *args), self.timeout_s + 1.0)
        except TwilioRestException as exc:
            raise TwilioError(f"Twilio answered {exc.status}: {exc.msg}") from exc
        except TimeoutError as exc:
            raise TwilioError(f"no answer from Twilio within {self.timeout_s:g}s") from exc
        except (TwilioException, OSError, ValueError) as exc:
            raise TwilioError(str(exc) or type(exc).__name__) from exc
        except Exception as exc:  # requests' own errors, a bad response body
            raise TwilioError(repr(exc)) from exc

    # -- ending -------------------------------------------------------------------------------

    def _complete(self, call_sid: str) -> None:
        self._client().calls(call_sid).update(status="completed")

    async def complete(self, call_sid: str) -> bool:
        """True when Twilio accepted the request; failures are logged, never raised."""
        try:
            await self._request(self._complete, call_sid)
        except TwilioError as exc:
            log.warning("call %s: Twilio did not complete the call: %s", call_sid, exc)
            return False
        log.info("call %s: completed through Twilio's REST API", call_sid)
        return True

    # -- placing ------------------------------------------------------------------------------

    def _place(self, to: str, from_: str, url: str, status_callback: str | None, machine_detection: str) -> str:
        options: dict[str, object] = {"method": "POST", "machine_detection": machine_detection}
        if status_callback:
            options["status_callback"] = status_callback
            options["status_callback_event"] = ["initiated", "ringing", "answered", "completed"]
        call = self._client().calls.create(to=to, from_=from_, url=url, **options)
        return str(call.sid)

    async def place(self, to: str, from_: str, url: str, status_callback: str | None = None,
                    machine_detection: str = "Enable") -> str:
        """Start an outbound call with answering-machine detection; Twilio requests `url` once it
        is answered (with `DetectMessageEnd`, on a machine only after its greeting, so a message
        left is recorded whole). Returns the new CallSid; raises `TwilioError`."""
        sid = await self._request(self._place, to, from_, url, status_callback, machine_detection)
        log.info("call %s: placed to %s from %s through Twilio's REST API", sid, to, from_)
        return sid

    # -- transferring -------------------------------------------------------------------------

    def _transfer(self, call_sid: str, number: str) -> None:
        self._client().calls(call_sid).update(twiml=dial_twiml(number))

    async def transfer(self, call_sid: str, number: str) -> str:
        """Move a live call to `number` (`<Dial>`): "transferred", or "failed: why". Never raises."""
        try:
            await self._request(self._transfer, call_sid, number)
        except TwilioError as exc:
            log.warning("call %s: Twilio did not transfer the call to %s: %s", call_sid, number, exc)
            return f"failed: {exc}"
        log.info("call %s: transferred to %s through Twilio's REST API", call_sid, number)
        return "transferred"


async def move_call(twilio: TwilioCalls | None, call_sid: str, target: str) -> str:
    """Transfer a live call: "transferred", "failed: why" (the call is then completed, as after a
    hang-up) or "no twilio credentials". Never raises."""
    if twilio is None:
        log.warning("call %s: transferring to %s needs Twilio (TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN); "
                    "ending the call instead", call_sid, target or "(no number)")
        return "no twilio credentials"
    outcome = await twilio.transfer(call_sid, target) if target else "failed: no number to transfer to"
    if outcome != "transferred":
        await twilio.complete(call_sid)
    return outcome
