"""How the CLIs find the stack `ringline up` started: its operator URL under the data directory,
`.ringline` or $RINGLINE_DATA_DIR, so `ringline up --data-dir X` and the other commands agree."""

from __future__ import annotations

from pathlib import Path

import pytest

from ringline.nats_config import client_url, operator_url, write_users

pytestmark = pytest.mark.unit


def test_the_clis_log_in_to_a_stack_started_with_another_data_dir(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    users = write_users(tmp_path / "elsewhere", "nats://127.0.0.1:4333")
    monkeypatch.delenv("NATS_URL", raising=False)
    monkeypatch.chdir(tmp_path)  # no .ringline here
    assert client_url() == "nats://127.0.0.1:4222"  # nothing started from here: the default server

    monkeypatch.setenv("RINGLINE_DATA_DIR", str(tmp_path / "elsewhere"))
    url = client_url()
    assert url.startswith("nats://operator:") and url.endswith("@127.0.0.1:4333")
    assert users.passwords["operator"] in url
    assert client_url("nats://other:4222") == "nats://other:4222"  # --nats still wins


def test_an_explicit_directory_is_read_as_given(tmp_path: Path) -> None:
    write_users(tmp_path, "nats://127.0.0.1:4444")
    assert (operator_url(tmp_path) or "").endswith("@127.0.0.1:4444")
    assert operator_url(tmp_path / "missing") is None
