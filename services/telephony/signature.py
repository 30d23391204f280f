"""X-Twilio-Signature checks for the voice webhook and the Media Streams WebSocket upgrade.

The URL Twilio signed is rebuilt from the configured public URL (`public_url`), never from the
Host header, which a client controls. Without an auth token nothing is checked (logged once).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from starlette.datastructures import ImmutableMultiDict
from twilio.request_validator import (
    SIGNATURE_HEADER,
    SIGNATURE_SETTINGS_HEADER,
    RequestValidator,
    get_signature_algorithm,
)

from .settings import TelephonySettings
from .stream_token import StreamTokens

log = logging.getLogger("ringline.telephony.signature")


class SignatureChecker:
    def __init__(self, settings: TelephonySettings) -> None:
        token = settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else ""
        self._validator = RequestValidator(token) if token else None
        secret = settings.stream_secret.get_secret_value() if settings.stream_secret else None
        self.tokens = StreamTokens.from_secrets(secret, token, settings.stream_token_ttl_s)
        self._base = settings.base_url
        self._ws_base = settings.ws_base_url
        self._warned = False

    @property
    def enabled(self) -> bool:
        return self._validator is not None

    def http_url(self, path: str, query: str = "") -> str:
        return self._base + path + (f"?{query}" if query else "")

    def ws_url(self, path: str, query: str = "") -> str:
        return self._ws_base + path + (f"?{query}" if query else "")

    def warn_if_unverified(self) -> None:
        if self._validator is None and not self._warned:
            log.warning("TWILIO_AUTH_TOKEN is not set: Twilio signatures are NOT verified")
            self._warned = True

    def _check(self, url: str, params: object, headers: Mapping[str, str]) -> bool:
        if self._validator is None:
            self.warn_if_unverified()
            return True
        signature = headers.get(SIGNATURE_HEADER) or headers.get(SIGNATURE_HEADER.lower()) or ""
        if not signature:
            log.warning("request to %s has no %s header", url, SIGNATURE_HEADER)
            return False
        algorithm = get_signature_algorithm(headers.get(SIGNATURE_SETTINGS_HEADER, ""))
        ok = bool(self._validator.validate(url, params, signature, algorithm=algorithm))
        if not ok:
            log.warning("invalid %s for %s", SIGNATURE_HEADER, url)
        return ok

    def check_webhook(
        self, path: str, query: str, form: Sequence[tuple[str, str]], headers: Mapping[str, str]
    ) -> bool:
        """A POSTed webhook: URL = public_url + path + query, signed with the form parameters."""
        return self._check(self.http_url(path, query), ImmutableMultiDict(form), headers)

    def check_websocket(self, path: str, query: str, headers: Mapping[str, str]) -> bool:
        """The Media Streams upgrade: URL = public_url as ws(s):// + path + query, no parameters."""
        return self._check(self.ws_url(path, query), {}, headers)
