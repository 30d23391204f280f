"""Keep each stage pod's `controller.kubernetes.io/pod-deletion-cost` at the calls it owns.

A Deployment scaling down removes the pods with the lowest deletion cost first, so an idle replica
goes before one serving calls (which would otherwise drain them or hand them over). Runs in the
cluster (the chart's `metrics.deletionCost`): every `--interval` seconds it lists the release's
service pods, reads `ringline_active_calls` from each pod's /metrics, and patches the annotation
when it changed. Only the Kubernetes API and the pods' http ports; no client library.

    python -m ringline.deletion_cost --selector app.kubernetes.io/instance=ringline,ringline.dev/role=service
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

log = logging.getLogger("ringline.deletion_cost")

SA = Path("/var/run/secrets/kubernetes.io/serviceaccount")
ANNOTATION = "controller.kubernetes.io/pod-deletion-cost"


def active_calls(metrics_text: str) -> int:
    """The calls a pod owns, summed over its stages (`ringline_active_calls`)."""
    return int(sum(sample.value for family in text_string_to_metric_families(metrics_text)
                   if family.name == "ringline_active_calls" for sample in family.samples))


def http_port(pod: dict) -> int | None:
    for container in pod["spec"].get("containers", []):
        for port in container.get("ports", []):
            if port.get("name") == "http":
                return int(port["containerPort"])
    return None


def sweep(api: httpx.Client, scraper: httpx.Client, namespace: str, selector: str) -> int:
    """One pass over the pods; returns how many annotations changed."""
    pods = api.get(f"/api/v1/namespaces/{namespace}/pods", params={"labelSelector": selector}).json()["items"]
    changed = 0
    for pod in pods:
        ip, port, name = pod["status"].get("podIP"), http_port(pod), pod["metadata"]["name"]
        if not ip or port is None or pod["status"].get("phase") != "Running":
            continue
        try:
            calls = active_calls(scraper.get(f"http://{ip}:{port}/metrics").text)
        except httpx.HTTPError as exc:
            log.debug("pod %s: %s", name, exc)
            continue
        if (pod["metadata"].get("annotations") or {}).get(ANNOTATION) == str(calls):
            continue
        api.patch(f"/api/v1/namespaces/{namespace}/pods/{name}",
                  json={"metadata": {"annotations": {ANNOTATION: str(calls)}}},
                  headers={"Content-Type": "application/merge-patch+json"}).raise_for_status()
        changed += 1
    return changed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--selector", required=True, help="label selector of the pods to keep annotated")
    parser.add_argument("--interval", type=float, default=10.0)
    args = parser.parse_args()
    logging.basicConfig(level=os.environ.get("RINGLINE_LOG_LEVEL", "INFO"))
    namespace = (SA / "namespace").read_text().strip()
    host = os.environ["KUBERNETES_SERVICE_HOST"]
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    token = (SA / "token").read_text().strip()
    with httpx.Client(base_url=f"https://{host}:{port}", verify=str(SA / "ca.crt"), timeout=10.0,
                      headers={"Authorization": f"Bearer {token}"}) as api, httpx.Client(timeout=3.0) as scraper:
        while True:
            try:
                changed = sweep(api, scraper, namespace, args.selector)
                if changed:
                    log.info("updated the deletion cost of %d pods", changed)
            except httpx.HTTPError as exc:
                log.warning("pass failed: %s", exc)
            time.sleep(args.interval)


if __name__ == "__main__":
    main()
