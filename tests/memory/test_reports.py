"""Call reports: after a call the memory service POSTs a signed JSON report to each webhook,
retries on the 1/4/16 s schedule, and marks each delivery in the call record."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import time
from pathlib import Path

import httpx
import pytest

from ringline.contracts import events, subjects
from ringline.contracts.messages import CallEnd, CallEvent, CallStart, ReplyChunk, Transcript, TurnTiming
from ringline.contracts.messages.records import ReportDelivery
from ringline.records import get_call
from ringline.services.memory.reports import ReportSender, ReportTarget, verify

from .conftest import claimed, stop

pytestmark = pytest.mark.integration

SECRET = "s3cret-key"


def _agents_file(tmp_path: Path, hook, paths: list[str]) -> Path:
    reports = "".join(f"\n      - url: {hook.url(p)}\n        secret_env: REPORT_KEY" for p in paths)
    path = tmp_path / "agents.yaml"
    path.write_text(f"agents:\n  - id: sales\n    reports:{reports}\n", encoding="utf-8")
    return path


def _check_signature(received) -> dict:
    """What a receiver does: recompute the HMAC over `<timestamp>.<raw body>`."""
    timestamp = received.headers["X-Ringline-Timestamp"]
    expected = hmac.new(SECRET.encode(), timestamp.encode() + b"." + received.body, hashlib.sha256).hexdigest()
    assert received.headers["X-Ringline-Signature"] == f"sha256={expected}"
    assert abs(time.time() - int(timestamp)) < 60
    return json.loads(received.body)


async def _call(client, url: str, call_id: str, summary: bool = True) -> None:
    t0 = time.time()
    await client.publish(CallStart(call_id=call_id, agent_id="sales", caller="+15550001111"), subjects.CALLS_START)
    await claimed(url, call_id)
    await client.publish(Transcript(call_id=call_id, utterance_id="u1", text="Do you open on Sunday?",
                                    speech_started_at=t0, speech_ended_at=t0 + 1, emitted_at=t0 + 1.3),
                         subjects.transcript(call_id))
    timing = TurnTiming(speech_ended_at=t0 + 1, transcript_at=t0 + 1.3, first_chunk_at=t0 + 1.5,
                        first_audio_at=t0 + 1.6, edge_sent_at=t0 + 1.65)
    await client.publish(ReplyChunk(call_id=call_id, turn_id="t1", seq=0, text="No, we're closed on Sundays.",
                                    final=True, in_reply_to="u1", timing=timing), subjects.reply(call_id))
    await client.publish(CallEvent(call_id=call_id, name=events.TURN_FIRST_AUDIO, turn_id="t1", timing=timing),
                         subjects.event(call_id))
    await client.publish(CallEnd(call_id=call_id, reason="caller hung up"), subjects.CALLS_END)
    if summary:  # the brain summarises once the call is over
        await client.publish(CallEvent(call_id=call_id, name=events.CALL_SUMMARY,
                                       data={"summary": "Asked about Sunday opening.", "facts": ["closed Sundays"]}),
                             subjects.event(call_id))


async def _record_when(url: str, call_id: str, done, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        record = await get_call(url, call_id)
        if record is not None and done(record):
            return record
        assert time.monotonic() < deadline, f"record never got there: {record}"
        await asyncio.sleep(0.1)


async def test_report_is_signed_holds_the_call_and_waits_for_the_summary(nats_server, memory, client, webhook,
                                                                        tmp_path) -> None:
    agents = _agents_file(tmp_path, webhook, ["crm"])
    await memory(agents_file=agents, summary_wait_s=10.0, env={"REPORT_KEY": SECRET})
    await _call(client, nats_server.url, "CArep1")
    [received] = await webhook.wait_for("crm", 1)
    report = _check_signature(received)

    assert received.headers["X-Ringline-Event"] == "call.report"
    assert report["call_id"] == "CArep1" and report["agent_id"] == "sales" and report["outcome"] == "completed"
    assert report["end_reason"] == "caller hung up"
    assert report["summary"] == "Asked about Sunday opening." and report["facts"] == ["closed Sundays"]
    assert [(t["speaker"], t["text"]) for t in report["transcript"]] == [
        ("caller", "Do you open on Sunday?"), ("agent", "No, we're closed on Sundays.")]
    assert report["transcript"][1]["latency_ms"]["total"] == 650.0
    assert report["voicemail"] is None and "cost" in report

    record = await _record_when(nats_server.url, "CArep1", lambda r: r.reports and r.reports[0].status != "pending")
    assert record.summary is not None and record.summary.text == "Asked about Sunday opening."
    assert record.reports == [ReportDelivery(url=webhook.url("crm"), status="delivered", attempts=1,
                                             status_code=200, signed=True,
                                             delivered_at=record.reports[0].delivered_at)]


async def test_without_a_summary_the_report_goes_out_after_the_bounded_wait(nats_server, memory, client, webhook,
                                                                           tmp_path) -> None:
    agents = _agents_file(tmp_path, webhook, ["crm"])
    await memory(agents_file=agents, summary_wait_s=1.0, env={"REPORT_KEY": SECRET})
    await _call(client, nats_server.url, "CArep2", summary=False)
    ended = time.monotonic()
    [received] = await webhook.wait_for("crm", 1)
    assert 0.8 <= received.at - ended <= 3.0
    assert _check_signature(received)["summary"] is None


async def test_failing_webhooks_are_retried_on_schedule_then_marked_delivered_or_lost(nats_server, memory, client,
                                                                                     webhook, tmp_path) -> None:
    webhook.statuses = {"flaky": [500, 500, 200], "down": [500]}
    agents = _agents_file(tmp_path, webhook, ["flaky", "down"])
    schedule = (0.25, 1.0, 4.0)  # the 1/4/16 s schedule, four times faster
    await memory(agents_file=agents, report_retry_s=schedule, env={"REPORT_KEY": SECRET})
    await _call(client, nats_server.url, "CArep3", summary=False)

    flaky = await webhook.wait_for("flaky", 3)
    down = await webhook.wait_for("down", 4, timeout=20)
    for got in (flaky, down):
        gaps = [b.at - a.at for a, b in itertools.pairwise(got)]
        assert all(abs(gap - want) < 0.2 + want * 0.1 for gap, want in zip(gaps, schedule, strict=False)), gaps
        assert len({r.headers["X-Ringline-Delivery"] for r in got}) == 1  # one delivery, several attempts
        for received in got:
            _check_signature(received)

    record = await _record_when(nats_server.url, "CArep3",
                                lambda r: all(d.status != "pending" for d in r.reports) and r.reports)
    by_url = {d.url: d for d in record.reports}
    assert by_url[webhook.url("flaky")].status == "delivered" and by_url[webhook.url("flaky")].attempts == 3
    lost = by_url[webhook.url("down")]
    assert lost.status == "lost" and lost.attempts == 4 and lost.last_error == "HTTP 500"


async def test_real_schedule_retries_after_one_and_four_seconds(webhook) -> None:
    webhook.statuses = {"flaky": [500, 500, 200]}
    async with httpx.AsyncClient() as http:
        sender = ReportSender(http)  # the default 1/4/16 s schedule, real time
        delivery = ReportDelivery(url=webhook.url("flaky"))
        await sender.deliver(ReportTarget(delivery.url, SECRET), b'{"call_id":"CA"}', delivery)
    got = webhook.received["flaky"]
    gaps = [b.at - a.at for a, b in itertools.pairwise(got)]
    assert len(got) == 3 and abs(gaps[0] - 1.0) < 0.3 and abs(gaps[1] - 4.0) < 0.3, gaps
    assert delivery.status == "delivered" and delivery.attempts == 3


async def test_an_unreachable_webhook_is_lost_with_the_transport_error() -> None:
    waits: list[float] = []

    async def no_sleep(seconds: float) -> None:
        waits.append(seconds)

    async with httpx.AsyncClient() as http:
        sender = ReportSender(http, sleep=no_sleep)
        delivery = ReportDelivery(url="http://127.0.0.1:9/report")
        await sender.deliver(ReportTarget(delivery.url, None), b"{}", delivery)
    assert waits == [1.0, 4.0, 16.0]
    assert delivery.status == "lost" and delivery.attempts == 4 and "ConnectError" in delivery.last_error
    assert not delivery.signed


def test_signature_check_refuses_a_changed_body_and_an_old_timestamp() -> None:
    body, now = b'{"call_id":"CA1"}', time.time()
    stamp = str(int(now))
    signature = "sha256=" + hmac.new(SECRET.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    assert verify(SECRET, stamp, body, signature, now=now)
    assert not verify(SECRET, stamp, body + b" ", signature, now=now)
    assert not verify(SECRET, stamp, body, signature, now=now + 3600)  # a replay an hour later


async def test_shutdown_finishes_deliveries_in_flight_and_marks_the_rest_lost(nats_server, memory, client, webhook,
                                                                             tmp_path) -> None:
    webhook.statuses = {"down": [500]}
    agents = _agents_file(tmp_path, webhook, ["down"])
    service = await memory(agents_file=agents, summary_wait_s=30.0, drain_timeout_s=0.5,
                           env={"REPORT_KEY": SECRET})
    await _call(client, nats_server.url, "CArep4", summary=False)
    await _record_when(nats_server.url, "CArep4", lambda r: r.ended_at)
    started = time.monotonic()
    await stop(service)  # SIGTERM: no more waiting for the summary; retries get drain_timeout_s
    assert time.monotonic() - started < 5
    await memory()  # another replica reads the record
    record = await get_call(nats_server.url, "CArep4")
    assert record is not None and len(record.reports) == 1
    assert record.reports[0].status == "lost" and record.reports[0].attempts >= 1
    assert "shut down" in record.reports[0].last_error


async def test_a_voicemail_is_reported_at_once_with_the_message(nats_server, memory, client, webhook,
                                                                tmp_path) -> None:
    agents = _agents_file(tmp_path, webhook, ["crm"])
    await memory(agents_file=agents, summary_wait_s=30.0, env={"REPORT_KEY": SECRET})
    call_id = "CArepvm"
    await client.publish(CallStart(call_id=call_id, agent_id="sales", caller="+15550003333"), subjects.CALLS_START)
    await claimed(nats_server.url, call_id)
    await client.publish(CallEvent(call_id=call_id, name=events.VOICEMAIL_STARTED, data={"reason": "busy"}),
                         subjects.event(call_id))
    await client.publish(CallEvent(call_id=call_id, name=events.VOICEMAIL_MESSAGE,
                                   data={"text": "Call me back.", "duration_s": 2.0, "reason": "busy"}),
                         subjects.event(call_id))
    await client.publish(CallEnd(call_id=call_id, reason="agent hung up"), subjects.CALLS_END)
    ended = time.monotonic()
    [received] = await webhook.wait_for("crm", 1)
    assert received.at - ended < 3.0  # no summary is coming for a voicemail: no 30 s wait
    report = _check_signature(received)
    assert report["outcome"] == "voicemail"
    assert report["voicemail"]["text"] == "Call me back." and report["voicemail"]["reason"] == "busy"


async def test_the_summarys_own_usage_is_added_to_the_days_spend(nats_server, memory, client) -> None:
    from ringline.contracts.codec import unpack
    from ringline.contracts.messages import SpendReply, SpendRequest

    await memory(summary_wait_s=10.0)
    usage = {"llm_model": "claude-haiku-4-5", "input_tokens": 100_000, "output_tokens": 0}
    await client.publish(CallStart(call_id="CAcost", agent_id="sales"), subjects.CALLS_START)
    await claimed(nats_server.url, "CAcost")
    await client.publish(CallEvent(call_id="CAcost", name=events.TURN_LLM, turn_id="t1", data={"usage": usage}),
                         subjects.event("CAcost"))
    await client.publish(CallEnd(call_id="CAcost"), subjects.CALLS_END)
    await client.publish(CallEvent(call_id="CAcost", name=events.CALL_SUMMARY, turn_id="t1",
                                   data={"summary": "A question.", "facts": [], "usage": usage}),
                         subjects.event("CAcost"))
    record = await _record_when(nats_server.url, "CAcost", lambda r: r.summary is not None)
    assert record.cost["total"] == 0.2
    for _ in range(50):
        reply = await client.request(SpendRequest(agent_id="sales"), subjects.MEMORY_SPEND_GET, timeout=5)
        if SpendReply.model_validate(unpack(reply.body)).spent == 0.2:
            break
        await asyncio.sleep(0.1)
    assert SpendReply.model_validate(unpack(reply.body)).spent == 0.2  # the call's turn and its summary


async def test_a_summary_published_as_the_call_ends_is_never_lost_or_counted_twice(nats_server, memory,
                                                                                  client) -> None:
    """The brain's rule summary goes out the moment the call ends, while the memory service is
    closing the call's session (about 20 ms here): the session's subscription carries on into the
    after-call, so the summary lands once whichever side of the hand-over it falls on."""
    await memory(summary_wait_s=5.0)
    usage = {"llm_model": "claude-haiku-4-5", "input_tokens": 10_000, "output_tokens": 0}
    calls = [f"CAedge{i}" for i in range(40)]
    for call_id in calls:
        await client.publish(CallStart(call_id=call_id, agent_id="sales"), subjects.CALLS_START)
    for call_id in calls:
        await claimed(nats_server.url, call_id)
    for index, call_id in enumerate(calls):  # one at a time, the summary 0-40 ms after the end
        await client.publish(CallEnd(call_id=call_id), subjects.CALLS_END)
        await asyncio.sleep(index * 0.001)
        await client.publish(CallEvent(call_id=call_id, name=events.CALL_SUMMARY, turn_id="t1",
                                       data={"summary": f"Call {index}.", "facts": [], "usage": usage}),
                             subjects.event(call_id))
        await asyncio.sleep(0.05)
    for index, call_id in enumerate(calls):
        # Within the service's 5 s wait: a lost summary would never reach the record.
        record = await _record_when(nats_server.url, call_id, lambda r: r.summary is not None, timeout=4.0)
        assert record.summary.text == f"Call {index}."
        assert [e["name"] for e in record.events].count(events.CALL_SUMMARY) == 1, record.events
        assert record.cost["total"] == 0.01  # charged once
