"""A stage replica in its own process for the lease tests: claims calls of the stage `probe`
and, while it owns one, counts on the call's event subject. Its snapshot is the count, so a
replica that takes the call over goes on from where the last one checkpointed.

    python lease_host.py NATS_URL REPLICA_ID [MAX_CALLS]
"""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Any

from ringline.contracts import subjects
from ringline.contracts.messages import CallEvent
from ringline.contracts.runtime import CallBus, CallRouter, CallSession, ServiceSettings, create_broker

TICK_S = 0.1


class Counter(CallSession):
    def __init__(self, call: Any, bus: CallBus, replica: str) -> None:
        super().__init__(call, bus)
        self.replica = replica
        self.count = 0

    def snapshot(self) -> dict[str, Any]:
        return {"count": self.count}

    def restore(self, state: dict[str, Any]) -> None:
        self.count = int(state.get("count", 0))

    async def start(self) -> None:
        self.bus.spawn(self._tick(), "tick")

    async def _tick(self) -> None:
        while True:
            self.count += 1
            await self.bus.publish(CallEvent(call_id=self.call_id, name="probe.tick",
                                             data={"replica": self.replica, "count": self.count,
                                                   "taken_over": self.taken_over}),
                                   subjects.event(self.call_id))
            await asyncio.sleep(TICK_S)

    async def close(self, reason: str) -> None:
        await self.bus.publish(CallEvent(call_id=self.call_id, name="probe.closed",
                                         data={"replica": self.replica, "reason": reason}),
                               subjects.event(self.call_id))


async def main(url: str, replica: str, max_calls: int) -> None:
    settings = ServiceSettings(nats_url=url, replica_id=replica, drain_timeout_s=1.0, max_calls=max_calls)
    broker = create_broker(settings, "probe")
    router = CallRouter(broker, "probe", lambda call, bus: Counter(call, bus, replica), settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await broker.start()
    await router.start()
    print("ready", flush=True)
    await stop.wait()
    await router.drain()
    await broker.stop()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 20))
