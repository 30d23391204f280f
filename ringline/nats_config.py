"""The embedded nats-server's users: one per service plus `operator` (the CLIs), random passwords.

`ringline up` writes `<data-dir>/nats/nats.conf` (the permission table of
`contracts/runtime/permissions.py`) and `<data-dir>/nats/operator.url`, both readable by the
owner only. Passwords are new on every start: every process restarts with the server.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from ringline.contracts.runtime.permissions import OPERATOR, USERS, nats_auth_config

DEFAULT_DATA_DIR = Path(".ringline")
DEFAULT_NATS_URL = "nats://127.0.0.1:4222"


@dataclass(frozen=True)
class NatsUsers:
    config: Path  # the nats-server config file (pass with -c)
    passwords: dict[str, str]

    def env(self, service: str) -> dict[str, str]:
        """What one service's process needs to log in as its own user."""
        return {"NATS_USER": service, "NATS_PASSWORD": self.passwords[service]}


def _private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    path.chmod(0o600)


def with_credentials(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, f"{quote(user, safe='')}:{quote(password, safe='')}@{host}", parts.path,
                       parts.query, parts.fragment))


def write_users(data_dir: Path, server_url: str) -> NatsUsers:
    """New passwords, the server config holding them and the operator's URL, under `data_dir/nats`."""
    passwords = {user: secrets.token_urlsafe(24) for user in USERS}
    config = (data_dir / "nats" / "nats.conf").resolve()
    _private(config, "# Written by `ringline up`: one user per service (contracts/runtime/permissions.py).\n"
             + nats_auth_config(passwords))
    _private(data_dir / "nats" / "operator.url", with_credentials(server_url, OPERATOR, passwords[OPERATOR]) + "\n")
    return NatsUsers(config, passwords)


def data_dir() -> Path:
    """Where `ringline up` keeps its store, logs and NATS users: $RINGLINE_DATA_DIR, or .ringline."""
    return Path(os.environ.get("RINGLINE_DATA_DIR") or DEFAULT_DATA_DIR)


def operator_url(directory: Path | None = None) -> str | None:
    """The URL (with the operator's password) of the stack `ringline up` runs from `directory`
    (default: `data_dir()`), if any."""
    try:
        return ((directory or data_dir()) / "nats" / "operator.url").read_text().strip() or None
    except OSError:
        return None


def client_url(explicit: str | None = None) -> str:
    """The NATS URL of a CLI: `--nats`, $NATS_URL, the operator URL of a local `ringline up`, or
    the default local server."""
    return explicit or os.environ.get("NATS_URL") or operator_url() or DEFAULT_NATS_URL


def client_options() -> dict[str, object]:
    """`nats.connect` options of a CLI: give up after 2 s without retrying (nats-py would retry an
    unreachable server for ever), the operator's reply inboxes, and the credentials or TLS set in
    the environment ($NATS_USER/$NATS_PASSWORD, $NATS_CREDS, $NATS_TLS_CA...)."""
    from ringline.contracts.runtime.broker import connect_options
    from ringline.contracts.runtime.settings import ServiceSettings

    return {"connect_timeout": 2, "allow_reconnect": False, "max_reconnect_attempts": 0,
            **connect_options(ServiceSettings(), OPERATOR)}


async def connect_client(url: str, timeout: float = 3.0) -> Any:
    """A CLI's connection to `url`, or an exception within `timeout` seconds: nats-py 2.16 keeps
    retrying a refused connection even with reconnects off."""
    import nats

    return await asyncio.wait_for(nats.connect(url, **client_options()), timeout)


def safe_url(url: str) -> str:
    """`url` without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, f"{parts.username}:***@{host}", parts.path, parts.query, parts.fragment))
