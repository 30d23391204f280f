"""How loaded a replica is, so it claims a call only while it can still serve it well.

A stage replica is full when it owns `max_calls` calls, or when its event loop runs late: audio
frames are paced every 20 ms, so a loop that wakes up hundreds of milliseconds late is already
making its callers wait. `LoadGauge` measures that lag itself with a small task that sleeps a
fixed interval and notes how late it woke; the claimer asks `can_claim(active)` before taking a
call and orders competing claims by `load(active)`.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable

from .settings import ServiceSettings

log = logging.getLogger("ringline.load")

_INTERVAL_S = 0.05  # how often the lag probe wakes up
_HALF_LIFE_S = 1.0  # a single late wake-up (a GC pause) fades within a couple of seconds


class LoadGauge:
    """Capacity of one replica: concurrent calls and event-loop lag.

    `on_lag` (optional) receives every lag sample in seconds; the metrics reporter uses it.
    """

    def __init__(
        self,
        max_calls: int,
        max_loop_lag_s: float,
        on_lag: Callable[[float], None] | None = None,
        interval_s: float = _INTERVAL_S,
    ) -> None:
        if max_calls < 1:
            raise ValueError("max_calls must be at least 1")
        if max_loop_lag_s <= 0:
            raise ValueError("max_loop_lag_s must be positive")
        self.max_calls = max_calls
        self.max_loop_lag_s = max_loop_lag_s
        self.interval_s = interval_s
        self._on_lag = on_lag
        self._lag_s = 0.0
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(cls, settings: ServiceSettings, on_lag: Callable[[float], None] | None = None) -> LoadGauge:
        return cls(settings.max_calls, settings.max_loop_lag_ms / 1000, on_lag=on_lag)

    @property
    def lag_s(self) -> float:
        """The event loop's smoothed lag (seconds late per wake-up), 0 until measured."""
        return self._lag_s

    def start(self) -> None:
        """Start measuring lag on the running loop (idempotent)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._probe(), name="loop-lag")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass

    def note_lag(self, sample_s: float) -> None:
        """Fold one lag sample into the smoothed value (the probe calls this every interval)."""
        sample_s = max(0.0, sample_s)
        # Weighted by the time the sample covers: a loop that runs late keeps the gauge up, one
        # stall (a first call's imports, a GC pause) only nudges it.
        alpha = 1 - math.exp(-(self.interval_s + sample_s) * math.log(2) / _HALF_LIFE_S)
        self._lag_s += alpha * (sample_s - self._lag_s)
        if self._on_lag is not None:
            self._on_lag(sample_s)

    async def _probe(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(self.interval_s)
            self.note_lag(loop.time() - before - self.interval_s)

    def can_claim(self, active_calls: int) -> tuple[bool, str]:
        """Whether one more call fits, and if not, why (for the refusal event and the log)."""
        if active_calls >= self.max_calls:
            return False, f"at max_calls {self.max_calls}"
        if self._lag_s > self.max_loop_lag_s:
            return False, f"loop lag {self._lag_s:.2f} s"
        return True, ""

    def load(self, active_calls: int) -> float:
        """0 when idle, 1 at either limit, above 1 past it: claims go to the least loaded first."""
        return max(active_calls / self.max_calls, self._lag_s / self.max_loop_lag_s)
