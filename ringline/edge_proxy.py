"""A local load balancer in front of edge replicas: `ringline up --replicas telephony=2`.

Round-robin over TCP connections, so HTTP webhooks and Media Streams WebSockets pass alike
(one connection stays on the edge it was given). Every `health_every_s` it asks each edge's
`/health`; an edge that does not answer 200 (down, or draining: 503) gets no new connection,
and one that refuses a connection is skipped at once. This is what Twilio's traffic meets on
Kubernetes behind a Service: a drained or dead edge's calls reconnect through the action URL to
an edge that is up.

    python -m ringline.edge_proxy --listen 127.0.0.1:8080 --edge 127.0.0.1:9001 --edge 127.0.0.1:9002
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal

log = logging.getLogger("ringline.edge_proxy")

Address = tuple[str, int]


def parse_address(text: str) -> Address:
    host, _, port = text.rpartition(":")
    return host or "127.0.0.1", int(port)


async def is_ready(edge: Address, timeout: float = 1.0) -> bool:
    """`GET /health` answers 200 (a draining edge answers 503)."""
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(*edge)
            try:
                writer.write(b"GET /health HTTP/1.1\r\nHost: edge\r\nConnection: close\r\n\r\n")
                await writer.drain()
                status = await reader.readline()
            finally:
                writer.close()
        parts = status.split()
        return len(parts) >= 2 and parts[1] == b"200"
    except (OSError, TimeoutError):
        return False


class EdgeProxy:
    def __init__(self, edges: list[Address], health_every_s: float = 0.2, connect_timeout_s: float = 1.0) -> None:
        self.edges = edges
        self.health_every_s = health_every_s
        self.connect_timeout_s = connect_timeout_s
        self.ready: dict[Address, bool] = dict.fromkeys(edges, True)
        self._next = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._health: asyncio.Task[None] | None = None
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> None:
        await self._check_all()
        self._health = asyncio.create_task(self._health_loop(), name="proxy:health")
        self._server = await asyncio.start_server(self._accept, host, port)
        log.info("edge proxy on %s:%d -> %s", host, port, ", ".join(f"{h}:{p}" for h, p in self.edges))

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in [*self._tasks, *([self._health] if self._health else [])]:
            task.cancel()
        await asyncio.gather(*self._tasks, *([self._health] if self._health else []), return_exceptions=True)

    async def _check_all(self) -> None:
        results = await asyncio.gather(*(is_ready(edge) for edge in self.edges))
        for edge, ok in zip(self.edges, results, strict=True):
            if self.ready[edge] != ok:
                log.info("edge %s:%d is %s", *edge, "ready" if ok else "not ready (down or draining)")
            self.ready[edge] = ok

    async def _health_loop(self) -> None:
        while True:
            await asyncio.sleep(self.health_every_s)
            await self._check_all()

    def order(self) -> list[Address]:
        """The edges to try for the next connection: ready ones round-robin, then the others."""
        start = self._next % len(self.edges)
        self._next += 1
        rotated = self.edges[start:] + self.edges[:start]
        return [e for e in rotated if self.ready[e]] + [e for e in rotated if not self.ready[e]]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await self._serve(reader, writer)
        finally:
            if task is not None:
                self._tasks.discard(task)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for edge in self.order():
            try:
                async with asyncio.timeout(self.connect_timeout_s):
                    up_reader, up_writer = await asyncio.open_connection(*edge)
            except (OSError, TimeoutError):
                self.ready[edge] = False
                continue
            await self._pipe(reader, writer, up_reader, up_writer)
            return
        log.warning("no edge is up: refusing a connection")
        writer.close()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    up_reader: asyncio.StreamReader, up_writer: asyncio.StreamWriter) -> None:
        async def copy(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()

        tasks = [asyncio.create_task(copy(reader, up_writer)), asyncio.create_task(copy(up_reader, writer))]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)  # one side gone: end both
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for w in (up_writer, writer):
                with contextlib.suppress(OSError):
                    w.close()


async def _main(listen: Address, edges: list[Address]) -> None:
    proxy = EdgeProxy(edges)
    await proxy.start(*listen)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await proxy.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ringline.edge_proxy", description=__doc__.split("\n")[0])
    parser.add_argument("--listen", required=True, help="host:port the public URL points at")
    parser.add_argument("--edge", action="append", required=True, help="host:port of one edge replica (repeat)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(_main(parse_address(args.listen), [parse_address(e) for e in args.edge]))


if __name__ == "__main__":
    main()
