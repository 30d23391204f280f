"""The Helm chart (infra/k8s/ringline) as an operator meets it.

It lints strictly, renders with the default values and with a production-like values file
(ci/production-values.yaml: 3 NATS servers, autoscaled stages, an existing Secret, an HTTPS
ingress, network policies), and every rendered manifest validates strictly against the
Kubernetes 1.32 schemas. Then the things an operator would notice: every service is probed on
/health on the port it listens on, NATS really runs JetStream on a PVC with the rendered
nats.conf, traces go to Jaeger, the stages autoscale, the provider keys reach the services that
use them, pods drain before they are killed, and a bad value fails the install with a message
that names it.
"""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import pytest

from .conftest import CHART, NAMESPACE, RELEASE, Chart, RenderError
from .manifests import (
    AUTOSCALED,
    PROD,
    RENDERS,
    SECRET_KEYS,
    SERVICES,
    env,
    main_container,
    objects,
    one,
    service_deployment,
)

pytestmark = pytest.mark.integration



# -- the chart as a whole ---------------------------------------------------------------------

@pytest.mark.parametrize("values", [(), PROD], ids=["default", "production"])
def test_lint_strict(chart: Chart, values: tuple[str, ...]) -> None:
    proc = chart.helm_run("lint", "--strict", str(CHART), *values)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 chart(s) failed" in proc.stdout


@pytest.mark.parametrize("name", list(RENDERS))
def test_manifests_validate_against_kubernetes_1_32(chart: Chart, name: str, tmp_path: Path) -> None:
    rendered = tmp_path / f"{name}.yaml"
    rendered.write_text(chart.template(*RENDERS[name]))
    proc = chart.validate(rendered)
    assert proc.returncode == 0, f"kubernetes-validate --strict rejected the {name} render:\n{proc.stdout}{proc.stderr}"


def test_production_render_has_everything(production: list[dict]) -> None:
    kinds = {d["kind"] for d in production}
    assert {"StatefulSet", "Deployment", "Service", "ConfigMap", "HorizontalPodAutoscaler",
            "PodDisruptionBudget", "NetworkPolicy", "Ingress"} <= kinds
    # An existingSecret holds the keys: the only Secret the chart makes is the NATS users' passwords.
    assert list(objects(production, "Secret")) == [f"{RELEASE}-nats-users"]


# -- services ---------------------------------------------------------------------------------

@pytest.mark.parametrize("render", ["default", "production"])
def test_every_service_is_probed_on_health_where_it_listens(request: pytest.FixtureRequest, render: str) -> None:
    docs = request.getfixturevalue(render)
    for name in SERVICES:
        c = main_container(service_deployment(docs, name))
        assert c["command"] == ["python", "-m", f"ringline.services.{name}"]
        port = {p["name"]: p["containerPort"] for p in c["ports"]}["http"]
        variables = env(c)
        prefix = f"RINGLINE_{name.upper()}_"
        assert variables[f"{prefix}PORT"]["value"] == str(port), f"{name} listens elsewhere than its containerPort"
        assert variables[f"{prefix}HOST"]["value"] == "0.0.0.0", f"{name} would bind to loopback only"
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            # A draining edge is unready (503) but alive: its liveness probe asks ?probe=live.
            path = "/health?probe=live" if (name, probe) == ("telephony", "livenessProbe") else "/health"
            assert c[probe]["httpGet"] == {"path": path, "port": "http"}, f"{name} {probe}"
            # /health pings NATS with a 2 s timeout: the probe must wait longer than that.
            assert c[probe]["timeoutSeconds"] > 2, f"{name} {probe} times out before /health can answer"


@pytest.mark.parametrize("render", ["default", "production"])
def test_pods_drain_before_they_are_killed(request: pytest.FixtureRequest, render: str) -> None:
    docs = request.getfixturevalue(render)
    for name in SERVICES:
        pod = service_deployment(docs, name)["spec"]["template"]["spec"]
        c = pod["containers"][0]
        sleep = c["lifecycle"]["preStop"]["exec"]["command"]
        assert sleep[0] == "sleep" and int(sleep[1]) > 0, f"{name} has no preStop sleep"
        drain = float(env(c)[f"RINGLINE_{name.upper()}_DRAIN_TIMEOUT_S"]["value"])
        assert pod["terminationGracePeriodSeconds"] > int(sleep[1]) + drain, \
            f"{name}: grace period {pod['terminationGracePeriodSeconds']} s <= preStop {sleep[1]} s + drain {drain} s"


def test_production_telephony_drains_calls_longer(production: list[dict]) -> None:
    c = main_container(service_deployment(production, "telephony"))
    assert env(c)["RINGLINE_TELEPHONY_DRAIN_TIMEOUT_S"]["value"] == "120"


