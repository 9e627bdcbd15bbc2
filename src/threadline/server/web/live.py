"""Live mode: Server-Sent Events that push new and updated rows to an open tab.

The stream polls the store's trace feed (``live_watermark`` + ``changed_after``) once
a second, with the page's own filters, and sends each changed row as rendered HTML.
Every event carries the watermark (as an opaque token of its project,
``live_position.py``) as its SSE ``id``, so when the browser reconnects
(EventSource does so by itself) it resumes from ``Last-Event-ID`` and misses nothing.
Streams end after ``_LIFETIME`` seconds and the browser reconnects: a server that is
shutting down then never waits long on an open tab.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from threadline.server.http.query_names import reads
from threadline.server.model import Project, TraceQuery
from threadline.server.score_types import filter_types
from threadline.server.store import Store
from threadline.server.web.auth import PageProject
from threadline.server.web.filters import TAB_PARAMETERS, Filters
from threadline.server.web.live_position import LivePositions
from threadline.server.web.render import templates
from threadline.server.web.score_columns import MAX_COLUMNS, ScoreColumn, columns_from_params

router = APIRouter(include_in_schema=False)

_POLL_SECONDS = 1.0
_LIFETIME = 30.0
# A session page only needs to know that some turn changed, not every one.
_MAX_CHANGED = 50


def _event(name: str, event_id: str, data: dict) -> str:
    # json.dumps escapes newlines, so the data fits on one "data:" line.
    return f"event: {name}\nid: {event_id}\ndata: {json.dumps(data)}\n\n"


def _start(request: Request, after: str | None, store: Store, project: Project) -> int:
    """Where the stream starts: the browser's Last-Event-ID (a reconnect), else the
    page's ``after``, else now. Positions are opaque tokens (``live_position.py``); one
    that does not open is a 400."""
    positions: LivePositions = request.app.state.live_positions
    token = request.headers.get("last-event-id") or after
    if token:
        return positions.open(project.id, token.strip())
    return store.live_watermark(project.id)


async def _stream(
    request: Request,
    start: int,
    changed: Callable[[int], list[dict[str, Any]]],
    watermark: Callable[[], int],
    name: str,
    seal: Callable[[int], str],
) -> AsyncIterator[str]:
    last = start
    yield "retry: 1000\n\n" + _event("ready", seal(last), {})
    deadline = time.monotonic() + _LIFETIME
    while time.monotonic() < deadline and not await request.is_disconnected():
        current = await run_in_threadpool(watermark)
        if current > last:
            # Read the watermark first, then what changed after the previous one: a
            # write in between is sent twice (the browser replaces the row), never lost.
            for data in await run_in_threadpool(changed, last):
                yield _event(name, seal(current), data)
            last = current
            yield _event("watermark", seal(last), {})
        else:
            yield ": idle\n\n"  # keeps proxies from closing a quiet stream
        await asyncio.sleep(_POLL_SECONDS)


def _response(body: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(
        body,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def _columns(request: Request, store: Store, project: Project) -> list[ScoreColumn]:
    return columns_from_params(request.query_params, store.list_score_configs(project.id))


def _row(row_id: str, html: str, scores: Mapping[str, Any], shown: list[str]) -> dict[str, Any]:
    """A row's event; ``new_column`` when the row has a score name that the page would
    show as a column on a reload but does not (the page then fetches itself: its header
    and every row gain the column)."""
    data: dict[str, Any] = {"id": row_id, "html": html}
    if sorted({*shown, *scores})[:MAX_COLUMNS] != sorted(shown):
        data["new_column"] = True
    return data


async def _live(
    request: Request,
    project: Project,
    after: str | None,
    changed: Callable[[int], list[dict[str, Any]]],
    event: str,
) -> StreamingResponse:
    """A live stream of ``event``s, one for each of the data (``id``, ``html``, ...)
    that ``changed(since)`` gives whenever the project's watermark moves, oldest first."""
    store: Store = request.app.state.store
    start = await run_in_threadpool(_start, request, after, store, project)
    positions: LivePositions = request.app.state.live_positions
    return _response(
        _stream(
            request,
            start,
            changed,
            lambda: store.live_watermark(project.id),
            event,
            functools.partial(positions.seal, project.id),
        )
    )


def _takes(tab: str) -> Any:
    """A list's stream: its page's filters (never a cursor: live mode is off past the
    first page) and its score columns."""
    return reads(*(name for name in TAB_PARAMETERS[tab] if name != "cursor"), "column", "type")


@router.get("/live/traces", dependencies=[_takes("traces")])
async def live_traces(
    request: Request, project: PageProject, after: str | None = None
) -> StreamingResponse:
    store: Store = request.app.state.store
    row = templates.env.get_template("_trace_rows.html")
    columns = await run_in_threadpool(_columns, request, store, project)
    shown = [c.name for c in columns]
    filters = Filters.from_params(request.query_params, "traces")
    types = filter_types(request.app.state, store, project.id)

    def changed(since: int) -> list[dict[str, Any]]:
        query = filters.trace_query(types).model_copy(
            update={"changed_after": since, "cursor": None}
        )
        items = store.list_traces(project.id, query).items
        # Oldest first, so that prepending each leaves the newest on top.
        return [
            _row(t.trace_id, row.render(traces=[t], score_columns=columns), t.scores, shown)
            for t in reversed(items)
        ]

    return await _live(request, project, after, changed, "row")


@router.get("/live/session")
async def live_session(
    request: Request, project: PageProject, session_id: str, after: str | None = None
) -> StreamingResponse:
    """The session page's stream: an event for each trace of the session written after
    the page's position; the page then renders itself again (totals, timeline and
    transcript all follow from the new turns)."""
    store: Store = request.app.state.store

    def changed(since: int) -> list[dict[str, Any]]:
        query = TraceQuery(session_id=session_id, changed_after=since, limit=_MAX_CHANGED)
        return [{"id": t.trace_id} for t in store.list_traces(project.id, query).items]

    return await _live(request, project, after, changed, "turn")


@router.get("/live/sessions", dependencies=[_takes("sessions")])
async def live_sessions(
    request: Request, project: PageProject, after: str | None = None
) -> StreamingResponse:
    store: Store = request.app.state.store
    row = templates.env.get_template("_session_rows.html")
    idle_seconds = request.app.state.settings.session_idle_seconds
    columns = await run_in_threadpool(_columns, request, store, project)
    shown = [c.name for c in columns]
    filters = Filters.from_params(request.query_params, "sessions")
    types = filter_types(request.app.state, store, project.id)

    def changed(since: int) -> list[dict[str, Any]]:
        query = filters.session_query(types).model_copy(
            update={"changed_after": since, "cursor": None}
        )
        items = store.list_sessions(project.id, query).items
        return [
            _row(
                s.session_id,
                row.render(sessions=[s], idle_seconds=idle_seconds, score_columns=columns),
                s.scores,
                shown,
            )
            for s in reversed(items)
        ]

    return await _live(request, project, after, changed, "row")
