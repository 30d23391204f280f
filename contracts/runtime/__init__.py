"""Bus runtime shared by every service: settings, broker, call affinity, health, telemetry."""

from ..events import STAGE_QUERY, STAGE_READY
from .broker import create_broker
from .calls import CallBus, CallSession
from .leases import CallAnnouncer
from .load import LoadGauge
from .logs import configure_logging
from .router import CallRouter
from .service import serve, service_app
from .settings import ServiceSettings
from .telemetry import (
    extract_context,
    inject_headers,
    seconds_to_ns,
    setup_telemetry,
    shutdown_telemetry,
    tracer,
)

__all__ = [
    "STAGE_QUERY", "STAGE_READY", "CallAnnouncer", "CallBus", "CallRouter", "CallSession", "LoadGauge",
    "ServiceSettings", "configure_logging",
    "create_broker", "extract_context", "inject_headers", "seconds_to_ns", "serve",
    "service_app", "setup_telemetry", "shutdown_telemetry", "tracer",
]
