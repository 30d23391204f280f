"""Durable call records in a JetStream key-value bucket (file storage), one key per call."""

from __future__ import annotations

import logging

from nats.js.errors import KeyNotFoundError, NoKeysError
from nats.js.kv import KeyValue

from ringline.contracts.codec import MalformedMessage, pack, unpack
from ringline.contracts.messages import CallListRequest, CallRecord, CallSummary
from ringline.contracts.redact import mask_number, redact_text
from ringline.contracts.runtime.leases import open_bucket

log = logging.getLogger("ringline.memory.store")


class CallStore:
    def __init__(self, kv: KeyValue, redact_pii: bool = False, mask_callers: bool = False) -> None:
        self.kv = kv
        self.redact_pii = redact_pii  # card numbers, emails and phone numbers out of the turns' text
        self.mask_callers = mask_callers  # the caller's number down to its last four digits

    @classmethod
    async def open(cls, broker, bucket: str, replicas: int = 1, *, redact_pii: bool = False,
                   mask_callers: bool = False) -> CallStore:
        return cls(await open_bucket(broker, bucket, "Ringline call records", None, replicas), redact_pii, mask_callers)

    def stored(self, record: CallRecord) -> CallRecord:
        """The record as it is kept: redacted as configured."""
        update: dict[str, object] = {}
        if self.redact_pii:
            update["turns"] = [t.model_copy(update={"text": redact_text(t.text),
                                                    "heard_text": redact_text(t.heard_text)})
                               for t in record.turns]
        if self.mask_callers and record.direction != "outbound":
            update["caller"] = mask_number(record.caller)
        elif self.mask_callers:
            update["callee"] = mask_number(record.callee)
        return record.model_copy(update=update) if update else record

    async def put(self, record: CallRecord) -> None:
        await self.kv.put(record.call_id, pack(self.stored(record)))

    async def get(self, call_id: str) -> CallRecord | None:
        try:
            entry = await self.kv.get(call_id)
        except KeyNotFoundError:
            return None
        if not entry.value:
            return None
        return CallRecord.model_validate(unpack(entry.value))

    async def records(self) -> list[CallRecord]:
        """Every readable record (an unreadable one is logged and skipped)."""
        try:
            keys = await self.kv.keys()
        except NoKeysError:
            return []
        records: list[CallRecord] = []
        for key in keys:
            try:
                record = await self.get(key)
            except (MalformedMessage, ValueError):
                log.warning("call record %s is unreadable; skipped", key)
                continue
            if record is not None:
                records.append(record)
        return records

    async def list(self, request: CallListRequest) -> list[CallSummary]:
        summaries = [summarize(record) for record in await self.records() if matches(record, request)]
        summaries.sort(key=lambda s: s.started_at, reverse=True)
        return summaries[:request.limit]


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def matches(record: CallRecord, request: CallListRequest) -> bool:
    """Does the call pass the request's filters (agent, a part of either number, start time)?"""
    if request.agent_id and record.agent_id != request.agent_id:
        return False
    if request.since and record.started_at < request.since:
        return False
    if request.until and record.started_at >= request.until:
        return False
    if request.number.strip():
        wanted = _digits(request.number)
        numbers = (record.caller, record.callee)
        if wanted:
            return any(wanted in _digits(n) for n in numbers)
        return any(request.number.strip().lower() in n.lower() for n in numbers)  # "browser", a SIP name
    return True


def summarize(record: CallRecord) -> CallSummary:
    return CallSummary(
        call_id=record.call_id,
        agent_id=record.agent_id,
        caller=record.caller,
        callee=record.callee,
        direction=record.direction,
        started_at=record.started_at,
        ended_at=record.ended_at,
        turns=len(record.turns),
        end_reason=record.end_reason,
        cost=float(record.cost.get("total", 0.0)),
    )


class SpendStore:
    """Money spent per agent per UTC day, for daily spend caps (`<agent>.<YYYY-MM-DD>` -> total)."""

    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv

    @classmethod
    async def open(cls, broker, bucket: str, replicas: int = 1) -> SpendStore:
        return cls(await open_bucket(broker, bucket, "Ringline spend per agent per day", None, replicas))

    @staticmethod
    def key(agent_id: str, day: str) -> str:
        return f"{agent_id}.{day}"

    async def get(self, agent_id: str, day: str) -> float:
        try:
            entry = await self.kv.get(self.key(agent_id, day))
        except KeyNotFoundError:
            return 0.0
        return float(unpack(entry.value)) if entry.value else 0.0

    async def add(self, agent_id: str, day: str, amount: float) -> float:
        """Add with optimistic concurrency: several memory replicas may close calls at once."""
        key = self.key(agent_id, day)
        for _ in range(10):
            try:
                entry = await self.kv.get(key)
                total = (float(unpack(entry.value)) if entry.value else 0.0) + amount
                await self.kv.update(key, pack(total), last=entry.revision)
                return total
            except KeyNotFoundError:
                try:
                    await self.kv.create(key, pack(amount))
                    return amount
                except Exception:  # created meanwhile by another replica: read it again
                    continue
            except Exception:  # revision moved on: retry
                continue
        raise RuntimeError(f"could not add spend to {key}")
