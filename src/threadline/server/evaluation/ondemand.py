"""Runs asked for now: one session (the session page's Evaluate button, the API), or
every session active since a time (``threadline evaluate --since``, the API), or the
sessions that ended before an online evaluator was created (``judge_existing_since``).

On demand, an evaluator judges whatever it is asked to, online or not and whatever its
sampling rate; its filter, and any filter given with the request, still apply. The
sessions that ended before an online evaluator existed are judged as its sweep would
have judged them: its filter and its sample, run ids derived from session and end.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from threadline.server.errors import BadRequest, Conflict, NotFound
from threadline.server.evaluation.model import Evaluator, EvaluatorFilter, EvaluatorIn, RunRecord
from threadline.server.evaluation.selection import matches, plan_runs, sampled
from threadline.server.model import SessionDetail, SessionQuery, datetime_to_ns
from threadline.server.store import Store


def runs_for_session(
    store: Store,
    project_id: int,
    evaluator: Evaluator,
    session_id: str,
    max_waiting: int | None = None,
) -> list[RunRecord]:
    """Queue the runs judging one session (its filter is not applied: asked by name);
    ``max_waiting``: ``check_room`` first."""
    session = store.get_session(project_id, session_id)
    if session is None:
        raise NotFound(f"no session {session_id!r} in this project")
    runs = _plan(project_id, evaluator, session)
    with room_for(store, project_id, len(runs), max_waiting):
        store.add_runs(project_id, runs)
    return runs


def sessions_since(
    store: Store,
    project_id: int,
    since: datetime,
    selection: EvaluatorFilter,
    max_read: int | None = None,
) -> Iterator[SessionDetail]:
    """Sessions active at or after ``since`` that match ``selection``, newest first,
    among the newest ``max_read`` (matching or not: a filter that keeps few must not
    make one request read the whole window)."""
    query = SessionQuery(limit=200, start=since, user_id=selection.user_id)
    read = 0
    while True:
        page = store.list_sessions(project_id, query)
        for session in page.items:
            if max_read is not None and read >= max_read:
                return
            read += 1
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
    max_runs: int | None = None,
    max_read: int | None = None,
    max_waiting: int | None = None,
) -> list[RunRecord]:
    """Queue the runs judging every session active since ``since`` that both the
    evaluator's filter and ``extra`` keep: at most ``max_sessions`` of them, at most
    ``max_runs`` runs (a trace evaluator's one a trace), found among the newest
    ``max_read`` sessions (None: no bound); ``max_waiting``: ``check_room`` first."""
    runs: list[RunRecord] = []
    found = sessions_since(store, project_id, since, extra, max_read)
    for count, session in enumerate(found, 1):
        if matches(evaluator.filter, session):
            runs += _plan(project_id, evaluator, session)
        if max_runs is not None and len(runs) >= max_runs:
            del runs[max_runs:]
            break
        if max_sessions is not None and count >= max_sessions:
            break
    with room_for(store, project_id, len(runs), max_waiting):
        queue(store, project_id, runs)
    return runs


# How far back, and how many sessions, an evaluator judges when it is created with
# ``judge_existing_since``: a bound on the work one request queues (the newest first).
# Runs too: a trace evaluator queues one a trace, and a session has any number of them.
# Reads too: the sessions read to find those, kept or not.
EXISTING_MAX_AGE = timedelta(days=30)
EXISTING_MAX_SESSIONS = 1000
EXISTING_MAX_RUNS = 10_000
EXISTING_MAX_READ = 10_000


def check_existing(evaluator: EvaluatorIn, since: datetime, now: datetime) -> None:
    """``BadRequest`` unless ``evaluator`` may judge the sessions ended since ``since``."""
    if not evaluator.online:
        raise BadRequest(
            "judge_existing_since needs an online evaluator (an offline one judges what it"
            " is asked: threadline evaluate NAME --since 7d, or POST /api/v1/evaluation-runs"
            " with since)"
        )
    # In ns: a time without a zone is UTC, as everywhere in the API.
    if datetime_to_ns(since) < datetime_to_ns(now - EXISTING_MAX_AGE):
        raise BadRequest(f"judge_existing_since: at most {EXISTING_MAX_AGE.days} days ago")


def plan_existing(
    store: Store, project_id: int, evaluator: EvaluatorIn, since: datetime, ended_before_ns: int
) -> list[RunRecord]:
    """The runs judging the sessions active since ``since`` that ended by
    ``ended_before_ns`` (their last trace no later), newest first, at most
    ``EXISTING_MAX_SESSIONS``: those an evaluator created now would never judge, its
    sweep watching only the sessions that end after that (the two meet exactly: the
    sweep's first mark is the same moment). Ids as the sweep's: the runs queued already
    are left out, and asking again queues none twice. At most ``EXISTING_MAX_RUNS``
    runs, found among the newest ``EXISTING_MAX_READ`` sessions. Reads only."""
    runs: list[RunRecord] = []
    seen = 0
    found = sessions_since(store, project_id, since, evaluator.filter, EXISTING_MAX_READ)
    for session in found:
        end_ns = datetime_to_ns(session.end_time)
        if end_ns > ended_before_ns:
            continue
        if sampled(evaluator, session.session_id):
            runs += plan_runs(
                project_id, evaluator, session.session_id, end_ns, session.traces, "online"
            )
        seen += 1
        if seen >= EXISTING_MAX_SESSIONS or len(runs) >= EXISTING_MAX_RUNS:
            del runs[EXISTING_MAX_RUNS:]
            break
    queued = store.get_runs(project_id, [r.id for r in runs]) if runs else {}
    return [r for r in runs if r.id not in queued]


def check_room(store: Store, project_id: int, adding: int, max_waiting: int) -> None:
    """``Conflict`` if queueing ``adding`` runs more would leave the project more than
    ``max_waiting`` runs waiting: a bound on what requests may pile up in total (each
    one is bounded, but they may be made over and over), as the sweep's pause is for
    online judging (``online.sweep``)."""
    if adding == 0:
        return
    waiting = store.runs_waiting(project_id)
    if waiting + adding > max_waiting:
        raise Conflict(
            f"this would queue {adding:,} run{'s' if adding != 1 else ''}, and the project"
            f" has {waiting:,} waiting:"
            f" at most {max_waiting:,} may wait (the setting evaluation_max_waiting_runs)."
            " Ask again once they are judged, or for fewer sessions; nothing was changed."
        )


# Held from a request's check of the room to its runs queued: requests checked at once
# each saw room for themselves and all queued (16 at once, one run each, with room for
# 5: 11 waiting). Servers sharing a store do not share it: each may overshoot by one
# request's runs.
_QUEUEING = threading.Lock()


@contextmanager
def room_for(store: Store, project_id: int, adding: int, max_waiting: int | None) -> Iterator[None]:
    """``check_room`` (unless ``max_waiting`` is None), then the block that queues the
    ``adding`` runs, no other request of this server queueing meanwhile."""
    with _QUEUEING:
        if max_waiting is not None:
            check_room(store, project_id, adding, max_waiting)
        yield


def queue(store: Store, project_id: int, runs: list[RunRecord]) -> None:
    # 500 runs a call: a request may queue thousands of runs (EXISTING_MAX_RUNS), and each
    # call is one write transaction, kept short.
    for i in range(0, len(runs), 500):
        store.add_runs(project_id, runs[i : i + 500])


def _plan(project_id: int, evaluator: Evaluator, session: SessionDetail) -> list[RunRecord]:
    end_ns = datetime_to_ns(session.end_time)
    return plan_runs(project_id, evaluator, session.session_id, end_ns, session.traces, "manual")
