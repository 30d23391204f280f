"""Fail closed: an edge reachable from outside (a public URL that is not loopback) or in
production does not start without TWILIO_AUTH_TOKEN, and says why."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ringline.services.telephony.settings import TelephonySettings


@pytest.mark.unit
@pytest.mark.parametrize(("values", "refused"), [
    ({"public_url": "https://abc.ngrok.app"}, True),
    ({"public_url": "http://10.0.0.5:8080"}, True),
    ({"RINGLINE_ENV": "production"}, True),
    ({"RINGLINE_ENV": "production", "public_url": "http://127.0.0.1:8080"}, True),
    ({"public_url": "http://127.0.0.1:8080"}, False),
    ({"public_url": "http://localhost:8080"}, False),
    ({"public_url": "http://[::1]:8080"}, False),
    ({}, False),
    ({"public_url": "https://abc.ngrok.app", "twilio_auth_token": "tok"}, False),
    ({"RINGLINE_ENV": "production", "twilio_auth_token": "tok"}, False),
])
def test_which_edges_need_a_twilio_token(values: dict, refused: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TWILIO_AUTH_TOKEN", raising=False)
    monkeypatch.delenv("RINGLINE_ENV", raising=False)
    reason = TelephonySettings(**values).exposed_without_twilio_token()
    assert (reason is not None) == refused, reason


@pytest.mark.integration
def test_a_public_edge_without_a_twilio_token_refuses_to_start() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("TWILIO_AUTH_TOKEN", "RINGLINE_ENV")}
    env["RINGLINE_TELEPHONY_PUBLIC_URL"] = "https://abc.ngrok.app"
    proc = subprocess.run([sys.executable, "-m", "ringline.services.telephony"], env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2
    output = proc.stdout + proc.stderr
    assert "refusing to start" in output and "TWILIO_AUTH_TOKEN" in output and "abc.ngrok.app" in output
