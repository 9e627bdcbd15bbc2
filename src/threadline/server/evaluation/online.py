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

from threadline.server.evaluation.model import Evaluator
from threadline.server.evaluation.selection import matches, plan_runs, sampled
from threadline.server.model import Session
from threadline.server.store import Store

_BATCH = 500


def sweep(store: Store, idle_ns: int, now_ns: int | None = None) -> int:
    """Queue the runs of every online evaluator for the sessions that ended since its
    last sweep; return how many runs were new."""
    cutoff = (now_ns or time.time_ns()) - idle_ns
    added = 0
    for project_id, evaluator, mark in store.online_evaluators():
        if mark is None:
            # First sweep: sessions that ended before the evaluator existed are not its.
            store.add_runs(project_id, [], swept=(evaluator.name, cutoff))
            continue
        added += _sweep_evaluator(store, project_id, evaluator, mark, cutoff)
    return added


def _sweep_evaluator(
    store: Store, project_id: int, evaluator: Evaluator, mark: int, cutoff: int
) -> int:
    added = 0
    while mark < cutoff:
        ended = store.ended_sessions(project_id, mark, cutoff, _BATCH)
        runs = []
        for session_id, end_ns in ended:
            if not sampled(evaluator, session_id):
                continue
            traces = []
            if evaluator.target == "trace" or evaluator.filter != type(evaluator.filter)():
                detail = store.get_session(project_id, session_id)
                if detail is None or not matches(evaluator.filter, detail):
                    continue
                traces = detail.traces
            runs += plan_runs(project_id, evaluator, session_id, end_ns, traces, "online")
        if len(ended) < _BATCH:
            next_mark = cutoff
        elif ended[0][1] < ended[-1][1]:
            # The batch may have cut a run of equal end times: read the last one again
            # (its runs' ids are the same, so they are not queued twice).
            next_mark = ended[-1][1] - 1
        else:
            next_mark = ended[-1][1]
        added += store.add_runs(project_id, runs, swept=(evaluator.name, next_mark))
        mark = next_mark
        if len(ended) < _BATCH:
            break
    return added


def is_ended(session: Session, idle_ns: int, now_ns: int | None = None) -> bool:
    """Whether a session counts as ended: no new trace for the idle time."""
    end_ns = int(session.end_time.timestamp() * 1e9)
    return (now_ns or time.time_ns()) - end_ns >= idle_ns
