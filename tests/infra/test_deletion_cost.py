"""The deletion-cost updater: each stage pod's deletion cost follows the calls it owns, so a
scale-down takes an idle pod first. The Kubernetes API and the pods' /metrics are local HTTP
stand-ins (httpx transports) answering as the real ones do."""

from __future__ import annotations

import json

import httpx
import pytest

from ringline.deletion_cost import ANNOTATION, active_calls, sweep

pytestmark = pytest.mark.unit

METRICS = {  # pod IP -> what its /metrics says
    "10.0.0.1": 'ringline_active_calls{stage="stt"} 7.0\nringline_load_ratio{stage="stt"} 0.07\n',
    "10.0.0.2": 'ringline_active_calls{stage="stt"} 0.0\n',
    "10.0.0.3": 'ringline_active_calls{stage="stt"} 3.0\n',
}


def pod(name: str, ip: str, annotation: str | None = None, phase: str = "Running") -> dict:
    annotations = {ANNOTATION: annotation} if annotation is not None else {}
    return {"metadata": {"name": name, "annotations": annotations},
            "spec": {"containers": [{"ports": [{"name": "http", "containerPort": 8081}]}]},
            "status": {"podIP": ip, "phase": phase}}


class Cluster:
    def __init__(self, pods: list[dict]) -> None:
        self.pods = pods
        self.patches: dict[str, str] = {}
        self.selectors: list[str] = []

    def api(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            self.selectors.append(request.url.params["labelSelector"])
            return httpx.Response(200, json={"items": self.pods})
        assert request.method == "PATCH" and request.headers["content-type"] == "application/merge-patch+json"
        name = request.url.path.rsplit("/", 1)[1]
        self.patches[name] = json.loads(request.content)["metadata"]["annotations"][ANNOTATION]
        return httpx.Response(200, json={})

    @staticmethod
    def scrape(request: httpx.Request) -> httpx.Response:
        assert request.url.port == 8081 and request.url.path == "/metrics"
        return httpx.Response(200, text=METRICS[request.url.host])


def test_each_pod_costs_its_active_calls_and_unchanged_ones_are_left_alone() -> None:
    cluster = Cluster([pod("stt-a", "10.0.0.1"), pod("stt-b", "10.0.0.2", annotation="5"),
                       pod("stt-c", "10.0.0.3", annotation="3"), pod("stt-d", "", phase="Pending")])
    with httpx.Client(base_url="https://k8s", transport=httpx.MockTransport(cluster.api)) as api, \
            httpx.Client(transport=httpx.MockTransport(cluster.scrape)) as scraper:
        changed = sweep(api, scraper, "voice", "app.kubernetes.io/instance=r,ringline.dev/role=service")
    assert cluster.patches == {"stt-a": "7", "stt-b": "0"}  # the idle pod is now the cheapest to delete
    assert changed == 2
    assert cluster.selectors == ["app.kubernetes.io/instance=r,ringline.dev/role=service"]


def test_active_calls_sum_over_the_stages_a_pod_serves() -> None:
    text = 'ringline_active_calls{stage="stt"} 2.0\nringline_active_calls{stage="tts"} 1.0\n'
    assert active_calls(text) == 3
    assert active_calls("") == 0
