"""Scaling on calls, not CPU, and watching it (issue 10), as an operator installs it.

The stages' HPAs can target active calls per pod (a Pods metric from prometheus-adapter, whose
rule ships in files/), or KEDA can own the scaling on the same metric; a PodMonitor scrapes every
service's /metrics; Grafana gets a latency board and a separate cost board whose queries name only
metrics the services export; a small updater keeps each pod's deletion cost at its active calls
(so idle pods go first) with a Role that can do nothing else; network policies let the scrapers in.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from ringline.contracts.runtime import metrics

from .conftest import CHART, NAMESPACE, RELEASE, Chart
from .manifests import AUTOSCALED, SERVICES, main_container, objects, one

pytestmark = pytest.mark.integration

CRD_KINDS = {"PodMonitor", "ScaledObject"}

ALL_ON = ("--set", "metrics.podMonitor.enabled=true", "--set", "metrics.dashboards.enabled=true",
          "--set", "metrics.deletionCost.enabled=true", "--set", "networkPolicy.enabled=true",
          "--set", "metrics.scrapeFrom[0].namespaceSelector.matchLabels.name=monitoring",
          *(arg for name in AUTOSCALED for arg in ("--set", f"services.{name}.autoscaling.activeCalls.enabled=true")))


@pytest.fixture(scope="module")
def all_on(chart: Chart) -> list[dict]:
    return chart.render(*ALL_ON)


def exported_families() -> set[str]:
    """Every family name the services export (counters also as `_total`, histograms' series)."""
    names = set()
    for family in metrics.REGISTRY.collect():
        if family.name.startswith("ringline_"):
            names |= {family.name, f"{family.name}_total", f"{family.name}_bucket"}
    return names


def test_stages_scale_on_active_calls_per_pod(all_on: list[dict]) -> None:
    hpas = objects(all_on, "HorizontalPodAutoscaler")
    for name in AUTOSCALED:
        (metric,) = hpas[f"{RELEASE}-{name}"]["spec"]["metrics"]
        assert metric["type"] == "Pods"
        assert metric["pods"]["metric"]["name"] == "ringline_active_calls"
        assert int(metric["pods"]["target"]["averageValue"]) > 0


def test_the_adapter_rule_serves_the_metric_the_hpas_ask_for() -> None:
    rules = yaml.safe_load((CHART / "files" / "prometheus-adapter-rules.yaml").read_text())
    (rule,) = rules["rules"]["custom"]
    assert rule["name"]["as"] == "ringline_active_calls"
    assert rule["resources"]["overrides"]["pod"] == {"resource": "pod"}


def test_keda_owns_scaling_instead_of_the_hpas(chart: Chart) -> None:
    docs = chart.render("--set", "keda.enabled=true")
    assert not {f"{RELEASE}-{n}" for n in AUTOSCALED} & set(objects(docs, "HorizontalPodAutoscaler"))
    for name in AUTOSCALED:
        scaled = one(docs, "ScaledObject", f"{RELEASE}-{name}")
        assert scaled["spec"]["scaleTargetRef"]["name"] == f"{RELEASE}-{name}"
        (trigger,) = scaled["spec"]["triggers"]
        assert trigger["type"] == "prometheus"
        query = trigger["metadata"]["query"]
        assert f'stage="{name}"' in query and "ringline_active_calls" in query


def test_a_pod_monitor_scrapes_every_service_on_its_http_port(all_on: list[dict]) -> None:
    (monitor,) = objects(all_on, "PodMonitor").values()
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["port"] == "http" and endpoint["path"] == "/metrics"
    wanted = monitor["spec"]["selector"]["matchLabels"]
    for name in SERVICES:
        deployment = one(all_on, "Deployment", f"{RELEASE}-{name}")
        assert wanted.items() <= deployment["spec"]["template"]["metadata"]["labels"].items(), f"{name} is not scraped"
        assert "http" in {p["name"] for p in main_container(deployment)["ports"]}


def test_latency_and_cost_are_separate_boards_on_exported_metrics(all_on: list[dict]) -> None:
    boards = {}
    for config in objects(all_on, "ConfigMap").values():
        if config["metadata"].get("labels", {}).get("grafana_dashboard") == "1":
            (text,) = config["data"].values()
            board = json.loads(text)
            boards[board["uid"]] = board
    assert set(boards) == {"ringline-latency", "ringline-cost"}
    exported = exported_families()
    used: dict[str, set[str]] = {}
    for uid, board in boards.items():
        exprs = [t["expr"] for p in board["panels"] for t in p["targets"]]
        used[uid] = set(re.findall(r"\bringline_[a-z_]+", " ".join(exprs)))
        assert used[uid] <= exported, f"{uid} queries metrics nobody exports: {used[uid] - exported}"
    assert "ringline_mouth_to_ear_seconds_bucket" in used["ringline-latency"]
    assert "ringline_cost_total" in used["ringline-cost"]
    assert "ringline_cost_total" not in used["ringline-latency"]


def test_idle_pods_go_first_and_the_updater_can_only_touch_pods(all_on: list[dict]) -> None:
    updater = one(all_on, "Deployment", f"{RELEASE}-deletion-cost")
    container = main_container(updater)
    assert container["command"] == ["python", "-m", "ringline.deletion_cost"]
    assert f"app.kubernetes.io/instance={RELEASE},ringline.dev/role=service" in container["args"]
    role = one(all_on, "Role", f"{RELEASE}-deletion-cost")
    assert role["metadata"]["namespace"] == NAMESPACE
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "patch"]}]
    assert updater["spec"]["template"]["spec"]["serviceAccountName"] == f"{RELEASE}-deletion-cost"


def test_network_policies_let_the_scrapers_reach_metrics_only(all_on: list[dict]) -> None:
    policies = objects(all_on, "NetworkPolicy")
    for name in ("stt", "brain", "tts", "memory"):
        (rule,) = policies[f"{RELEASE}-{name}"]["spec"]["ingress"]
        assert rule["ports"] == [{"port": "http", "protocol": "TCP"}]
        peers = rule["from"]
        assert {"namespaceSelector": {"matchLabels": {"name": "monitoring"}}} in peers
        assert any(p.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/component") == "deletion-cost"
                   for p in peers)


def test_without_scrapers_the_stages_still_accept_nothing(chart: Chart) -> None:
    policies = objects(chart.render("--set", "networkPolicy.enabled=true"), "NetworkPolicy")
    assert policies[f"{RELEASE}-stt"]["spec"]["ingress"] == []


def test_everything_on_lints_and_validates(chart: Chart, tmp_path: Path) -> None:
    lint = chart.helm_run("lint", "--strict", str(CHART), *ALL_ON)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    # kubernetes-validate knows the built-in kinds; the operators' CRDs (PodMonitor) are left out.
    docs = [d for d in yaml.safe_load_all(chart.template(*ALL_ON)) if d and d["kind"] not in CRD_KINDS]
    path = tmp_path / "all-on.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    result = chart.validate(path)
    assert result.returncode == 0, result.stdout + result.stderr
