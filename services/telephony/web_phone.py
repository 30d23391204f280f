"""The browser softphone's server side: its pages' assets, the agents to pick from, and its socket.

The socket speaks the Twilio Media Streams protocol (the browser sends `connected`, `start`,
20 ms mu-law `media`, echoed `mark`s and `stop`; the edge sends `media`, `mark` and `clear`), so
a browser call runs through the very `CallStream` a Twilio call does: barge-in, pause/resume and
marks behave the same. The browser names its call `BR<32 hex>`; there is no Twilio behind it, so
an agent's hang-up or transfer just closes the socket.
"""

from __future__ import annotations

import logging
import mimetypes
from pathlib import Path

from fastapi import APIRouter, Depends, HTTPException, WebSocket
from fastapi.responses import FileResponse, JSONResponse
from faststream.nats import NatsBroker

from ringline.contracts.agents import WatchedAgentBook

from .registry import CLOSE_POLICY, CallRegistry
from .settings import TelephonySettings
from .stream import CallStream
from .web_auth import NO_TOKEN_WHEN_EXPOSED, WebGate, same_origin

WEB_DIR = Path(__file__).resolve().parent / "web"
PHONE_PATH = "/phone"
PHONE_STREAM_PATH = "/phone/stream"
DASHBOARD_PATH = "/dashboard"
ASSET_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html", ".svg": "image/svg+xml"}

log = logging.getLogger("ringline.telephony.phone")


def page(name: str) -> FileResponse:
    return FileResponse(WEB_DIR / name, media_type="text/html", headers={"Cache-Control": "no-cache"})


def pages_router() -> APIRouter:
    """The static pages and their assets (no data in them: public)."""
    router = APIRouter()
    assets = {p.name for p in WEB_DIR.iterdir() if p.suffix in ASSET_TYPES}

    @router.get(PHONE_PATH, include_in_schema=False)
    async def phone() -> FileResponse:
        return page("phone.html")

    @router.get(DASHBOARD_PATH, include_in_schema=False)
    async def dashboard() -> FileResponse:
        return page("dashboard.html")

    @router.get(DASHBOARD_PATH + "/calls/{call_id}", include_in_schema=False)
    async def call_page(call_id: str) -> FileResponse:
        return page("call.html")

    @router.get("/web/{name}", include_in_schema=False)
    async def asset(name: str) -> FileResponse:
        if name not in assets:
            raise HTTPException(404, "no such file")
        kind = ASSET_TYPES.get(Path(name).suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"
        return FileResponse(WEB_DIR / name, media_type=kind, headers={"Cache-Control": "no-cache"})

    return router


def phone_router(settings: TelephonySettings, gate: WebGate, broker: NatsBroker, registry: CallRegistry,
                 agents: WatchedAgentBook) -> APIRouter:
    router = APIRouter()

    @router.get(PHONE_PATH + "/agents", dependencies=[Depends(gate.check)])
    async def list_agents() -> JSONResponse:
        book = agents.book
        listed = [{"id": a.id, "name": a.name or a.id, "numbers": list(a.numbers)} for a in book.agents]
        return JSONResponse({"agents": listed, "default": book.fallback.id if agents.path else settings.default_agent})

    @router.websocket(PHONE_STREAM_PATH)
    async def stream(ws: WebSocket) -> None:
        await ws.accept()
        token = gate.presented(ws.headers, ws.query_params)
        if gate.disabled or not gate.allows(token, ws.headers.get("host", "")):
            await ws.close(code=CLOSE_POLICY, reason=NO_TOKEN_WHEN_EXPOSED if gate.disabled else "invalid token")
            return
        if not same_origin(ws.headers, settings.base_url):
            log.warning("refused a softphone socket from origin %s", ws.headers.get("origin"))
            await ws.close(code=CLOSE_POLICY, reason="cross-origin softphone refused")
            return
        await CallStream(ws, broker, settings, registry, None, agents).run()

    return router
