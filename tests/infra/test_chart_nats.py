"""The chart's NATS: JetStream on a PVC, the rendered nats.conf really starts a server (and a
three-server cluster in production), and an external NATS replaces the bundled one."""

from __future__ import annotations

import asyncio
import base64
import re
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from .conftest import NAMESPACE, RELEASE, Chart
from .manifests import RENDERS, SERVICES, env, main_container, nats_conf, objects, one, service_deployment

pytestmark = pytest.mark.integration

# -- NATS -------------------------------------------------------------------------------------

def nats_env(docs: list[dict]) -> dict[str, str]:
    """The NATS pod's environment: its name and the users' passwords from the rendered Secret."""
    secret = one(docs, "Secret", f"{RELEASE}-nats-users")
    return {"POD_NAME": f"{RELEASE}-nats-0",
            **{f"NATS_PASSWORD_{user.upper()}": base64.b64decode(v).decode() for user, v in secret["data"].items()}}


async def _logs_in(url: str, user: str | None = None, password: str | None = None) -> bool:
    import nats

    try:
        nc = await nats.connect(url, user=user, password=password, allow_reconnect=False, max_reconnect_attempts=0,
                                connect_timeout=2)
    except Exception:
        return False
    await nc.close()
    return True


def test_nats_runs_jetstream_on_a_pvc(default: list[dict]) -> None:
    sts = one(default, "StatefulSet", f"{RELEASE}-nats")
    assert sts["spec"]["replicas"] == 1
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "10Gi"
    mounts = {m["name"]: m["mountPath"] for m in main_container(sts)["volumeMounts"]}
    conf = nats_conf(default)
    store = re.search(r"jetstream \{[^}]*store_dir: (\S+)", conf)
    assert store, f"no JetStream store in nats.conf:\n{conf}"
    assert store.group(1).startswith(mounts[claim["metadata"]["name"]]), "JetStream does not write to the PVC"
    assert "cluster {" not in conf, "a single server must not try to route to peers"
    # Every service connects to the NATS Service, which selects the NATS pods on the client port.
    svc = one(default, "Service", f"{RELEASE}-nats")
    assert svc["spec"]["selector"].items() <= sts["spec"]["template"]["metadata"]["labels"].items()
    port = svc["spec"]["ports"][0]["port"]
    for name in SERVICES:
        assert env(main_container(service_deployment(default, name)))["NATS_URL"]["value"] == f"nats://{RELEASE}-nats:{port}"


def test_rendered_nats_conf_starts_a_jetstream_server(default: list[dict], tmp_path: Path) -> None:
    """Run the real nats-server on the rendered nats.conf (paths and ports moved to the test's
    own) and ask it the questions the chart's probes ask."""
    from ringline.stack import free_port, nats_server_binary, port_open

    client, monitor = free_port(), free_port()
    conf = (nats_conf(default)
            .replace("0.0.0.0:4222", f"127.0.0.1:{client}").replace("0.0.0.0:8222", f"127.0.0.1:{monitor}")
            .replace("store_dir: /data", f"store_dir: {tmp_path / 'data'}")
            .replace("/var/run/nats/nats.pid", str(tmp_path / "nats.pid")))
    (tmp_path / "nats.conf").write_text(conf)
    sts = one(default, "StatefulSet", f"{RELEASE}-nats")
    probes = {p: main_container(sts)[p]["httpGet"]["path"] for p in ("startupProbe", "readinessProbe", "livenessProbe")}
    environment = nats_env(default)
    proc = subprocess.Popen([nats_server_binary(), "-c", str(tmp_path / "nats.conf")], env=environment,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 15
        while not port_open("127.0.0.1", monitor):
            assert proc.poll() is None, f"nats-server refused the rendered nats.conf:\n{proc.stdout.read()}"
            assert time.monotonic() < deadline, "nats-server did not start"
            time.sleep(0.05)
        for probe, path in probes.items():
            with urllib.request.urlopen(f"http://127.0.0.1:{monitor}{path}", timeout=5) as reply:
                assert reply.status == 200, f"{probe} {path}"
        with urllib.request.urlopen(f"http://127.0.0.1:{monitor}/varz", timeout=5) as reply:
            varz = reply.read().decode()
        assert '"server_name": "ringline-nats-0"' in varz
        assert (tmp_path / "data" / "jetstream").is_dir(), "JetStream did not create its store on the data volume"
        url = f"nats://127.0.0.1:{client}"
        assert asyncio.run(_logs_in(url, "stt", environment["NATS_PASSWORD_STT"])), "a service cannot log in"
        assert not asyncio.run(_logs_in(url)), "an anonymous client got in"
        assert not asyncio.run(_logs_in(url, "stt", environment["NATS_PASSWORD_TTS"])), "a wrong password got in"
    finally:
        proc.terminate()
        proc.wait(10)


def test_production_nats_is_a_three_server_cluster(production: list[dict], tmp_path: Path) -> None:
    from ringline.stack import nats_server_binary

    sts = one(production, "StatefulSet", f"{RELEASE}-nats")
    assert sts["spec"]["replicas"] == 3
    assert sts["spec"]["podManagementPolicy"] == "Parallel", "JetStream needs all servers up to elect a leader"
    headless = one(production, "Service", f"{RELEASE}-nats-headless")
    assert headless["spec"]["clusterIP"] == "None" and headless["spec"]["publishNotReadyAddresses"] is True
    assert sts["spec"]["serviceName"] == headless["metadata"]["name"]
    conf = nats_conf(production)
    routes = re.findall(r"nats://(\S+):6222", conf)
    assert routes == [f"{RELEASE}-nats-{i}.{RELEASE}-nats-headless.{NAMESPACE}.svc.cluster.local" for i in range(3)]
    assert "server_name: $POD_NAME" in conf, "each server needs its own name in a JetStream cluster"
    assert one(production, "PodDisruptionBudget", f"{RELEASE}-nats")["spec"]["maxUnavailable"] == 1
    (tmp_path / "nats.conf").write_text(conf)
    check = subprocess.run([nats_server_binary(), "-t", "-c", str(tmp_path / "nats.conf")],
                           env=nats_env(production), capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_external_nats_replaces_the_bundled_one(chart: Chart) -> None:
    docs = chart.render(*RENDERS["external-nats-no-jaeger"])
    assert not objects(docs, "StatefulSet"), "no NATS should be deployed when nats.external.url is set"
    for name in SERVICES:
        assert env(main_container(service_deployment(docs, name)))["NATS_URL"]["value"] == "nats://nats.messaging:4222"
