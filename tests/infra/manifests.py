"""Reading rendered manifests: shared by the chart tests."""

from __future__ import annotations

from .conftest import PRODUCTION_VALUES, RELEASE

SERVICES = ("telephony", "stt", "brain", "tts", "memory")
AUTOSCALED = ("stt", "brain", "tts")
SECRET_KEYS = {  # which service needs which key
    "ANTHROPIC_API_KEY": "brain",
    "DEEPGRAM_API_KEY": "stt",
    "CARTESIA_API_KEY": "tts",
    "TWILIO_AUTH_TOKEN": "telephony",
    "TWILIO_ACCOUNT_SID": "telephony",
    "RINGLINE_TELEPHONY_API_TOKEN": "telephony",
    "RINGLINE_TELEPHONY_STREAM_SECRET": "telephony",
    "RINGLINE_TELEPHONY_WEB_TOKEN": "telephony",
    "RINGLINE_MEMORY_REPORT_SECRET": "memory",
}
PROD = ("-f", str(PRODUCTION_VALUES))


def objects(docs: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def one(docs: list[dict], kind: str, name: str) -> dict:
    found = objects(docs, kind)
    assert name in found, f"no {kind} {name}; have {sorted(found)}"
    return found[name]


def service_deployment(docs: list[dict], name: str) -> dict:
    return one(docs, "Deployment", f"{RELEASE}-{name}")


def main_container(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]["containers"][0]


def env(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env", [])}


def nats_conf(docs: list[dict]) -> str:
    return one(docs, "ConfigMap", f"{RELEASE}-nats-config")["data"]["nats.conf"]


RENDERS = {
    "default": (),
    "production": PROD,
    "external-nats-no-jaeger": ("--set", "nats.external.url=nats://nats.messaging:4222",
                                "--set", "jaeger.enabled=false", "--set", "networkPolicy.enabled=true",
                                "--set", "otel.endpoint=http://otel-collector.observability:4318"),
}