@pytest.mark.parametrize("render", ["default", "production"])
def test_the_edge_serves_its_calls_until_the_deadline_then_hands_them_over_before_the_kill(
        request: pytest.FixtureRequest, render: str) -> None:
    docs = request.getfixturevalue(render)
    deployment = service_deployment(docs, "telephony")
    pod = deployment["spec"]["template"]["spec"]
    c = main_container(deployment)
    deadline = float(env(c)["RINGLINE_TELEPHONY_DRAIN_DEADLINE_S"]["value"])
    sleep = int(c["lifecycle"]["preStop"]["exec"]["command"][1])
    # preStop, then calls served until the deadline, then up to 5 s for the handed-over streams to close
    assert pod["terminationGracePeriodSeconds"] > sleep + deadline + 5
    budget = objects(docs, "PodDisruptionBudget")[f"{RELEASE}-telephony"]["spec"]
    # a voluntary eviction never takes every edge
    assert budget.get("maxUnavailable") == 1 or budget.get("minAvailable", 0) >= 1


@pytest.mark.parametrize("render", ["default", "production"])
def test_every_service_has_a_disruption_budget_and_spreads(request: pytest.FixtureRequest, render: str) -> None:
    docs = request.getfixturevalue(render)
    budgets = objects(docs, "PodDisruptionBudget")
    for name in SERVICES:
        deployment = service_deployment(docs, name)
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert budgets[f"{RELEASE}-{name}"]["spec"]["selector"]["matchLabels"] == selector
        spread = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
        assert spread and all(s["labelSelector"]["matchLabels"] == selector for s in spread)
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True


# -- autoscaling ------------------------------------------------------------------------------

@pytest.mark.parametrize("render", ["default", "production"])
def test_stt_brain_tts_autoscale_on_cpu(request: pytest.FixtureRequest, render: str) -> None:
    docs = request.getfixturevalue(render)
    hpas = objects(docs, "HorizontalPodAutoscaler")
    for name in AUTOSCALED:
        hpa = hpas.get(f"{RELEASE}-{name}")
        assert hpa is not None, f"no HPA for {name}"
        assert hpa["apiVersion"] == "autoscaling/v2"
        target = {"apiVersion": "apps/v1", "kind": "Deployment", "name": f"{RELEASE}-{name}"}
        assert hpa["spec"]["scaleTargetRef"] == target
        (metric,) = hpa["spec"]["metrics"]
        assert metric["resource"]["name"] == "cpu" and metric["resource"]["target"]["type"] == "Utilization"
        assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
        # The HPA owns the replica count; a fixed one in the Deployment would fight it on every upgrade.
        assert "replicas" not in service_deployment(docs, name)["spec"]
    assert "resources" in main_container(service_deployment(docs, "brain"))


def test_production_scales_out(production: list[dict]) -> None:
    hpas = objects(production, "HorizontalPodAutoscaler")
    assert {hpas[f"{RELEASE}-{n}"]["spec"]["minReplicas"] for n in AUTOSCALED} == {3}
    assert f"{RELEASE}-telephony" in hpas


# -- tracing ----------------------------------------------------------------------------------

def test_services_send_traces_to_jaeger(default: list[dict]) -> None:
    jaeger = one(default, "Service", f"{RELEASE}-jaeger")
    ports = {p["name"]: p["port"] for p in jaeger["spec"]["ports"]}
    assert ports["otlp-http"] == 4318 and ports["ui"] == 16686
    config = one(default, "ConfigMap", f"{RELEASE}-jaeger-config")["data"]["config.yaml"]
    assert "endpoint: 0.0.0.0:4318" in config, "Jaeger must accept OTLP/HTTP from other pods"
    expected = f"http://{RELEASE}-jaeger:4318"
    for name in SERVICES:
        variables = env(main_container(service_deployment(default, name)))
        assert variables["OTEL_EXPORTER_OTLP_ENDPOINT"]["value"] == expected


def test_without_jaeger_traces_go_where_configured(chart: Chart) -> None:
    off = chart.render("--set", "jaeger.enabled=false")
    assert not [d for d in off if "jaeger" in d["metadata"]["name"]]
    assert all("OTEL_EXPORTER_OTLP_ENDPOINT" not in env(main_container(service_deployment(off, n))) for n in SERVICES)
    own = chart.render(*RENDERS["external-nats-no-jaeger"])
    for name in SERVICES:
        assert env(main_container(service_deployment(own, name)))["OTEL_EXPORTER_OTLP_ENDPOINT"]["value"] == \
            "http://otel-collector.observability:4318"


