"""A stream is bound to its call: a short-lived token in the TwiML, checked at the stream's `start`.

Twilio signs a Media Streams upgrade over its URL only, so one captured signature would open any
number of streams for any call. Every `<Connect><Stream>` the edge answers (the voice webhook
and a reconnect's action webhook alike) therefore carries a `<Parameter name="stream_token">`:
`<expiry>.<HMAC-SHA256(secret, "<call sid>.<expiry>")>`. Twilio hands it back in
`start.customParameters`; a `start` whose token is missing, expired or made for another call
is refused. The token is taken out of the parameters before they reach the bus.

The secret is `RINGLINE_TELEPHONY_STREAM_SECRET`, else derived from `TWILIO_AUTH_TOKEN` (every
edge replica has it, and a stream may reach another replica than its webhook did); with neither
(a local edge, nothing public) a random secret of this process signs the tokens and no `start` is
refused for its token: another replica could not have checked it anyway. Pure: no I/O; the clock
is passed in.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

STREAM_TOKEN_PARAM = "stream_token"


class StreamTokens:
    def __init__(self, secret: bytes, ttl_s: float, required: bool) -> None:
        self._secret = secret
        self.ttl_s = ttl_s
        self.required = required  # a `start` without a token is refused

    @classmethod
    def from_secrets(cls, stream_secret: str | None, twilio_auth_token: str | None, ttl_s: float) -> StreamTokens:
        if stream_secret:
            return cls(stream_secret.encode(), ttl_s, required=True)
        if twilio_auth_token:
            derived = hmac.new(twilio_auth_token.encode(), b"ringline stream token", hashlib.sha256).digest()
            return cls(derived, ttl_s, required=True)
        return cls(secrets.token_bytes(32), ttl_s, required=False)

    def _mac(self, call_sid: str, expiry: int) -> str:
        message = f"{call_sid}.{expiry}".encode("utf-8", "surrogatepass")
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def issue(self, call_sid: str, now: float) -> str:
        expiry = int(now + self.ttl_s)
        return f"{expiry}.{self._mac(call_sid, expiry)}"

    def check(self, token: str | None, call_sid: str, now: float) -> str | None:
        """None when `token` opens a stream for `call_sid` now; otherwise why not."""
        if not self.required:
            return None
        if not token:
            return "no stream token"
        expiry_text, _, mac = token.partition(".")
        if not expiry_text.isdigit() or len(expiry_text) > 12 or not mac:
            return "malformed stream token"
        expiry = int(expiry_text)
        if not hmac.compare_digest(mac.encode("utf-8", "surrogatepass"), self._mac(call_sid, expiry).encode()):
            return "stream token is not for this call"
        if expiry < now:
            return "stream token expired"
        return None
