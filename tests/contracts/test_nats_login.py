"""A service logs in to NATS as configured: an nkey seed, or a password over TLS checked against
the operator's CA (`create_broker` with `ServiceSettings`, on a real nats-server)."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import nkeys
import pytest

from ringline.contracts.runtime import ServiceSettings, create_broker
from ringline.stack import free_port, nats_server_binary, port_open

pytestmark = pytest.mark.integration


def _server(tmp_path: Path, conf: str) -> Iterator[int]:
    port = free_port()
    (tmp_path / "nats.conf").write_text(f"listen: 127.0.0.1:{port}\n" + conf)
    proc = subprocess.Popen([nats_server_binary(), "-c", str(tmp_path / "nats.conf")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            if port_open("127.0.0.1", port):
                break
            assert proc.poll() is None, "nats-server refused the config"
            subprocess.run(["sleep", "0.05"], check=False)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


async def _connects(settings: ServiceSettings) -> bool:
    """Logged in within 5 s (a service retries a server it cannot verify for ever: that is a no)."""
    broker = create_broker(settings, "stt")
    try:
        async with asyncio.timeout(5.0):
            await broker.connect()
            return await broker.ping(timeout=2.0)
    except Exception:
        return False
    finally:
        await broker.stop()


async def test_a_service_logs_in_with_its_nkey_seed(tmp_path: Path) -> None:
    seed = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)
    public = nkeys.from_seed(bytearray(seed)).public_key.decode()
    other = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER).decode()
    for port in _server(tmp_path, f'authorization {{ users = [ {{nkey: "{public}"}} ] }}\n'):
        url = f"nats://127.0.0.1:{port}"
        assert await _connects(ServiceSettings(nats_url=url, NATS_NKEY_SEED=seed.decode()))
        assert not await _connects(ServiceSettings(nats_url=url, NATS_NKEY_SEED=other))
        assert not await _connects(ServiceSettings(nats_url=url))


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make test certificates")
async def test_a_service_checks_the_servers_certificate_against_the_ca(tmp_path: Path) -> None:
    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=tmp_path, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
            "-keyout", "ca.key", "-out", "ca.crt")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", "server.key",
            "-out", "server.csr")
    (tmp_path / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "2", "-extfile", "san.ext", "-out", "server.crt")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=other-ca",
            "-keyout", "other.key", "-out", "other.crt")
    conf = (f'tls {{ cert_file: "{tmp_path}/server.crt", key_file: "{tmp_path}/server.key" }}\n'
            'authorization { users = [ {user: "stt", password: "pw-stt"} ] }\n')
    for port in _server(tmp_path, conf):
        url = f"nats://127.0.0.1:{port}"
        login = {"NATS_USER": "stt", "NATS_PASSWORD": "pw-stt"}
        assert await _connects(ServiceSettings(nats_url=url, NATS_TLS_CA=str(tmp_path / "ca.crt"), **login))
        assert not await _connects(ServiceSettings(nats_url=url, NATS_TLS_CA=str(tmp_path / "other.crt"), **login))
        assert not await _connects(ServiceSettings(nats_url=url, **login)), "a TLS-only server took a plain client"
