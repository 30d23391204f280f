"""Call audio in a JetStream object store (file storage): 8 kHz mu-law as it came off the phone
line, turned into a 16-bit PCM WAV file only when someone reads it."""

from __future__ import annotations

import io
import time
import wave

from nats.js.api import StorageType
from nats.js.errors import ObjectNotFoundError
from nats.js.object_store import ObjectStore

from ringline.contracts.audio import mulaw_decode
from ringline.contracts.messages.audio import SAMPLE_RATE

CACHE_S = 30.0  # a WAV read in pieces is built once, not once per piece


def voicemail_key(call_id: str) -> str:
    return f"voicemail/{call_id}.ulaw"


def recording_key(call_id: str) -> str:
    return f"recording/{call_id}.ulaw"


def wav_bytes(mulaw: bytes, channels: int = 1) -> bytes:
    pcm = mulaw_decode(mulaw[: len(mulaw) - len(mulaw) % channels])
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes(pcm.astype("<i2").tobytes())
    return out.getvalue()


class AudioStore:
    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self._cache: tuple[str, float, bytes] | None = None

    @classmethod
    async def open(cls, broker, bucket: str, replicas: int = 1) -> AudioStore:
        store = await broker.object_storage(bucket, storage=StorageType.FILE, replicas=replicas,
                                            description="Ringline voicemail and call audio (8 kHz mu-law)")
        return cls(store)

    async def put(self, key: str, mulaw: bytes) -> None:
        await self.store.put(key, mulaw)
        if self._cache and self._cache[0] == key:
            self._cache = None

    async def wav(self, key: str, channels: int = 1) -> bytes | None:
        """The audio under `key` as a WAV file; None when there is none."""
        if self._cache and self._cache[0] == key and time.monotonic() - self._cache[1] < CACHE_S:
            return self._cache[2]
        try:
            result = await self.store.get(key)
        except ObjectNotFoundError:
            return None
        data = wav_bytes(bytes(result.data or b""), channels)
        self._cache = (key, time.monotonic(), data)
        return data
