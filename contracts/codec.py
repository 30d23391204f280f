"""The one wire codec: msgpack, plugged into FastStream. Audio stays raw `bin`, never base64."""

from __future__ import annotations

from typing import Any

import msgpack
from faststream._internal.parser import DefaultCodec
from pydantic import BaseModel

CONTENT_TYPE = "application/msgpack"


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

    Bodies without the msgpack content type (a `nats pub` by hand, say) fall back to
    FastStream's default JSON/text decoding so they reach validation and get a clear error.
    """

    async def decode(self, msg: Any) -> Any:
        if msg.content_type == CONTENT_TYPE:
            return unpack(msg.body)
        return await super().decode(msg)

    async def encode(self, msg: Any, serializer: Any = None) -> tuple[bytes, str | None]:
        if isinstance(msg, BaseModel | dict | list):
            return pack(msg), CONTENT_TYPE
        return await super().encode(msg, serializer)
