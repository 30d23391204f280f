"""Following `<Connect action>` as Twilio does, when a stream ends while the call is up.

The edge's stream may end without the call ending (the edge replica died, or drained and handed
its streams over). Twilio then requests the `<Connect action>` URL with the call's form fields
(signed when there is an auth token) and does what the answer says: a new `<Connect><Stream>`
reconnects the call (through the load balancer, to any edge), `<Hangup/>` or nothing ends it.
`ActionFollower.follow` does the same for the simulated caller; each drop is kept as a
`Reconnect` with the gap the caller heard (last agent audio before -> first agent audio after).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from . import twilio_sim

log = logging.getLogger("ringline.caller.failover")


@dataclass
class Reconnect:
    """One stream that ended while the call was up; wall-clock seconds."""

    dropped_at: float
    close_code: int | None = None
    close_reason: str = ""
    last_agent_audio_at: float | None = None  # the last agent frame before the drop
    reconnected_at: float | None = None  # the new stream's `start` was sent
    first_agent_audio_at: float | None = None  # the first agent frame on the new stream
    stream_sid: str = ""  # of the new stream
    attempts: int = 0  # action requests made
    error: str = ""  # why the call could not be reconnected

    @property
    def reconnect_ms(self) -> float | None:
        """The drop -> the new stream started."""
        return None if self.reconnected_at is None else round((self.reconnected_at - self.dropped_at) * 1000, 1)

    @property
    def gap_ms(self) -> float | None:
        """What the caller heard as silence: the last agent audio before -> the first after
        (from the drop when no audio came before it on that stream)."""
        if self.first_agent_audio_at is None:
            return None
        before = self.last_agent_audio_at or self.dropped_at
        return round((self.first_agent_audio_at - before) * 1000, 1)


@dataclass(frozen=True)
class NewStream:
    ws: Any
    messages: twilio_sim.StreamMessages
    parameters: dict[str, str]


class ActionFollower:
    """Requests the action URL and connects the stream it answers, like Twilio."""

    def __init__(self, url: str, form: dict[str, str], account_sid: str, *, auth_token: str | None = None,
                 public_url: str | None = None, timeout: float = 10.0, attempts: int = 3) -> None:
        self.url = url.rstrip("/")
        self.public_url = (public_url or url).rstrip("/")
        self.form = form
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.timeout = timeout
        self.attempts = attempts
        self.action = ""  # from the latest `<Connect action>`

    def _local(self, action: str) -> str:
        """Where to POST the action URL: its path and query on the edge the caller dials."""
        parts = urlsplit(action)
        if not parts.scheme:
            return self.url + action
        return self.url + parts.path + (f"?{parts.query}" if parts.query else "")

    def _signed(self, action: str) -> str:
        """The URL Twilio signs: the action as written, made absolute on the public URL."""
        return action if urlsplit(action).scheme else self.public_url + action

    async def follow(self, drop: Reconnect) -> NewStream | None:
        """The next stream of the call, or None when the call is over (`drop.error` says why
        when that was not the edge's answer)."""
        if not self.action:
            return None  # no action: Twilio goes on to the next verb; there is none, so it hangs up
        form = {**self.form, "CallStatus": "in-progress"}
        for attempt in range(1, self.attempts + 1):
            drop.attempts = attempt
            try:
                target = await self._request(form)
                if target is None:
                    return None
                return await self._connect(target)
            except Exception as exc:
                drop.error = f"reconnecting failed ({attempt}/{self.attempts}): {exc!r}"
                log.debug("%s", drop.error)
                await asyncio.sleep(0.2 * attempt)
        return None

    async def _request(self, form: dict[str, str]) -> twilio_sim.StreamTarget | None:
        headers = {}
        if self.auth_token:
            signature = twilio_sim.signature(self.auth_token, self._signed(self.action), form)
            headers[twilio_sim.SIGNATURE_HEADER] = signature
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            response = await client.post(self._local(self.action), data=form, headers=headers)
        if response.status_code != 200:
            raise RuntimeError(f"the action URL answered {response.status_code}: {response.text[:200]}")
        target = twilio_sim.read_action_twiml(response.text)
        self.action = target.action if target is not None else ""
        return target

    async def _connect(self, target: twilio_sim.StreamTarget) -> NewStream:
        from websockets.asyncio.client import connect

        headers = {}
        if self.auth_token:
            headers[twilio_sim.SIGNATURE_HEADER] = twilio_sim.signature(self.auth_token, target.url)
        ws = await connect(target.url, additional_headers=headers, open_timeout=self.timeout, max_size=2**20,
                           ping_interval=None)
        messages = twilio_sim.StreamMessages(twilio_sim.sid("MZ"), self.form["CallSid"], self.account_sid)
        return NewStream(ws, messages, target.parameters)
