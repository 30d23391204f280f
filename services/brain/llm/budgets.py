"""First-token budgets that follow what each link of a chain really does.

A fixed budget is wrong both ways: a local model that takes 0.6 s on a busy box is abandoned at a
fixed 0.4 s although it was about to answer, and a Claude that answers in 0.3 s keeps the caller
waiting a whole second before anything else is tried when it stalls. `FirstTokenTimes` keeps the
last first-token times of each link (per process, every call) and gives each a budget of
`factor` x their 90th percentile, within [`floor_s`, `ceiling` x the configured budget]. Until a
link has `min_samples` times its configured budget is the prior.

A budget here says when the chain stops waiting *only* for that link and starts the next one
beside it (the slow link keeps going; whichever answers first is heard), not when it gives up.
"""

from __future__ import annotations

import math
from collections import deque


class FirstTokenTimes:
    def __init__(self, window: int = 20, factor: float = 2.0, floor_s: float = 0.15, ceiling: float = 3.0,
                 min_samples: int = 3) -> None:
        self.window = window
        self.factor = factor
        self.floor_s = floor_s
        self.ceiling = ceiling
        self.min_samples = min_samples
        self._times: dict[str, deque[float]] = {}

    def record(self, link: str, seconds: float) -> None:
        """A link's first token came `seconds` after it was asked."""
        if seconds >= 0:
            self._times.setdefault(link, deque(maxlen=self.window)).append(seconds)

    def p90(self, link: str) -> float | None:
        times = sorted(self._times.get(link, ()))
        if len(times) < self.min_samples:
            return None
        return times[max(0, math.ceil(0.9 * len(times)) - 1)]

    def budget(self, link: str, configured_s: float) -> float:
        """How long to wait for `link` alone before starting the next link beside it."""
        p90 = self.p90(link)
        if p90 is None:
            return configured_s
        return min(max(self.floor_s, self.factor * p90), self.ceiling * configured_s)
