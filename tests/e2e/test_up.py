"""`ringline up`: everything starts, answers on /health, and Ctrl-C leaves no process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from ringline.stack import SERVICES, free_port

pytestmark = pytest.mark.e2e


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            child = int(stat.parent.name)
            found |= {child} | _children(child)
    return found


def test_up_starts_everything_and_ctrl_c_leaves_no_orphans(tmp_path: Path) -> None:
    ports = {name: free_port() for name in SERVICES}
    env = {**os.environ, **{f"RINGLINE_{n.upper()}_PORT": str(p) for n, p in ports.items()}}
    env.pop("NATS_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "ringline.cli", "up", "--data-dir", str(tmp_path), "--nats-port", str(free_port())],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        deadline = time.monotonic() + 300
        lines = []
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if "Ringline is up" in line or not line:
                break
        assert any("Ringline is up" in line for line in lines), lines
        assert f"http://127.0.0.1:{ports['telephony']}" in "".join(lines)
        for name, port in ports.items():
            assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200, name
        children = _children(proc.pid)
        assert len(children) >= len(SERVICES) + 1  # five services and nats-server

        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0
        time.sleep(0.5)
        alive = [pid for pid in children if Path(f"/proc/{pid}").exists()
                 and Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"]
        assert alive == []
    finally:
        if proc.poll() is None:
            proc.kill()
