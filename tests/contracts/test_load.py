"""LoadGauge: a replica refuses a call when it is full or its event loop runs late."""

from __future__ import annotations

import asyncio
import time

import pytest

from ringline.contracts.runtime.load import LoadGauge
from ringline.contracts.runtime.settings import ServiceSettings

pytestmark = pytest.mark.unit


def test_a_replica_below_its_limits_claims() -> None:
    gauge = LoadGauge(max_calls=20, max_loop_lag_s=0.25)
    assert gauge.can_claim(0) == (True, "")
    assert gauge.can_claim(19) == (True, "")
    assert gauge.load(0) == 0.0
    assert gauge.load(10) == pytest.approx(0.5)


def test_a_full_replica_refuses_and_says_why() -> None:
    gauge = LoadGauge(max_calls=20, max_loop_lag_s=0.25)
    assert gauge.can_claim(20) == (False, "at max_calls 20")
    assert gauge.load(20) == pytest.approx(1.0)
    assert gauge.load(30) > 1.0


def test_a_loop_that_keeps_running_late_refuses_and_recovers_once_on_time() -> None:
    gauge = LoadGauge(max_calls=20, max_loop_lag_s=0.25)
    for _ in range(20):  # seven seconds of wake-ups 0.31 s late
        gauge.note_lag(0.31)
    ok, reason = gauge.can_claim(1)
    assert not ok and reason == "loop lag 0.31 s"
    assert gauge.load(1) > 1.0
    for _ in range(100):  # five seconds of on-time wake-ups
        gauge.note_lag(0.0)
    assert gauge.can_claim(1) == (True, "")


def test_one_stall_among_on_time_wake_ups_does_not_fill_the_replica() -> None:
    gauge = LoadGauge(max_calls=20, max_loop_lag_s=0.25)
    for _ in range(40):
        gauge.note_lag(0.002)
    gauge.note_lag(0.5)  # a first call's imports, a GC pause
    assert gauge.can_claim(1) == (True, "")


async def test_the_probe_measures_a_loop_blocked_by_work() -> None:
    samples: list[float] = []
    gauge = LoadGauge(max_calls=20, max_loop_lag_s=0.25, on_lag=samples.append)
    gauge.start()
    await asyncio.sleep(0.12)
    for _ in range(10):  # handlers that keep blocking the loop
        asyncio.get_running_loop().call_soon(time.sleep, 0.35)
        await asyncio.sleep(0.01)
    await gauge.stop()
    assert max(samples) >= 0.3
    ok, reason = gauge.can_claim(0)
    assert not ok and reason.startswith("loop lag")


def test_limits_come_from_each_stage_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RINGLINE_MAX_CALLS", "7")
    monkeypatch.setenv("RINGLINE_MAX_LOOP_LAG_MS", "120")
    gauge = LoadGauge.from_settings(ServiceSettings())
    assert gauge.max_calls == 7 and gauge.max_loop_lag_s == pytest.approx(0.12)
    assert gauge.can_claim(7) == (False, "at max_calls 7")
