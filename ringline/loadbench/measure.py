"""What the bench reads off the machine: CPU and memory of processes, NATS message counts."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

_TICK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass
class ProcSample:
    cpu_s: float
    rss_mb: float


def proc_sample(pid: int) -> ProcSample:
    """CPU seconds (user + system) and resident memory of one process, from /proc."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open(f"/proc/{pid}/statm") as f:
            rss_pages = int(f.read().split()[1])
    except (OSError, IndexError, ValueError):
        return ProcSample(0.0, 0.0)
    return ProcSample((int(fields[11]) + int(fields[12])) / _TICK, rss_pages * _PAGE / 2**20)


def nats_messages(monitor_url: str) -> int:
    """Messages the nats-server has received and delivered so far (`/varz`)."""
    try:
        varz = httpx.get(f"{monitor_url}/varz", timeout=5.0).json()
    except (httpx.HTTPError, ValueError):
        return 0
    return int(varz.get("in_msgs", 0)) + int(varz.get("out_msgs", 0))


def pct(values: Sequence[float], q: float) -> float:
    """The q-quantile (nearest rank); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]
