"""The chart locks the bus and the edge like `ringline up` does (issue 11).

NATS has one user per service whose rendered grants are exactly the table in
contracts/runtime/permissions.py; each service logs in as its own user with a password from a
Secret; TLS for clients and routes mounts the operator's certificates; production values without
a Twilio secret are refused; every secret a service reads can come from the Secret.
"""

from __future__ import annotations

import base64
import json
import re

import pytest

from ringline.contracts.runtime.permissions import USERS, permissions_table, render_json

from .conftest import CHART, RELEASE, Chart, RenderError
from .manifests import PROD, SERVICES, env, main_container, nats_conf, objects, one, service_deployment

pytestmark = pytest.mark.integration

_USER_LINE = re.compile(r"\{user: \"(?P<user>[^\"]+)\", password: \$(?P<var>\w+), permissions: (?P<grants>\{.*\})\}$")


def rendered_grants(conf: str) -> dict[str, dict]:
    users = {}
    for line in conf.splitlines():
        match = _USER_LINE.match(line.strip())
        if match:
            users[match["user"]] = json.loads(match["grants"])
            assert match["var"] == f"NATS_PASSWORD_{match['user'].upper()}"
    return users


def test_the_charts_permission_file_is_the_table() -> None:
    """files/nats-permissions.json is regenerated: `python -m ringline.contracts.runtime.permissions --write`."""
    assert (CHART / "files" / "nats-permissions.json").read_text() == render_json()


@pytest.mark.parametrize("values", [(), PROD], ids=["default", "production"])
def test_rendered_nats_users_have_exactly_the_tables_grants(chart: Chart, values: tuple[str, ...]) -> None:
    docs = chart.render(*values)
    assert rendered_grants(nats_conf(docs)) == permissions_table()


def test_nats_reads_every_password_from_the_users_secret(chart: Chart) -> None:
    docs = chart.render()
    secret = one(docs, "Secret", f"{RELEASE}-nats-users")
    passwords = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert set(passwords) == set(USERS)
    assert len(set(passwords.values())) == len(USERS)
    assert all(len(p) >= 32 and p[0].isalpha() for p in passwords.values())
    server = main_container(one(docs, "StatefulSet", f"{RELEASE}-nats"))
    for user in USERS:
        ref = env(server)[f"NATS_PASSWORD_{user.upper()}"]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": f"{RELEASE}-nats-users", "key": user}


@pytest.mark.parametrize("values", [(), PROD], ids=["default", "production"])
def test_each_service_logs_in_as_its_own_user(chart: Chart, values: tuple[str, ...]) -> None:
    docs = chart.render(*values)
    for name in SERVICES:
        variables = env(main_container(service_deployment(docs, name)))
        assert variables["NATS_USER"]["value"] == name
        assert variables["NATS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": f"{RELEASE}-nats-users",
                                                                           "key": name}


def test_without_auth_the_server_is_open_and_services_log_in_as_nobody(chart: Chart) -> None:
    docs = chart.render("--set", "nats.auth.enabled=false")
    assert "authorization" not in nats_conf(docs)
    assert f"{RELEASE}-nats-users" not in objects(docs, "Secret")
    assert "NATS_USER" not in env(main_container(service_deployment(docs, "stt")))


def test_tls_for_clients_and_routes_mounts_the_certificates(chart: Chart) -> None:
    docs = chart.render("--set", "nats.tls.enabled=true", "--set", "nats.tls.secretName=nats-certs",
                        "--set", "nats.replicas=3")
    conf = nats_conf(docs)
    assert conf.count("cert_file: /etc/nats-tls/tls.crt") == 2  # clients and cluster routes
    assert "verify: true" in conf
    server = one(docs, "StatefulSet", f"{RELEASE}-nats")["spec"]["template"]["spec"]
    assert {"name": "tls", "secret": {"secretName": "nats-certs"}} in server["volumes"]
    stt = service_deployment(docs, "stt")
    assert env(main_container(stt))["NATS_TLS_CA"]["value"] == "/etc/ringline/nats-tls/ca.crt"
    volumes = {v["name"]: v for v in stt["spec"]["template"]["spec"]["volumes"]}
    assert volumes["nats-tls"]["secret"]["secretName"] == "nats-certs"


def test_tls_without_certificates_is_refused(chart: Chart) -> None:
    with pytest.raises(RenderError, match=r"nats\.tls\.secretName"):
        chart.template("--set", "nats.tls.enabled=true")


def test_production_without_a_twilio_secret_is_refused(chart: Chart) -> None:
    with pytest.raises(RenderError, match="TWILIO_AUTH_TOKEN"):
        chart.template("--set", "environment=production")
    docs = chart.render("--set", "environment=production", "--set-string", "secrets.values.TWILIO_AUTH_TOKEN=abc")
    assert env(main_container(service_deployment(docs, "telephony")))["RINGLINE_ENV"]["value"] == "production"
    chart.render("--set", "environment=production", "--set", "secrets.existingSecret=ringline-keys")


@pytest.mark.parametrize(("key", "service"), [("RINGLINE_TELEPHONY_API_TOKEN", "telephony"),
                                              ("RINGLINE_TELEPHONY_STREAM_SECRET", "telephony"),
                                              ("RINGLINE_MEMORY_REPORT_SECRET", "memory")])
def test_api_token_and_signing_secrets_come_from_the_secret(chart: Chart, key: str, service: str) -> None:
    docs = chart.render("--set-string", f"secrets.values.{key}=s3cret")
    secret = one(docs, "Secret", f"{RELEASE}-secrets")
    assert base64.b64decode(secret["data"][key]).decode() == "s3cret"
    ref = env(main_container(service_deployment(docs, service)))[key]["valueFrom"]["secretKeyRef"]
    assert ref["name"] == f"{RELEASE}-secrets" and ref["key"] == key