# -- secrets ----------------------------------------------------------------------------------

def _secret_refs(docs: list[dict]) -> dict[str, tuple[str, str]]:
    """KEY -> (service, secret name) for every secretKeyRef in the service Deployments."""
    refs = {}
    for name in SERVICES:
        for var in main_container(service_deployment(docs, name)).get("env", []):
            ref = var.get("valueFrom", {}).get("secretKeyRef")
            if ref and var["name"] != "NATS_PASSWORD":  # the service's own NATS user (test_chart_security)
                assert ref["key"] == var["name"] and ref["optional"] is True, var
                assert var["name"] not in refs, f"{var['name']} given to two services"
                refs[var["name"]] = (name, ref["name"])
    return refs


def test_each_key_reaches_only_the_service_that_uses_it(default: list[dict]) -> None:
    refs = _secret_refs(default)
    assert {k: s for k, (s, _) in refs.items()} == SECRET_KEYS
    assert {secret for _, secret in refs.values()} == {f"{RELEASE}-secrets"}
    assert one(default, "Secret", f"{RELEASE}-secrets")["data"] == {}, "empty keys must be left out, not set to ''"


def test_chart_created_secret_holds_given_keys(chart: Chart) -> None:
    docs = chart.render("--set", "secrets.values.ANTHROPIC_API_KEY=sk-test",
                        "--set", "secrets.values.TWILIO_AUTH_TOKEN=tok")
    data = one(docs, "Secret", f"{RELEASE}-secrets")["data"]
    decoded = {k: base64.b64decode(v).decode() for k, v in data.items()}
    assert decoded == {"ANTHROPIC_API_KEY": "sk-test", "TWILIO_AUTH_TOKEN": "tok"}
    brain = service_deployment(docs, "brain")["spec"]["template"]["metadata"]["annotations"]
    assert "checksum/secret" in brain, "pods must roll when a key changes"


def test_production_reads_keys_from_the_existing_secret(production: list[dict]) -> None:
    refs = _secret_refs(production)
    assert set(refs) == set(SECRET_KEYS)
    assert {secret for _, secret in refs.values()} == {"ringline-provider-keys"}


# -- the edge ---------------------------------------------------------------------------------

def test_production_edge_is_reachable_for_twilio(production: list[dict]) -> None:
    ingress = one(production, "Ingress", f"{RELEASE}-telephony")
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-read-timeout"] == "3600"
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    service = one(production, "Service", backend["name"])
    assert backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}
    telephony = main_container(service_deployment(production, "telephony"))
    assert env(telephony)["RINGLINE_TELEPHONY_PUBLIC_URL"]["value"] == "https://voice.example.com"


def test_explicit_public_url_wins(chart: Chart) -> None:
    docs = chart.render("--set", "services.telephony.publicUrl=https://abc.ngrok.app/")
    telephony = main_container(service_deployment(docs, "telephony"))
    assert env(telephony)["RINGLINE_TELEPHONY_PUBLIC_URL"]["value"] == "https://abc.ngrok.app"


# -- network policies -------------------------------------------------------------------------

def test_production_network_policies_isolate_the_services(production: list[dict]) -> None:
    policies = objects(production, "NetworkPolicy")
    for name in SERVICES:
        spec = policies[f"{RELEASE}-{name}"]["spec"]
        selector = service_deployment(production, name)["spec"]["selector"]
        assert spec["podSelector"]["matchLabels"] == selector["matchLabels"]
        assert set(spec["policyTypes"]) == {"Ingress", "Egress"}
        if name == "telephony":
            assert spec["ingress"], "telephony must accept the ingress controller"
        else:
            assert spec["ingress"] == [], f"{name} must accept no connections"
        peers = {}
        for rule in spec["egress"]:
            ports = tuple(sorted(p["port"] for p in rule["ports"]))
            for peer in rule.get("to", [{"anywhere": True}]):
                key = peer.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/component") \
                    or ("public" if "ipBlock" in peer else "any")
                peers.setdefault(key, set()).update(ports)
        # NATS, Jaeger, DNS and (allowExternalHttps) HTTPS to public addresses; nothing else.
        assert peers == {"nats": {4222}, "jaeger": {4317, 4318}, "any": {53}, "public": {443}}, f"{name}: {peers}"
    nats = policies[f"{RELEASE}-nats"]["spec"]
    client_rule = next(r for r in nats["ingress"] if r["ports"][0]["port"] == 4222)
    assert client_rule["from"][0]["podSelector"]["matchLabels"]["ringline.dev/role"] == "service"
    for name in SERVICES:
        pod_labels = service_deployment(production, name)["spec"]["template"]["metadata"]["labels"]
        assert pod_labels.get("ringline.dev/role") == "service", f"{name} could not reach NATS"


