"""The audio path beside FastStream: per-frame subscriptions and publishes on the NATS client itself.

FastStream gives every message a dependency-injection call, its middlewares, a context scope and
a log context (the subscriber's subject template is parsed again for each one). At 50 frames a
second per call that machinery was about 40 % of the stt's CPU under load (py-spy, 10 calls on
2 cores), for messages that are one model each. Audio frames therefore go straight through the
nats-py client the broker already holds: same subjects, same msgpack bodies and content type
(any FastStream subscriber of these subjects reads them as before), still validated into their
model. Control, transcripts and events stay on FastStream.

`FramePublisher` goes one step further for a call's stream of frames (the edge's caller audio,
50 a second): the message's dump is made once, and each frame only packs it with its own
values, with no pydantic model built and dumped per frame (the receiver validates as always).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from ..codec import CONTENT_TYPE, MalformedMessage, pack, unpack
from .calls import CallBus

log = logging.getLogger("ringline.fastpath")

M = TypeVar("M", bound=BaseModel)
_HEADERS = {"content-type": CONTENT_TYPE}


def _client(bus: CallBus) -> Any:
    client = getattr(bus.broker, "_connection", None)  # FastStream's NatsBroker keeps its nats-py client here
    if client is None:
        raise RuntimeError("the broker is not connected to NATS")
    return client


class _Subscription:
    """A raw subscription that `CallBus.close` stops with the call's other subscriptions."""

    def __init__(self, sub: Any) -> None:
        self.sub = sub

    async def stop(self) -> None:
        await self.sub.unsubscribe()


def has_client(bus: CallBus) -> bool:
    """False on the in-memory test broker: use `bus.subscribe` / `bus.publish` there."""
    return getattr(bus.broker, "_connection", None) is not None


async def subscribe_frames(bus: CallBus, subject: str, model: type[M], handler: Callable[[M], Awaitable[Any]]) -> None:
    """`bus.subscribe(subject, handler)` for a stream of `model` messages, without FastStream.
    Messages are handled one at a time in order, like a FastStream subscriber's."""
    if not has_client(bus):
        await bus.subscribe(subject, handler)
        return

    async def on_message(msg: Any) -> None:
        try:
            message = model.model_validate(unpack(msg.data))
        except (MalformedMessage, ValidationError) as exc:
            log.warning("dropped a malformed %s on %s: %s", model.__name__, subject, exc)
            return
        try:
            await handler(message)
        except Exception:
            log.exception("handling a %s on %s failed", model.__name__, subject)

    sub = await _client(bus).subscribe(subject, cb=on_message)
    bus.track(subject, _Subscription(sub))


async def publish_frame(bus: CallBus, message: BaseModel, subject: str) -> None:
    """`bus.publish(message, subject)` for one audio frame, without FastStream."""
    if bus.closed:
        return
    if not has_client(bus):
        await bus.publish(message, subject)
        return
    await _client(bus).publish(subject, pack(message), headers=_HEADERS)


class FramePublisher:
    """Publishes a stream of `sample`'s kind of message on `subject`, each differing from `sample`
    only in the fields given to `publish`: the same msgpack body `publish_frame` would send, made
    from `sample`'s dump with those fields replaced, without building a model per frame."""

    def __init__(self, bus: CallBus, subject: str, sample: BaseModel) -> None:
        self.bus, self.subject = bus, subject
        self._model = type(sample)
        self._body = sample.model_dump(mode="python")

    async def publish(self, **fields: Any) -> None:
        unknown = fields.keys() - self._body.keys()
        if unknown:
            raise TypeError(f"{self._model.__name__} has no field {sorted(unknown)}")
        if self.bus.closed:
            return
        self._body.update(fields)
        if not has_client(self.bus):
            await self.bus.publish(self._model.model_validate(self._body), self.subject)
            return
        await _client(self.bus).publish(self.subject, pack(self._body), headers=_HEADERS)
