"""The JSON query API: sessions and traces of the caller's project.

Every route is project-scoped by the API key. Handlers are plain ``def``: FastAPI runs
them in its thread pool, where blocking store reads belong. The web pages call the same
store queries, so both show the same numbers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from threadline.server.auth import CurrentProject
from threadline.server.errors import NotFound
from threadline.server.model import (
    Page,
    Session,
    SessionDetail,
    SessionQuery,
    Status,
    Trace,
    TraceDetail,
    TraceQuery,
)
from threadline.server.store import Store

router = APIRouter(prefix="/api/v1", tags=["query"])

Limit = Annotated[int, Query(ge=1, le=500, description="Page size.")]
Cursor = Annotated[str | None, Query(description="`next_cursor` of the previous page.")]
Start = Annotated[
    datetime | None, Query(description="Only what was active at or after this time.")
]
End = Annotated[datetime | None, Query(description="Only what was active at or before this time.")]
Text = Annotated[str | None, Query(description="Text search in ids, inputs and outputs.")]


def get_store(request: Request) -> Store:
    return request.app.state.store


CurrentStore = Annotated[Store, Depends(get_store)]


@router.get("/sessions", summary="Sessions, newest activity first")
def list_sessions(
    project: CurrentProject,
    store: CurrentStore,
    limit: Limit = 50,
    cursor: Cursor = None,
    user_id: str | None = None,
    start: Start = None,
    end: End = None,
    q: Text = None,
) -> Page[Session]:
    query = SessionQuery(limit=limit, cursor=cursor, user_id=user_id, start=start, end=end, q=q)
    return store.list_sessions(project.id, query)


@router.get("/sessions/{session_id}", summary="One session with its traces in start order")
def get_session(session_id: str, project: CurrentProject, store: CurrentStore) -> SessionDetail:
    session = store.get_session(project.id, session_id)
    if session is None:
        raise NotFound(f"no session {session_id!r} in project {project.name!r}")
    return session


@router.get("/traces", summary="Traces, newest first")
def list_traces(
    project: CurrentProject,
    store: CurrentStore,
    limit: Limit = 50,
    cursor: Cursor = None,
    session_id: str | None = None,
    user_id: str | None = None,
    status: Status | None = None,
    start: Start = None,
    end: End = None,
    q: Text = None,
) -> Page[Trace]:
    query = TraceQuery(
        limit=limit,
        cursor=cursor,
        session_id=session_id,
        user_id=user_id,
        status=status,
        start=start,
        end=end,
        q=q,
    )
    return store.list_traces(project.id, query)


@router.get("/traces/{trace_id}", summary="One trace with all its spans")
def get_trace(trace_id: str, project: CurrentProject, store: CurrentStore) -> TraceDetail:
    trace = store.get_trace(project.id, trace_id.lower())
    if trace is None:
        raise NotFound(f"no trace {trace_id!r} in project {project.name!r}")
    return trace
