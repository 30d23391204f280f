"""The one wire codec: msgpack, plugged into FastStream. Audio stays raw `bin`, never base64."""

from __future__ import annotations

from typing import Any

import msgpack
from faststream._internal.parser import DefaultCodec
from pydantic import BaseModel

CONTENT_TYPE = "application/msgpack"
MAX_BODY_BYTES = 8 * 1024 * 1024  # the largest body a service decodes (voicemail WAV replies are the biggest)


class MalformedMessage(ValueError):
    """A body that is not the msgpack map it claims to be."""


def _default(obj: Any) -> Any:
    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="python")
    raise TypeError(f"cannot encode {type(obj).__name__} as msgpack")


def pack(message: BaseModel | dict[str, Any] | list[Any] | float) -> bytes:
    return msgpack.packb(message, default=_default, use_bin_type=True)


def unpack(body: bytes) -> Any:
    try:
        return msgpack.unpackb(body, raw=False, strict_map_key=False)
    except (msgpack.UnpackException, ValueError, TypeError) as exc:
        raise MalformedMessage(f"undecodable msgpack body ({len(body)} bytes): {exc}") from exc


class MsgpackCodec(DefaultCodec):
    """FastStream codec hook: models and dicts go out as msgpack; msgpack comes back as dicts.

    A body without the msgpack content type (plain JSON from a `nats pub` by hand, say) is
    refused with `MalformedMessage`, never decoded another way: a JSON `CallStart` must not become
    a call. So is a body over `MAX_BODY_BYTES` (NATS' own default max_payload is 1 MiB).
    """

    async def decode(self, msg: Any) -> Any:
        body = msg.body or b""
        subject = str(getattr(getattr(msg, "raw_message", None), "subject", "?"))[:200]
        if len(body) > MAX_BODY_BYTES:
            raise MalformedMessage(f"refused a message on {subject}: {len(body)}-byte body over the "
                                   f"{MAX_BODY_BYTES}-byte limit")
        if msg.content_type != CONTENT_TYPE:
            raise MalformedMessage(f"refused a message on {subject}: body is not msgpack "
                                   f"(content-type {str(msg.content_type)[:40]!r})")
        try:
            return unpack(body)
        except MalformedMessage as exc:
            raise MalformedMessage(f"refused a message on {subject}: {exc}") from None

    async def encode(self, msg: Any, serializer: Any = None) -> tuple[bytes, str | None]:
        if isinstance(msg, BaseModel | dict | list):
            return pack(msg), CONTENT_TYPE
        return await super().encode(msg, serializer)
