"""The broker factory every service uses: msgpack codec, quiet per-message logs, endless reconnects,
and the service's own NATS credentials (user/password, creds file or nkey seed) and TLS."""

from __future__ import annotations

import logging
import ssl
from typing import Any

from faststream.nats import NatsBroker
from faststream.nats.security import (
    NatsCredentials,
    NatsNKey,
    NatsSecurity,
    NatsUserPassword,
    parse_security,
)

from ..codec import MsgpackCodec
from .bad_messages import DropBadMessages
from .permissions import inbox_prefix
from .settings import ServiceSettings


def _tls(settings: ServiceSettings) -> ssl.SSLContext | None:
    if settings.nats_tls_ca is None and settings.nats_tls_cert is None:
        return None
    context = ssl.create_default_context(cafile=str(settings.nats_tls_ca) if settings.nats_tls_ca else None)
    if settings.nats_tls_cert is not None:
        key = str(settings.nats_tls_key) if settings.nats_tls_key else None
        context.load_cert_chain(str(settings.nats_tls_cert), key)
    return context


def nats_security(settings: ServiceSettings) -> NatsSecurity | None:
    """How this process logs in to NATS: a creds file, an nkey seed or a user and password (the
    first one set), over TLS when a CA or client certificate is set. None: anonymous, plain."""
    tls = _tls(settings)
    if settings.nats_creds is not None:
        return NatsCredentials.from_file(settings.nats_creds, ssl_context=tls)
    if settings.nats_nkey_seed is not None:
        return NatsNKey.from_seed(settings.nats_nkey_seed.get_secret_value(), ssl_context=tls)
    if settings.nats_user:
        password = settings.nats_password.get_secret_value() if settings.nats_password is not None else ""
        return NatsUserPassword(settings.nats_user, password, ssl_context=tls)
    return NatsSecurity(ssl_context=tls) if tls is not None else None


def connect_options(settings: ServiceSettings, user: str) -> dict[str, Any]:
    """Keyword arguments of a plain `nats.connect` (the CLIs) with the same login and TLS, and
    `user`'s own reply inboxes (its permissions cover only those)."""
    options = {k: v for k, v in parse_security(nats_security(settings)).items() if v is not None}
    return {**options, "inbox_prefix": inbox_prefix(settings.nats_user or user)}


def create_broker(settings: ServiceSettings, service: str) -> NatsBroker:
    return NatsBroker(
        settings.nats_url,
        name=f"ringline-{service}",
        codec=MsgpackCodec(),
        # FastStream logs every message at this level; 50 audio frames a second belong at DEBUG.
        log_level=logging.DEBUG,
        logger=logging.getLogger(f"ringline.{service}.bus"),
        max_reconnect_attempts=-1,
        reconnect_time_wait=1,
        graceful_timeout=settings.drain_timeout_s,
        middlewares=[DropBadMessages],  # one warning per bad message, never a traceback
        security=nats_security(settings),
        inbox_prefix=inbox_prefix(settings.nats_user or service),
    )
