"""Runs asked for now: one session (the session page's Evaluate button, the API), or
every session active since a time (``threadline evaluate --since``, the API).

On demand, an evaluator judges whatever it is asked to, online or not and whatever its
sampling rate; its filter, and any filter given with the request, still apply.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from threadline.server.errors import NotFound
from threadline.server.evaluation.model import Evaluator, EvaluatorFilter, RunRecord
from threadline.server.evaluation.selection import matches, plan_runs
from threadline.server.model import SessionDetail, SessionQuery, datetime_to_ns
from threadline.server.store import Store


def runs_for_session(
    store: Store, project_id: int, evaluator: Evaluator, session_id: str
) -> list[RunRecord]:
    """Queue the runs judging one session (its filter is not applied: asked by name)."""
    session = store.get_session(project_id, session_id)
    if session is None:
        raise NotFound(f"no session {session_id!r} in this project")
    runs = _plan(project_id, evaluator, session)
    store.add_runs(project_id, runs)
    return runs


def sessions_since(
    store: Store, project_id: int, since: datetime, selection: EvaluatorFilter
) -> Iterator[SessionDetail]:
    """Sessions active at or after ``since`` that match ``selection``, newest first."""
    query = SessionQuery(limit=200, start=since, user_id=selection.user_id)
    while True:
        page = store.list_sessions(project_id, query)
        for session in page.items:
            detail = store.get_session(project_id, session.session_id)
            if detail is not None and matches(selection, detail):
                yield detail
        if page.next_cursor is None:
            return
        query = query.model_copy(update={"cursor": page.next_cursor})


def runs_since(
    store: Store,
    project_id: int,
    evaluator: Evaluator,
    since: datetime,
    extra: EvaluatorFilter,
    max_sessions: int | None = None,
) -> list[RunRecord]:
    """Queue the runs judging every session active since ``since`` that both the
    evaluator's filter and ``extra`` keep."""
    runs: list[RunRecord] = []
    for count, session in enumerate(sessions_since(store, project_id, since, extra), 1):
        if matches(evaluator.filter, session):
            runs += _plan(project_id, evaluator, session)
        if max_sessions is not None and count >= max_sessions:
            break
    for i in range(0, len(runs), 500):
        store.add_runs(project_id, runs[i : i + 500])
    return runs


def _plan(project_id: int, evaluator: Evaluator, session: SessionDetail) -> list[RunRecord]:
    end_ns = datetime_to_ns(session.end_time)
    return plan_runs(project_id, evaluator, session.session_id, end_ns, session.traces, "manual")
