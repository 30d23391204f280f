"""The dashboard's data: past calls from the memory service, one call's waterfall, its voicemail,
and live updates as server-sent events (`text/event-stream`, one JSON object per `data:` line).

    GET /dashboard/api/calls?number=&agent=&since=&until=&limit=   past calls, newest first
    GET /dashboard/api/calls/{id}                                  the call page's view (see `waterfall`)
    GET /dashboard/api/calls/{id}/voicemail.wav                    the caller's message
    GET /dashboard/api/live                                        calls in progress: snapshot, then changes
    GET /dashboard/api/calls/{id}/live                             one call: transcript, replies, events, state
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.status import HTTP_400_BAD_REQUEST, HTTP_404_NOT_FOUND, HTTP_503_SERVICE_UNAVAILABLE

from ringline.contracts import subjects
from ringline.contracts.messages import CallListRequest

from .live_feed import LiveFeed, Update, Watcher
from .memory_client import MemoryClient, MemoryUnavailable
from .settings import TelephonySettings
from .waterfall import call_view
from .web_auth import WebGate

API = "/dashboard/api"
KEEPALIVE_S = 15.0
CHECK_S = 1.0  # how often an idle stream looks whether the edge is draining
SEED_LIMIT = 200

log = logging.getLogger("ringline.telephony.dashboard")


def sse(update: Update) -> str:
    return f"data: {json.dumps(update, separators=(',', ':'), default=str)}\n\n"


async def event_stream(first: list[Update], watcher: Watcher,
                       closing: Callable[[], bool] = lambda: False) -> AsyncIterator[str]:
    """`hello` first: once a browser has it, nothing published on the call is missed any more.
    Ends when the watcher falls behind (the browser's EventSource reconnects) and when the edge
    drains (`closing()`): an open dashboard must not hold up a shutdown."""
    yield sse({"type": "hello"})
    for update in first:
        yield sse(update)
    idle = 0.0
    while not closing():
        try:
            queued = await asyncio.wait_for(watcher.queue.get(), CHECK_S)
        except TimeoutError:
            idle += CHECK_S
            if idle >= KEEPALIVE_S:
                idle = 0.0
                yield ": keep-alive\n\n"
            continue
        if queued is None:
            return
        yield sse(queued)


def _checked(call_id: str) -> str:
    try:
        return subjects.check_call_id(call_id)
    except subjects.InvalidCallId as exc:
        raise HTTPException(HTTP_400_BAD_REQUEST, str(exc)) from None


def dashboard_router(settings: TelephonySettings, gate: WebGate, feed: LiveFeed, memory: MemoryClient,
                     closing: Callable[[], bool] = lambda: False) -> APIRouter:
    router = APIRouter(prefix=API, dependencies=[Depends(gate.check)])

    async def streamed(first: list[Update], call_id: str | None) -> StreamingResponse:
        async def body() -> AsyncIterator[str]:
            async with feed.watch(call_id) as watcher:
                async for chunk in event_stream(first, watcher, closing):
                    yield chunk

        return StreamingResponse(body(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @router.get("/calls")
    async def calls(number: str = "", agent: str = "", since: float = 0.0, until: float = 0.0,
                    limit: int = Query(default=50, ge=1, le=1000)) -> JSONResponse:
        request = CallListRequest(limit=limit, agent_id=agent.strip(), number=number.strip()[:40],
                                  since=since, until=until)
        try:
            found = await memory.calls(request)
        except MemoryUnavailable as exc:
            raise HTTPException(HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from None
        return JSONResponse({"calls": [c.model_dump() for c in found]})

    @router.get("/calls/{call_id}")
    async def call(call_id: str) -> JSONResponse:
        try:
            record = await memory.call(_checked(call_id))
        except MemoryUnavailable as exc:
            raise HTTPException(HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from None
        if record is None:
            raise HTTPException(HTTP_404_NOT_FOUND, f"no call {call_id}")
        return JSONResponse(call_view(record, settings.jaeger_ui_url))

    @router.get("/calls/{call_id}/voicemail.wav")
    async def voicemail(call_id: str) -> Response:
        try:
            wav = await memory.voicemail_wav(_checked(call_id))
        except MemoryUnavailable as exc:
            raise HTTPException(HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from None
        if wav is None:
            raise HTTPException(HTTP_404_NOT_FOUND, f"call {call_id} has no voicemail audio")
        return Response(wav, media_type="audio/wav", headers={"Cache-Control": "private, max-age=300"})

    @router.get("/live")
    async def live() -> StreamingResponse:
        await _seed(feed, memory, settings.dashboard_live_window_s)
        return await streamed([{"type": "snapshot", "calls": feed.board.views(), "now": time.time()}], None)

    @router.get("/calls/{call_id}/live")
    async def call_live(call_id: str) -> StreamingResponse:
        known = feed.board.calls.get(_checked(call_id))
        first: list[dict[str, Any]] = [{"type": "call", "call": known.view()}] if known else []
        return await streamed(first, call_id)

    return router


async def _seed(feed: LiveFeed, memory: MemoryClient, window_s: float) -> None:
    """Calls that began before this edge was listening, as the memory service holds them open."""
    try:
        summaries = await memory.calls(CallListRequest(limit=SEED_LIMIT, since=time.time() - window_s))
    except MemoryUnavailable as exc:
        log.info("live calls not seeded from memory: %s", exc)
        return
    for summary in summaries:
        feed.board.seed(summary)
