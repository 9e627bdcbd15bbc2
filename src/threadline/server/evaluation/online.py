"""Online evaluation: sessions that went idle are judged by the online evaluators.

A session counts as ended once it has had no new trace for ``session_idle_seconds``.
Each sweep asks the sessions rollup, through its index on the end time, for the
sessions that ended since the evaluator's last sweep (its mark), queues a run for each
that the evaluator's filter and sample keep, and moves the mark, in one step. A
session that resumes gets a later end time, so it is found again when it ends again.
The sweep reads rollups only (a session's traces' rollups when a filter or a trace
evaluator needs them), never spans, and runs beside ingest, never in its path.
"""

from __future__ import annotations

import time

from threadline.server.evaluation.model import Evaluator, EvaluatorFilter, RunRecord
from threadline.server.evaluation.selection import matches, online_run_id, plan_runs, sampled
from threadline.server.store import Store

_BATCH = 500
# How late a session's last trace may be written after it ended and still be judged.
LATE_NS = 120 * 1_000_000_000


def sweep(
    store: Store, idle_ns: int, now_ns: int | None = None, max_waiting: int | None = None
) -> int:
    """Queue the runs of every online evaluator for the sessions that ended since its
    last sweep; return how many runs were new. ``max_waiting``: a project with that
    many runs waiting is passed over, its marks kept, so that its sessions are judged
    once it has room (a batch at most past it), none skipped."""
    cutoff = (now_ns or time.time_ns()) - idle_ns
    added = 0
    waiting: dict[int, int] = {}
    for project_id, evaluator, mark in store.online_evaluators():
        if mark is None:
            # Switched on by a store call that gave no mark (``put_evaluator``): the
            # sessions that ended before its first sweep are not its.
            store.add_runs(project_id, [], swept=(evaluator.name, cutoff))
            continue
        room = None
        if max_waiting is not None:
            if project_id not in waiting:
                waiting[project_id] = store.runs_waiting(project_id)
            room = max_waiting - waiting[project_id]
            if room <= 0:
                continue
        new = _sweep_evaluator(store, project_id, evaluator, mark, cutoff, room)
        waiting[project_id] = waiting.get(project_id, 0) + new
        added += new
    return added


def _sweep_evaluator(
    store: Store, project_id: int, evaluator: Evaluator, mark: int, cutoff: int, room: int | None
) -> int:
    added = 0
    lower = mark
    while lower < cutoff and (room is None or added < room):
        ended = store.ended_sessions(project_id, lower, cutoff, _BATCH)
        full = len(ended) == _BATCH
        runs = _runs_for(store, project_id, evaluator, ended)
        if not full:
            upper = cutoff
        elif ended[0][1] < ended[-1][1]:
            # The batch may have cut a run of equal end times: read the last one again.
            upper = ended[-1][1] - 1
        else:
            upper = ended[-1][1]
        # The mark trails the cutoff: a session written a little after it went idle (an
        # exporter's batching delay, retries) is still found by the next sweeps.
        next_mark = max(mark, min(upper, cutoff - LATE_NS))
        added += store.add_runs(project_id, runs, swept=(evaluator.name, next_mark))
        lower = upper
        if not full:
            break
    return added


def _runs_for(
    store: Store, project_id: int, evaluator: Evaluator, ended: list[tuple[str, int]]
) -> list[RunRecord]:
    """The runs not queued yet for these ended sessions (sessions of the trailing window
    are seen by several sweeps; their runs' ids say whether they were queued)."""
    kept = [(sid, end) for sid, end in ended if sampled(evaluator, sid)]
    if evaluator.target == "session":
        ids = {
            online_run_id(project_id, evaluator.name, "session", sid, end): sid for sid, end in kept
        }
        queued = store.get_runs(project_id, list(ids))
        kept = [
            (sid, end)
            for sid, end in kept
            if online_run_id(project_id, evaluator.name, "session", sid, end) not in queued
        ]
    runs: list[RunRecord] = []
    for session_id, end_ns in kept:
        traces = []
        if evaluator.target == "trace" or evaluator.filter != EvaluatorFilter():
            detail = store.get_session(project_id, session_id)
            if detail is None or not matches(evaluator.filter, detail):
                continue
            traces = detail.traces
        runs += plan_runs(project_id, evaluator, session_id, end_ns, traces, "online")
    if evaluator.target == "trace" and runs:
        queued = store.get_runs(project_id, [r.id for r in runs])
        runs = [r for r in runs if r.id not in queued]
    return runs