def test_network_policies_are_off_by_default(default: list[dict]) -> None:
    assert not objects(default, "NetworkPolicy")


# -- bad values fail the install with a message naming them ----------------------------------

@pytest.mark.parametrize(("args", "names"), [
    (("--set", "nats.replicas=2"), "nats.replicas"),
    (("--set", "services.telephony.publicUrl=ftp://phone.example.com"), "services.telephony.publicUrl"),
    (("--set", "natz.replicas=3"), "natz"),
    (("--set", "services.brain.resources.requests.memory=lots"), "services.brain.resources.requests.memory"),
    (("--set", "services.stt.autoscaling.maxReplicas=0"), "services.stt.autoscaling.maxReplicas"),
    (("--set", "serviceDefaults.terminationGracePeriodSeconds=5"), "terminationGracePeriodSeconds"),
    (("--set", "services.tts.autoscaling.minReplicas=9"), "maxReplicas"),
    (("--set", "ingress.enabled=true", "--set", "ingress.hosts=null"), "ingress.hosts"),
], ids=["even-nats-cluster", "non-http-public-url", "typo-top-level-key", "bad-quantity", "zero-max-replicas",
        "grace-shorter-than-drain", "min-above-max", "ingress-without-host"])
def test_invalid_values_fail_with_a_clear_message(chart: Chart, args: tuple[str, ...], names: str) -> None:
    with pytest.raises(RenderError) as failure:
        chart.template(*args)
    assert names in str(failure.value), str(failure.value)


# -- NOTES ------------------------------------------------------------------------------------

def _notes(chart: Chart, tmp_path: Path, *args: str) -> str:
    """NOTES.txt as `helm install` would print it (helm template omits it, so a probe template
    in a copy of the chart includes it)."""
    copy = tmp_path / "ringline"
    shutil.copytree(CHART, copy)
    (copy / "templates" / "zz-notes-probe.yaml").write_text(
        'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes-probe}\n'
        'data:\n  notes: {{ include "ringline/templates/NOTES.txt" . | quote }}\n')
    docs = chart.parse(chart.template(*args, "--show-only", "templates/zz-notes-probe.yaml", chart=copy))
    return docs[0]["data"]["notes"]


def test_notes_tell_how_to_reach_the_edge_and_jaeger(chart: Chart, tmp_path: Path) -> None:
    notes = _notes(chart, tmp_path / "default")
    assert f"kubectl -n {NAMESPACE} port-forward svc/{RELEASE}-telephony" in notes
    assert f"port-forward svc/{RELEASE}-jaeger 16686:16686" in notes
    assert "no public URL is set" in notes
    prod = _notes(chart, tmp_path / "production", *PROD)
    assert "POST https://voice.example.com/twilio/voice" in prod
    assert "no public URL is set" not in prod


def test_agents_reach_every_service_as_a_mounted_file_the_services_can_load(production: list[dict],
                                                                               tmp_path: Path) -> None:
    from ringline.contracts.agents import load_agents

    config = one(production, "ConfigMap", f"{RELEASE}-agents")
    path = tmp_path / "agents.yaml"
    path.write_text(config["data"]["agents.yaml"])
    book = load_agents(path)  # what every pod will load: valid, with both agents
    assert [a.id for a in book.agents] == ["reception", "family"]
    assert book.for_number("+15550100002").allow == ["+1555012*"]
    for name in SERVICES:
        deployment = service_deployment(production, name)
        container = main_container(deployment)
        assert env(container)["RINGLINE_AGENTS_FILE"]["value"] == "/etc/ringline/agents/agents.yaml"
        mounts = {m["name"]: m for m in container["volumeMounts"]}
        assert mounts["agents"]["mountPath"] == "/etc/ringline/agents" and mounts["agents"].get("subPath") is None, \
            "a subPath mount would never see updates"
        volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
        assert volumes["agents"]["configMap"]["name"] == f"{RELEASE}-agents"


def test_without_agents_no_agents_file_is_configured(chart: Chart) -> None:
    docs = chart.render()
    assert f"{RELEASE}-agents" not in objects(docs, "ConfigMap")
    assert "RINGLINE_AGENTS_FILE" not in env(main_container(service_deployment(docs, "brain")))


def test_a_malformed_agent_number_fails_the_install(chart: Chart) -> None:
    with pytest.raises(RenderError, match="agents"):
        chart.render("--set", "agents[0].id=front", "--set", "agents[0].numbers[0]=call-me")
