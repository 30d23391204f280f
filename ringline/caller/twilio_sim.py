"""What Twilio sends: the voice webhook form, signatures, TwiML reading and Media Streams messages.

Written from Twilio's documentation, independently of the edge's own protocol module, so the
simulated caller is an honest check of the edge.
"""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass
from xml.etree import ElementTree

from twilio.request_validator import RequestValidator

SIGNATURE_HEADER = "X-Twilio-Signature"


def sid(prefix: str) -> str:
    """A Twilio-style SID: two letters and 32 hex digits."""
    return prefix + secrets.token_hex(16)


def voice_webhook_form(call_sid: str, account_sid: str, caller: str, callee: str) -> dict[str, str]:
    """The form fields Twilio POSTs to the voice URL when an inbound call rings."""
    return {
        "AccountSid": account_sid,
        "ApiVersion": "2010-04-01",
        "CallSid": call_sid,
        "CallStatus": "ringing",
        "CallToken": "",
        "Called": callee,
        "Caller": caller,
        "Direction": "inbound",
        "From": caller,
        "FromCountry": "US",
        "To": callee,
        "ToCountry": "US",
    }


def outbound_answer_form(call_sid: str, account_sid: str, caller: str, callee: str,
                         answered_by: str) -> dict[str, str]:
    """The form fields Twilio POSTs to an outbound call's URL once it is answered: `caller` is the
    number the call was placed from, `callee` the one that answered, as answering-machine
    detection judged it (`human`, `machine_start`, `fax`, `unknown`, ...)."""
    form = voice_webhook_form(call_sid, account_sid, caller, callee)
    form.update(Direction="outbound-api", CallStatus="in-progress", AnsweredBy=answered_by)
    return form


def signature(auth_token: str, url: str, params: dict[str, str] | None = None) -> str:
    return RequestValidator(auth_token).compute_signature(url, params or {})


class TwimlError(ValueError):
    """The voice webhook answered with something other than a `<Connect><Stream>`."""


def action_form(call_sid: str, account_sid: str, caller: str, callee: str,
                direction: str = "inbound") -> dict[str, str]:
    """The form fields Twilio POSTs to a `<Connect action>` URL when the stream has ended and the
    call is still up."""
    form = voice_webhook_form(call_sid, account_sid, caller, callee)
    form.update(CallStatus="in-progress", Direction=direction)
    return form


@dataclass(frozen=True)
class StreamTarget:
    url: str
    parameters: dict[str, str]
    action: str = ""  # the `<Connect action>` URL: Twilio requests it when the stream ends


def _root(xml: str) -> ElementTree.Element:
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError as exc:
        raise TwimlError(f"the webhook did not return XML: {exc}") from None
    if root.tag != "Response":
        raise TwimlError(f"TwiML root is <{root.tag}>, expected <Response>")
    return root


def read_action_twiml(xml: str) -> StreamTarget | None:
    """The answer to a `<Connect action>` request: a new stream to connect, or None when the call
    is to end (`<Hangup/>`, or no verb left, as Twilio does)."""
    root = _root(xml)
    if root.find("./Connect/Stream") is None:
        return None
    return read_twiml(xml)


def read_twiml(xml: str) -> StreamTarget:
    root = _root(xml)
    stream = root.find("./Connect/Stream")
    if stream is None or not stream.get("url"):
        raise TwimlError("TwiML has no <Connect><Stream url=...>")
    url = stream.get("url", "")
    if not url.startswith(("ws://", "wss://")):
        raise TwimlError(f"stream URL {url!r} is not a ws:// or wss:// URL")
    params = {p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter") if p.get("name")}
    connect = root.find("./Connect")
    action = connect.get("action", "") if connect is not None else ""
    return StreamTarget(url=url, parameters=params, action=action)


class StreamMessages:
    """Builds the messages of one Media Stream; numbers go out as strings, like Twilio's."""

    def __init__(self, stream_sid: str, call_sid: str, account_sid: str) -> None:
        self.stream_sid = stream_sid
        self.call_sid = call_sid
        self.account_sid = account_sid
        self._seq = 0
        self._chunk = 0

    def _next_seq(self) -> str:
        self._seq += 1
        return str(self._seq)

    @staticmethod
    def connected() -> str:
        return json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})

    def start(self, custom_parameters: dict[str, str]) -> str:
        return json.dumps({
            "event": "start",
            "sequenceNumber": self._next_seq(),
            "start": {
                "accountSid": self.account_sid,
                "streamSid": self.stream_sid,
                "callSid": self.call_sid,
                "tracks": ["inbound"],
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                "customParameters": custom_parameters,
            },
            "streamSid": self.stream_sid,
        })

    def media(self, frame: bytes, timestamp_ms: int) -> str:
        """The same JSON as `json.dumps` of the message, written out directly: a caller sends 50 of
        these a second, and the load bench runs hundreds of callers beside the system under test."""
        self._chunk += 1
        payload = base64.b64encode(frame).decode("ascii")
        return (f'{{"event": "media", "sequenceNumber": "{self._next_seq()}", "media": {{"track": "inbound", '
                f'"chunk": "{self._chunk}", "timestamp": "{int(timestamp_ms)}", "payload": "{payload}"}}, '
                f'"streamSid": {json.dumps(self.stream_sid)}}}')

    def mark(self, name: str) -> str:
        return json.dumps({"event": "mark", "sequenceNumber": self._next_seq(),
                           "streamSid": self.stream_sid, "mark": {"name": name}})

    def dtmf(self, digit: str) -> str:
        return json.dumps({"event": "dtmf", "sequenceNumber": self._next_seq(), "streamSid": self.stream_sid,
                           "dtmf": {"track": "inbound_track", "digit": digit}})

    def stop(self) -> str:
        return json.dumps({"event": "stop", "sequenceNumber": self._next_seq(), "streamSid": self.stream_sid,
                           "stop": {"accountSid": self.account_sid, "callSid": self.call_sid}})
