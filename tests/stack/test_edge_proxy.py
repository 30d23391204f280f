"""The local load balancer in front of the edges (`ringline up --replicas telephony=2`): it sends
new connections round-robin to edges whose /health answers 200 and never to one that is down or
draining. Real sockets: two tiny HTTP servers stand where the edges would."""

from __future__ import annotations

import asyncio

import pytest

from ringline.cli import parse_replicas
from ringline.edge_proxy import EdgeProxy
from ringline.stack import free_port

pytestmark = pytest.mark.unit


async def tiny_edge(name: str, health: dict[str, int]) -> tuple[asyncio.Server, int]:
    """Answers /health with `health[name]` and any other request with its own name."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line = await reader.readline()
        status = health[name] if b"/health" in line else 200
        body = name.encode()
        writer.write(b"HTTP/1.1 %d X\r\ncontent-length: %d\r\nconnection: close\r\n\r\n%s" % (status, len(body), body))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def ask(port: int) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    data = await reader.read()
    writer.close()
    return data.rsplit(b"\r\n\r\n", 1)[-1].decode()


async def test_connections_go_round_robin_to_ready_edges_only() -> None:
    health = {"a": 200, "b": 200}
    (server_a, port_a), (server_b, port_b) = await tiny_edge("a", health), await tiny_edge("b", health)
    proxy = EdgeProxy([("127.0.0.1", port_a), ("127.0.0.1", port_b)], health_every_s=0.05)
    port = free_port()
    await proxy.start("127.0.0.1", port)
    try:
        assert sorted([await ask(port) for _ in range(4)]) == ["a", "a", "b", "b"]
        health["a"] = 503  # draining
        await asyncio.sleep(0.2)
        assert {await ask(port) for _ in range(4)} == {"b"}
        server_b.close()  # down: its port refuses
        await server_b.wait_closed()
        health["a"] = 200
        await asyncio.sleep(0.2)
        assert {await ask(port) for _ in range(3)} == {"a"}
    finally:
        await proxy.close()
        server_a.close()


def test_replicas_are_named_per_service() -> None:
    assert parse_replicas("stt=2, brain=2,telephony=3") == {"stt": 2, "brain": 2, "telephony": 3}
    assert parse_replicas(None) == {}
    for bad in ("speech=2", "stt=0", "stt", "stt=two"):
        with pytest.raises(ValueError, match="--replicas"):
            parse_replicas(bad)
