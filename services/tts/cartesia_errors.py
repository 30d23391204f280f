"""How Cartesia fails, as exceptions that say whether trying again later can help.

Each error carries a short `reason` ("rate_limited", "unavailable", ...) that callers record
and act on (the fallback chain cools a provider down after "rate_limited") without importing
these classes, and the HTTP `status` when there was one.
"""

from __future__ import annotations

from typing import Any


class CartesiaError(RuntimeError):
    retryable = True
    reason = "error"

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(f"cartesia: {message}")
        self.status = status


class CartesiaRateLimited(CartesiaError):
    reason = "rate_limited"


class CartesiaUnavailable(CartesiaError):
    reason = "unavailable"


class CartesiaAuthError(CartesiaError):
    retryable = False
    reason = "auth"


class CartesiaRequestError(CartesiaError):
    retryable = False
    reason = "bad_request"


class CartesiaStalled(CartesiaError):
    reason = "stalled"


class CartesiaDisconnected(CartesiaError):
    reason = "disconnected"


def connect_error(exc: BaseException) -> CartesiaError:
    from websockets.exceptions import InvalidStatus

    if isinstance(exc, InvalidStatus):
        return status_error(exc.response.status_code, "connect refused")
    if isinstance(exc, TimeoutError):
        return CartesiaUnavailable("no answer to connect")
    return CartesiaUnavailable(f"cannot connect: {type(exc).__name__}: {exc}")


def event_error(event: Any) -> CartesiaError:
    return status_error(event.status_code, f"{event.title or 'error'}: {event.message or ''}".strip())


def status_error(status: int | None, message: str) -> CartesiaError:
    text = f"{message} (HTTP {status})"
    if status == 429:
        return CartesiaRateLimited(text, status)
    if status in (401, 402, 403):
        return CartesiaAuthError(text, status)
    if status is not None and 400 <= status < 500:
        return CartesiaRequestError(text, status)
    return CartesiaUnavailable(text, status)
