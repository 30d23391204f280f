"""Call report webhooks: one signed JSON POST per webhook, retried after 1, 4 and 16 s.

Signature: `X-Ringline-Signature: sha256=<hex>` where hex is HMAC-SHA256, keyed with the
webhook's secret, of `<X-Ringline-Timestamp>.<raw body>`; the timestamp (Unix seconds) is taken
at each attempt, so a receiver can refuse an old or replayed request. `X-Ringline-Delivery`
stays the same across the attempts of one report, for deduplication.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import httpx

from ringline.contracts.messages.records import ReportDelivery

log = logging.getLogger("ringline.memory.reports")

SIGNATURE_HEADER = "X-Ringline-Signature"
TIMESTAMP_HEADER = "X-Ringline-Timestamp"
DELIVERY_HEADER = "X-Ringline-Delivery"
EVENT_HEADER = "X-Ringline-Event"
RETRY_S = (1.0, 4.0, 16.0)


@dataclass(frozen=True)
class ReportTarget:
    url: str
    secret: str | None = None  # None: sent unsigned (the key's variable is not set)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: str, timestamp: str, body: bytes, signature: str, max_age_s: float = 300.0,
           now: float | None = None) -> bool:
    """What a receiver does (the README shows the same in a few lines)."""
    try:
        fresh = abs((now or time.time()) - int(timestamp)) <= max_age_s
    except ValueError:
        return False
    return fresh and hmac.compare_digest(sign(secret, timestamp, body), signature)


class ReportSender:
    """Posts a report to one webhook until it answers 2xx or the retries are spent.
    `sleep` and `clock` are injectable so tests can run the schedule fast."""

    def __init__(self, client: httpx.AsyncClient, retry_s: Sequence[float] = RETRY_S, timeout_s: float = 10.0,
                 sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
                 clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.retry_s = tuple(retry_s)
        self.timeout_s = timeout_s
        self.sleep = sleep
        self.clock = clock

    async def deliver(self, target: ReportTarget, body: bytes, delivery: ReportDelivery,
                      on_attempt: Callable[[ReportDelivery], Awaitable[object]] | None = None) -> ReportDelivery:
        """Fills in `delivery` (attempts, status, errors) as it goes; returns it."""
        delivery_id = uuid.uuid4().hex
        delivery.signed = target.secret is not None
        for attempt, wait in enumerate((*self.retry_s, None)):
            delivery.attempts = attempt + 1
            ok = await self._attempt(target, body, delivery, delivery_id)
            if ok:
                delivery.status, delivery.last_error, delivery.delivered_at = "delivered", "", self.clock()
            elif wait is None:
                delivery.status = "lost"
                log.warning("call report to %s lost after %d attempts: %s", target.url, delivery.attempts,
                            delivery.last_error)
            if on_attempt is not None:
                await on_attempt(delivery)
            if ok or wait is None:
                return delivery
            await self.sleep(wait)
        return delivery  # pragma: no cover - the loop always returns

    async def _attempt(self, target: ReportTarget, body: bytes, delivery: ReportDelivery, delivery_id: str) -> bool:
        timestamp = str(int(self.clock()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "ringline-memory",
            EVENT_HEADER: "call.report",
            DELIVERY_HEADER: delivery_id,
            TIMESTAMP_HEADER: timestamp,
        }
        if target.secret is not None:
            headers[SIGNATURE_HEADER] = sign(target.secret, timestamp, body)
        try:
            response = await self.client.post(target.url, content=body, headers=headers, timeout=self.timeout_s)
        except httpx.HTTPError as exc:
            delivery.last_error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            return False
        delivery.status_code = response.status_code
        if 200 <= response.status_code < 300:
            return True
        delivery.last_error = f"HTTP {response.status_code}"
        return False
