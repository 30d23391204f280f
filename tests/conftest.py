"""Shared fixtures: a real nats-server with JetStream on a free port."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ringline.stack import free_port, nats_server_binary, port_open


def load_doubles() -> None:
    """Register tests/doubles (the vendor protocol doubles) as the package `doubles`, without
    putting the rest of tests/ on the import path."""
    if "doubles" in sys.modules:
        return
    folder = Path(__file__).resolve().parent / "doubles"
    spec = importlib.util.spec_from_file_location("doubles", folder / "__init__.py",
                                                  submodule_search_locations=[str(folder)])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["doubles"] = module
    spec.loader.exec_module(module)


load_doubles()


TIERS = ("unit", "service", "integration", "e2e", "bench")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Give every test exactly one tier, and refuse a run in which a test has none.

    A file states its tier with `pytestmark = pytest.mark.<tier>`; a test (or class, or a
    `pytest.param(..., marks=...)`) that needs another tier marks itself, and the closest tier
    wins. The losing tiers are taken off, so `-m unit` never picks an integration test from a
    unit file. Runs before pytest's own `-m` deselection (tryfirst).
    """
    untiered: list[str] = []
    parents: set[pytest.Node] = set()
    for item in items:
        tier = next((mark.name for mark in item.iter_markers() if mark.name in TIERS), None)
        if tier is None:
            untiered.append(item.nodeid)
            continue
        item.own_markers[:] = [m for m in item.own_markers if m.name not in TIERS]
        item.add_marker(tier)
        parents.update(node for node in item.listchain() if node is not item)
    for node in parents:  # the item now carries its own tier; the file's default would add a second
        node.own_markers[:] = [m for m in node.own_markers if m.name not in TIERS]
    if untiered:
        files = sorted({nodeid.split("::")[0] for nodeid in untiered})
        raise pytest.UsageError(
            f"{len(untiered)} tests have no tier marker ({', '.join(TIERS)}); add e.g. "
            f"`pytestmark = pytest.mark.unit` to: {', '.join(files)}")


class NatsServer:
    def __init__(self, store: Path) -> None:
        self.store = store
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        argv = [nats_server_binary(), "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.store)]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not port_open("127.0.0.1", self.port):
            assert time.monotonic() < deadline, "nats-server did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path / "jetstream")
    server.start()
    yield server
    server.stop()
