"""Who may use the browser softphone and the dashboard.

Open on a loopback-only edge without a token (a laptop). With `web_token` set, every API call,
event stream and softphone socket must present it: `Authorization: Bearer <token>` or, where a
browser cannot set headers (EventSource, WebSocket), `?token=`. Compared in constant time. An
edge reachable beyond this machine (its public URL or its bind address is not loopback) without a
token refuses these endpoints outright. The static pages themselves hold no data and stay public.

A browser opens a WebSocket to any origin, so the softphone socket also checks that `Origin`,
when sent, names the edge itself: another web site the user visits cannot place calls through it.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Mapping
from urllib.parse import urlsplit

from fastapi import HTTPException, Request
from starlette.status import HTTP_401_UNAUTHORIZED, HTTP_403_FORBIDDEN

from .settings import TelephonySettings

TOKEN_PARAM = "token"
NO_TOKEN_WHEN_EXPOSED = ("the softphone and dashboard are off: this edge is reachable beyond localhost and "
                         "RINGLINE_TELEPHONY_WEB_TOKEN is not set")


def is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def exposed(settings: TelephonySettings) -> bool:
    """Can something beyond this machine reach the edge? (A wildcard bind address can.)"""
    public_host = (urlsplit(settings.public_url).hostname or "") if settings.public_url else ""
    return not is_loopback(settings.host) or (bool(settings.public_url) and not is_loopback(public_host))


def bearer(headers: Mapping[str, str]) -> str | None:
    scheme, _, value = (headers.get("authorization") or "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


class WebGate:
    def __init__(self, settings: TelephonySettings) -> None:
        token = settings.web_token.get_secret_value() if settings.web_token else ""
        self._token = token.encode("utf-8") if token else None
        self.exposed = exposed(settings)

    @property
    def disabled(self) -> bool:
        """Exposed without a token: nobody may use the web endpoints."""
        return self._token is None and self.exposed

    @property
    def needs_token(self) -> bool:
        return self._token is not None

    def allows(self, presented: str | None, host: str) -> bool:
        """`host`: the request's Host header. Without a token only a loopback Host is served, so a
        web page whose name an attacker re-points at 127.0.0.1 (DNS rebinding) gets nothing."""
        if self._token is None:
            return not self.exposed and is_loopback(urlsplit(f"//{host}").hostname or "")
        return presented is not None and hmac.compare_digest(presented.encode("utf-8"), self._token)

    def presented(self, headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
        return bearer(headers) or query.get(TOKEN_PARAM) or None

    def check(self, request: Request) -> None:
        """FastAPI dependency of every web API route and event stream."""
        if self.disabled:
            raise HTTPException(HTTP_403_FORBIDDEN, NO_TOKEN_WHEN_EXPOSED)
        if not self.allows(self.presented(request.headers, request.query_params), request.headers.get("host", "")):
            raise HTTPException(HTTP_401_UNAUTHORIZED, "a valid token is required",
                                headers={"WWW-Authenticate": "Bearer"})


def same_origin(headers: Mapping[str, str], base_url: str) -> bool:
    """A browser's `Origin` names this edge (its Host header or its public URL); no Origin: not a browser."""
    origin = headers.get("origin")
    if not origin:
        return True
    parts = urlsplit(origin)
    host = headers.get("host", "")
    return parts.netloc.lower() in {host.lower(), urlsplit(base_url).netloc.lower()}
