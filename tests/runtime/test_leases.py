"""Call ownership with a real nats-server and real replica processes (tests/runtime/lease_host.py):
one owner per call, takeover after `kill -9` from the last checkpoint, drain hands calls over,
a replica that starts late still claims, a full replica leaves calls to others."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import nats
import pytest

from ringline.contracts import subjects
from ringline.contracts.codec import CONTENT_TYPE, pack, unpack
from ringline.contracts.messages import CallEnd, CallStart
from ringline.contracts.runtime import CallAnnouncer, create_broker
from ringline.contracts.runtime.settings import ServiceSettings

pytestmark = pytest.mark.integration

HOST = Path(__file__).with_name("lease_host.py")


class Replica:
    def __init__(self, url: str, name: str, max_calls: int = 20) -> None:
        self.name = name
        self.proc = subprocess.Popen([sys.executable, str(HOST), url, name, str(max_calls)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if line.strip() != "ready":  # stderr is read only then: it stays open while the replica runs
            stderr = self.proc.stderr.read() if self.proc.stderr else ""
            raise AssertionError(f"replica {name} did not start: {stderr}")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(5)

    def terminate(self) -> None:
        self.proc.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


class Calls:
    """The edge's side: announce calls, end them, and watch what the replicas publish."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.events: list[tuple[float, str, dict[str, Any]]] = []

    async def __aenter__(self) -> Calls:
        self.broker = create_broker(ServiceSettings(nats_url=self.url), "test-edge")
        await self.broker.start()
        self.announcer = CallAnnouncer(self.broker)
        self.nc = await nats.connect(self.url)

        async def on_event(msg: Any) -> None:
            body = unpack(msg.data)
            self.events.append((time.monotonic(), msg.subject.split(".")[1], {"name": body["name"], **body["data"]}))

        await self.nc.subscribe(subjects.EVENT_WILDCARD, cb=on_event)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.nc.close()
        await self.broker.stop()

    async def start(self, call_id: str) -> None:
        call = CallStart(call_id=call_id, agent_id="default", caller="+15550100001")
        await self.announcer.announce(call, {})
        await self.nc.publish(subjects.CALLS_START, pack(call), headers={"content-type": CONTENT_TYPE})

    async def end(self, call_id: str) -> None:
        end = CallEnd(call_id=call_id, reason="caller hung up")
        await self.announcer.ended(end)
        await self.nc.publish(subjects.CALLS_END, pack(end), headers={"content-type": CONTENT_TYPE})

    def ticks(self, call_id: str, since: float = 0.0) -> list[tuple[float, dict[str, Any]]]:
        return [(t, d) for t, c, d in self.events if c == call_id and d["name"] == "probe.tick" and t >= since]

    def named(self, call_id: str, name: str) -> list[dict[str, Any]]:
        return [d for _, c, d in self.events if c == call_id and d["name"] == name]

    async def until(self, check: Any, timeout: float = 10.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = check()
            if found:
                return found
            await asyncio.sleep(0.02)
        raise AssertionError("timed out")


@pytest.fixture
def replicas(nats_server: Any):
    started: list[Replica] = []

    def start(name: str, max_calls: int = 20) -> Replica:
        replica = Replica(nats_server.url, name, max_calls)
        started.append(replica)
        return replica

    yield start
    for replica in started:
        replica.stop()


async def test_one_owner_then_a_takeover_after_kill_9(nats_server: Any, replicas: Any) -> None:
    a, b = replicas("probe-a"), replicas("probe-b")
    by_name = {a.name: a, b.name: b}
    async with Calls(nats_server.url) as calls:
        await calls.start("c1")
        await calls.until(lambda: len(calls.ticks("c1")) >= 10)
        owners = {d["replica"] for _, d in calls.ticks("c1")}
        assert len(owners) == 1, f"two replicas served one call: {owners}"
        owner = owners.pop()
        other = ({a.name, b.name} - {owner}).pop()

        killed_at = time.monotonic()
        last_count = calls.ticks("c1")[-1][1]["count"]
        by_name[owner].kill()
        first = await calls.until(lambda: [x for x in calls.ticks("c1", killed_at) if x[1]["replica"] == other])
        gap = first[0][0] - killed_at
        print(f"takeover gap after kill -9: {gap:.2f} s")
        assert gap < 6.0
        assert first[0][1]["taken_over"] is True
        # The count goes on from the last checkpoint (written every 0.5 s), not from zero.
        assert last_count - 10 <= first[0][1]["count"] <= last_count + 2
        takeover = await calls.until(lambda: calls.named("c1", "stage.takeover"))
        assert takeover[0]["previous"] == owner and takeover[0]["replica"] == other
        # ...and only the survivor serves it from then on.
        await asyncio.sleep(0.5)
        assert {d["replica"] for _, d in calls.ticks("c1", killed_at)} == {other}


async def test_sigterm_serves_until_the_deadline_then_hands_over(nats_server: Any, replicas: Any) -> None:
    a, b = replicas("probe-a"), replicas("probe-b")
    by_name = {a.name: a, b.name: b}
    async with Calls(nats_server.url) as calls:
        await calls.start("c2")
        await calls.until(lambda: len(calls.ticks("c2")) >= 3)
        owner = calls.ticks("c2")[-1][1]["replica"]
        other = ({a.name, b.name} - {owner}).pop()
        term_at = time.monotonic()
        by_name[owner].terminate()
        released = await calls.until(lambda: calls.named("c2", "stage.released"))
        assert released[0]["replica"] == owner
        served_on = [t for t, d in calls.ticks("c2", term_at) if d["replica"] == owner]
        assert served_on and served_on[-1] - term_at >= 0.8, "the draining replica stopped serving before its deadline"
        first = await calls.until(lambda: [x for x in calls.ticks("c2", term_at) if x[1]["replica"] == other])
        handover_gap = first[0][0] - served_on[-1]
        print(f"drain hand-over gap: {handover_gap:.2f} s")
        assert handover_gap < 2.0
        assert not calls.named("c2", "probe.closed"), "a drained replica ended the call instead of handing it over"


async def test_a_replica_that_starts_after_the_call_still_claims_it(nats_server: Any, replicas: Any) -> None:
    async with Calls(nats_server.url) as calls:
        await calls.start("c3")
        await asyncio.sleep(1.0)  # nobody serves the stage yet
        replicas("probe-late")
        ticks = await calls.until(lambda: calls.ticks("c3"), timeout=10)
        assert ticks[0][1]["count"] == 1 and ticks[0][1]["taken_over"] is False


async def test_a_full_replica_leaves_the_call_to_another_and_takes_it_when_free(nats_server: Any,
                                                                                replicas: Any) -> None:
    replicas("probe-a", max_calls=1)
    replicas("probe-b", max_calls=1)
    async with Calls(nats_server.url) as calls:
        await calls.start("d1")
        await calls.until(lambda: calls.ticks("d1"))
        await calls.start("d2")
        await calls.until(lambda: calls.ticks("d2"))
        assert calls.ticks("d1")[-1][1]["replica"] != calls.ticks("d2")[-1][1]["replica"]
        await calls.start("d3")
        refused = await calls.until(lambda: calls.named("d3", "call.refused"))
        assert "max_calls" in refused[0]["reason"]
        await asyncio.sleep(0.5)
        assert not calls.ticks("d3")
        freed = calls.ticks("d1")[-1][1]["replica"]
        await calls.end("d1")
        ticks = await calls.until(lambda: calls.ticks("d3"), timeout=5)
        assert ticks[0][1]["replica"] == freed
        assert calls.named("d1", "probe.closed")[0]["reason"] == "caller hung up"


async def test_a_nats_restart_mid_call_leaves_the_call_served_by_one_replica(nats_server: Any, replicas: Any) -> None:
    replicas("probe-a"), replicas("probe-b")
    async with Calls(nats_server.url) as calls:
        await calls.start("n1")
        await calls.until(lambda: len(calls.ticks("n1")) >= 5)
        nats_server.stop()
        await asyncio.sleep(3.0)  # longer than a lease lives
        nats_server.start()
        back = time.monotonic()
        await calls.until(lambda: len(calls.ticks("n1", back)) >= 10, timeout=20)
        await asyncio.sleep(1.0)
        recent = [d for t, d in calls.ticks("n1", time.monotonic() - 0.8)]
        assert len({d["replica"] for d in recent}) == 1, "two replicas serve the call after the outage"
        assert recent[-1]["count"] > 5  # it went on, from a checkpoint, not from the start


async def test_a_call_closed_to_a_stage_is_not_claimed_by_a_replica_that_frees_up(nats_server: Any,
                                                                                  replicas: Any) -> None:
    # The edge took a message for a call no replica had room for: one that frees up must not join it.
    replicas("probe-a", max_calls=1)
    async with Calls(nats_server.url) as calls:
        await calls.start("e1")
        await calls.until(lambda: calls.ticks("e1"))
        await calls.start("e2")
        await calls.until(lambda: calls.named("e2", "call.refused"))
        await calls.announcer.close_to("e2", ["probe"])
        await calls.end("e1")
        await calls.until(lambda: calls.named("e1", "probe.closed"))
        await asyncio.sleep(2.0)  # several scans of the registry
        assert not calls.ticks("e2")
        await calls.start("e3")  # the replica is free: another call is claimed as usual
        await calls.until(lambda: calls.ticks("e3"), timeout=5)


async def test_a_keep_alive_that_read_the_entry_before_the_call_ended_does_not_bring_it_back(nats_server: Any) -> None:
    # The edge's keep-alive reads the entry; the call ends (another writer marks it ended) before
    # the keep-alive writes. A plain put would make the ended call live again for the registry's
    # TTL, and every stage would claim it back; the compare-and-swap rewrite sees the end.
    async with Calls(nats_server.url) as calls:
        await calls.start("k1")
        await calls.announcer.close_to("k1", ["probe"])
        registry = await calls.announcer.registry()
        assert registry is not None
        other = CallAnnouncer(calls.broker)
        real_get = registry.kv.get
        interleaved = False

        async def get_then_end(key: str) -> Any:
            nonlocal interleaved
            entry = await real_get(key)
            if not interleaved:
                interleaved = True
                await other.ended(CallEnd(call_id="k1", reason="caller hung up"))
            return entry

        registry.kv.get = get_then_end  # type: ignore[method-assign]
        renewed = await registry.change("k1", lambda live: live.model_copy(update={"updated_at": time.time()}))
        registry.kv.get = real_get  # type: ignore[method-assign]

        assert interleaved
        assert renewed is None, "the keep-alive rewrote an ended call"
        live = await registry.get("k1")
        assert live is not None and live.ended and live.end_reason == "caller hung up"
        assert live.closed_to == ["probe"], "the end lost the stages the call was closed to"
