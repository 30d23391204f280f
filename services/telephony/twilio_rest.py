"""Ending a call through Twilio's REST API, when the edge has the account's credentials.

Closing the Media Stream alone ends a `<Connect><Stream>` call once Twilio runs out of TwiML,
but completing the call explicitly is what Twilio documents, and it also ends calls whose TwiML
goes on after the stream. The `twilio` client is blocking, so each request runs on a worker
thread, off the event loop, with a timeout. `api_url` points it at another server (tests).
"""

from __future__ import annotations

import asyncio
import logging

from twilio.base.exceptions import TwilioException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from .settings import TelephonySettings

log = logging.getLogger("ringline.telephony.twilio_rest")
# The twilio client logs every request and response at INFO; one hang-up is worth one line.
_http_log = logging.getLogger("ringline.telephony.twilio_rest.http")
_http_log.setLevel(logging.WARNING)


class TwilioCalls:
    """`await calls.complete(call_sid)` ends a live call (POST .../Calls/{CallSid}.json Status=completed)."""

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

    def _complete(self, call_sid: str) -> None:
        self._client().calls(call_sid).update(status="completed")

    async def complete(self, call_sid: str) -> bool:
        """True when Twilio accepted the request; failures are logged, never raised."""
        try:
            await asyncio.wait_for(asyncio.to_thread(self._complete, call_sid), self.timeout_s + 1.0)
        except (TwilioException, OSError, TimeoutError, ValueError) as exc:
            log.warning("call %s: Twilio did not complete the call: %s", call_sid, exc)
            return False
        except Exception as exc:  # requests' own errors, a bad response body
            log.warning("call %s: completing the call through Twilio failed: %r", call_sid, exc)
            return False
        log.info("call %s: completed through Twilio's REST API", call_sid)
        return True
