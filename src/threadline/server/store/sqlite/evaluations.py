"""Evaluators, evaluation runs and their totals in SQLite.

``EvaluationTables`` is mixed into ``SQLiteStore``: its methods use the store's writer
transaction and reader pool. Claiming runs is one write transaction, so that several
worker processes (and a ``threadline evaluate`` beside the server) never run one twice.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

from threadline.server.evaluation import fair_share
from threadline.server.evaluation.model import (
    EvaluationRun,
    Evaluator,
    EvaluatorIn,
    EvaluatorTotals,
    RunOutcome,
    RunQuery,
    RunRecord,
    present_evaluator,
    present_run,
)
from threadline.server.model import Page
from threadline.server.store import cursors, sorts
from threadline.server.store.columns import Columns
from threadline.server.store.record_columns import RUNS
from threadline.server.store.sqlite.driver import sqlite3

# An evaluator's row, and what evaluation_totals keeps of one.
_EVALUATOR_ROW = Columns(
    "project_id", "name", "definition", "online", "created_ns", "swept_until_ns"
)
_TOTALS = Columns(
    "evaluator", "runs_done", "runs_failed", "input_tokens", "output_tokens", "cost_usd"
)


def _run(row: Sequence[Any]) -> RunRecord:
    return RUNS.read(row, RunRecord)


def _evaluator(row: Sequence[Any], totals: EvaluatorTotals | None) -> Evaluator:
    named = _EVALUATOR_ROW.named(row)
    return present_evaluator(named["definition"], named["created_ns"], totals)


class EvaluationTables:
    """The evaluation part of the Store protocol (see ``store/base.py``)."""

    _transaction: Any
    _read: Any

    def _reading(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._read()

    def _writing(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._transaction()

    # --- evaluators --------------------------------------------------------------------

    def put_evaluator(
        self, project_id: int, evaluator: EvaluatorIn, watch_after_ns: int | None = None
    ) -> Evaluator:
        now = time.time_ns()
        with self._writing() as conn:
            row = conn.execute(
                f"SELECT {_EVALUATOR_ROW.sql} FROM evaluators WHERE project_id = ? AND name = ?",
                (project_id, evaluator.name),
            ).fetchone()
            created = _EVALUATOR_ROW.named(row)["created_ns"] if row else now
            # An evaluator switched on starts watching sessions from now on (its mark:
            # ``watch_after_ns``), never judging what ended while it was off. Set in the
            # same statement, so no sweep sees it switched on without its mark.
            conn.execute(
                f"INSERT INTO evaluators ({_EVALUATOR_ROW.sql}) VALUES ({_EVALUATOR_ROW.qmarks})"
                " ON CONFLICT (project_id, name) DO UPDATE SET definition = excluded.definition,"
                " online = excluded.online, swept_until_ns = CASE WHEN evaluators.online = 1"
                " AND excluded.online = 1 THEN evaluators.swept_until_ns"
                " ELSE excluded.swept_until_ns END",
                (
                    project_id,
                    evaluator.name,
                    evaluator.model_dump_json(),
                    int(evaluator.online),
                    created,
                    watch_after_ns,
                ),
            )
        found = self.get_evaluator(project_id, evaluator.name)
        assert found is not None
        return found

    def list_evaluators(self, project_id: int) -> list[Evaluator]:
        with self._reading() as conn:
            rows = conn.execute(
                f"SELECT {_EVALUATOR_ROW.sql} FROM evaluators WHERE project_id = ? ORDER BY name",
                (project_id,),
            ).fetchall()
            totals = _totals(conn, project_id)
        return [_evaluator(row, totals.get(_EVALUATOR_ROW.named(row)["name"])) for row in rows]

    def get_evaluator(self, project_id: int, name: str) -> Evaluator | None:
        with self._reading() as conn:
            row = conn.execute(
                f"SELECT {_EVALUATOR_ROW.sql} FROM evaluators WHERE project_id = ? AND name = ?",
                (project_id, name),
            ).fetchone()
            totals = _totals(conn, project_id, name) if row else {}
        return _evaluator(row, totals.get(name)) if row else None

    def delete_evaluator(self, project_id: int, name: str) -> bool:
        with self._writing() as conn:
            deleted = conn.execute(
                "DELETE FROM evaluators WHERE project_id = ? AND name = ?", (project_id, name)
            ).rowcount
            if deleted:
                conn.execute(
                    "UPDATE evaluation_runs SET status = 'failed', reason = 'evaluator deleted',"
                    " finished_ns = ? WHERE project_id = ? AND evaluator = ?"
                    " AND status IN ('pending', 'running')",
                    (time.time_ns(), project_id, name),
                )
        return deleted > 0

    def online_evaluators(self) -> list[tuple[int, Evaluator, int | None]]:
        with self._reading() as conn:
            rows = conn.execute(
                f"SELECT {_EVALUATOR_ROW.sql} FROM evaluators WHERE online = 1"
                " ORDER BY project_id, name"
            ).fetchall()
        online = []
        for row in rows:
            named = _EVALUATOR_ROW.named(row)
            online.append((named["project_id"], _evaluator(row, None), named["swept_until_ns"]))
        return online

    def ended_sessions(
        self, project_id: int, after_ns: int, until_ns: int, limit: int
    ) -> list[tuple[str, int]]:
        with self._reading() as conn:
            return [
                (session_id, end_ns)
                for session_id, end_ns in conn.execute(
                    "SELECT session_id, end_ns FROM sessions WHERE project_id = ?"
                    " AND end_ns > ? AND end_ns <= ? ORDER BY end_ns, session_id LIMIT ?",
                    (project_id, after_ns, until_ns, limit),
                )
            ]

    # --- runs --------------------------------------------------------------------------

    def add_runs(
        self,
        project_id: int,
        runs: Sequence[RunRecord],
        swept: tuple[str, int] | None = None,
    ) -> int:
        with self._writing() as conn:
            before = conn.total_changes
            now = time.time_ns()
            conn.executemany(
                f"INSERT OR IGNORE INTO evaluation_runs ({RUNS.sql}) VALUES ({RUNS.qmarks})",
                [RUNS.values(r.queued(project_id, now)) for r in runs],
            )
            added = conn.total_changes - before
            if swept is not None:
                conn.execute(
                    "UPDATE evaluators SET swept_until_ns = ? WHERE project_id = ? AND name = ?"
                    " AND online = 1 AND (swept_until_ns IS NULL OR swept_until_ns < ?)",
                    (swept[1], project_id, swept[0], swept[1]),
                )
        return added

    def runs_waiting(self, project_id: int) -> int:
        with self._reading() as conn:
            # One count a status: each has its partial index (migration 0024).
            return sum(
                conn.execute(
                    "SELECT count(*) FROM evaluation_runs WHERE project_id = ? AND status = ?",
                    (project_id, status),
                ).fetchone()[0]
                for status in ("pending", "running")
            )

    def claim_runs(
        self,
        limit: int,
        lease_ns: int,
        only: tuple[int, Sequence[str]] | None = None,
        idle_projects: bool = False,
    ) -> list[RunRecord]:
        now = time.time_ns()
        # Read first, on a reader: a poll that finds nothing takes no write lock.
        with self._reading() as conn:
            if not _claimable(conn, now, 1, only, idle_projects):
                return []
        with self._writing() as conn:
            claimed = _claimable(conn, now, limit, only, idle_projects)
            conn.executemany(
                "UPDATE evaluation_runs SET status = 'running', claimed_until_ns = ?"
                " WHERE project_id = ? AND id = ?",
                [(now + lease_ns, r.project_id, r.id) for r in claimed],
            )
        for run in claimed:
            run.status, run.claimed_until_ns = "running", now + lease_ns
        return claimed

    def release_runs(self, runs: Sequence[RunRecord]) -> None:
        with self._writing() as conn:
            conn.executemany(
                "UPDATE evaluation_runs SET status = 'pending', claimed_until_ns = NULL"
                " WHERE project_id = ? AND id = ? AND status = 'running'",
                [(r.project_id, r.id) for r in runs],
            )

    def finish_run(self, project_id: int, run_id: str, outcome: RunOutcome) -> bool:
        with self._writing() as conn:
            row = conn.execute(
                f"SELECT {RUNS.sql} FROM evaluation_runs WHERE project_id = ? AND id = ?",
                (project_id, run_id),
            ).fetchone()
            run = _run(row) if row is not None else None
            if run is None or run.status in ("done", "failed"):
                return False  # finished already (deleted evaluator, or another runner)
            conn.execute(
                "UPDATE evaluation_runs SET status = ?, reason = ?, attempts = attempts + ?,"
                " score_id = ?, input_tokens = ?, output_tokens = ?, cost_usd = ?,"
                " finished_ns = ?, claimed_until_ns = NULL WHERE project_id = ? AND id = ?",
                (
                    outcome.status,
                    outcome.reason,
                    outcome.attempts,
                    outcome.score_id,
                    outcome.input_tokens,
                    outcome.output_tokens,
                    outcome.cost_usd,
                    time.time_ns(),
                    project_id,
                    run_id,
                ),
            )
            add_to_totals(
                conn,
                project_id,
                run.evaluator,
                outcome.status,
                outcome.input_tokens,
                outcome.output_tokens,
                outcome.cost_usd,
            )
        return True

    def list_runs(self, project_id: int, query: RunQuery) -> Page[EvaluationRun]:
        where = ["project_id = ?"]
        args: list[Any] = [project_id]
        for column in ("evaluator", "session_id", "status"):
            value = getattr(query, column)
            if value:
                where.append(f"{column} = ?")
                args.append(value)
        if query.cursor:
            created_ns, run_id = cursors.decode(
                query.cursor, int, str, made_by=sorts.RUNS_BY_CREATION
            )
            where.append("(created_ns, id) < (?, ?)")
            args += [created_ns, run_id]
        with self._reading() as conn:
            rows = conn.execute(
                f"SELECT {RUNS.sql} FROM evaluation_runs WHERE {' AND '.join(where)}"
                " ORDER BY created_ns DESC, id DESC LIMIT ?",
                [*args, query.limit + 1],
            ).fetchall()
        records = [_run(row) for row in rows]
        page, next_cursor = cursors.page(
            records, query.limit, lambda r: (r.created_ns, r.id), made_by=sorts.RUNS_BY_CREATION
        )
        return Page[EvaluationRun](items=[present_run(r) for r in page], next_cursor=next_cursor)

    def get_runs(self, project_id: int, run_ids: Sequence[str]) -> dict[str, EvaluationRun]:
        found: dict[str, EvaluationRun] = {}
        ids = list(run_ids)
        with self._reading() as conn:
            for i in range(0, len(ids), 500):
                chunk = ids[i : i + 500]
                for row in conn.execute(
                    f"SELECT {RUNS.sql} FROM evaluation_runs WHERE project_id = ?"
                    f" AND id IN ({', '.join('?' * len(chunk))})",
                    (project_id, *chunk),
                ):
                    run = _run(row)
                    found[run.id] = present_run(run)
        return found


def _claimable(
    conn: sqlite3.Connection,
    now_ns: int,
    limit: int,
    only: tuple[int, Sequence[str]] | None = None,
    idle_projects: bool = False,
) -> list[RunRecord]:
    """Pending runs, and running ones whose runner's lease ran out (it died mid-run),
    shared fairly across projects (``fair_share``); ``only``: among these runs of this
    project, oldest first; ``idle_projects``: of projects with no run in flight."""
    if only is not None:
        return _claimable_among(conn, now_ns, limit, only[0], only[1])
    # Runs in flight are few (every runner's concurrency at most): read them whole.
    in_flight: dict[int, int] = {}
    waiting: dict[int, list[RunRecord]] = {}
    for row in conn.execute(f"SELECT {RUNS.sql} FROM evaluation_runs WHERE status = 'running'"):
        run = _run(row)
        if run.claimed_until_ns is not None and run.claimed_until_ns < now_ns:
            waiting.setdefault(run.project_id, []).append(run)
        else:
            in_flight[run.project_id] = in_flight.get(run.project_id, 0) + 1
    oldest = {p: min(r.created_ns for r in runs) for p, runs in waiting.items()}
    # The projects with pending runs, one index seek each (never a scan of the queue).
    for project_id, created_ns in conn.execute(_PROJECTS_PENDING):
        oldest[project_id] = min(created_ns, oldest.get(project_id, created_ns))
    chosen: dict[int, list[RunRecord]] = {}
    for project_id in fair_share.projects_to_read(oldest, in_flight, limit, idle_projects):
        runs = waiting.get(project_id, []) + [
            _run(row)
            for row in conn.execute(
                f"SELECT {RUNS.sql} FROM evaluation_runs WHERE status = 'pending'"
                " AND project_id = ? ORDER BY created_ns LIMIT ?",
                (project_id, limit),
            )
        ]
        chosen[project_id] = sorted(runs, key=lambda r: r.created_ns)[:limit]
    return fair_share.fair_share(chosen, in_flight, limit, idle_projects)


# Each project with pending runs and its oldest one's time: a skip from one project to
# the next in evaluation_runs_pending rather than a read of every pending run.
_PROJECTS_PENDING = (
    "WITH RECURSIVE waiting(project_id) AS ("
    " SELECT MIN(project_id) FROM evaluation_runs WHERE status = 'pending'"
    " UNION ALL SELECT (SELECT MIN(project_id) FROM evaluation_runs"
    " WHERE status = 'pending' AND project_id > waiting.project_id)"
    " FROM waiting WHERE waiting.project_id IS NOT NULL)"
    " SELECT project_id, (SELECT MIN(created_ns) FROM evaluation_runs"
    " WHERE status = 'pending' AND project_id = waiting.project_id)"
    " FROM waiting WHERE project_id IS NOT NULL"
)


# The runs asked for, each looked up by its key, the ids' list first (``CROSS JOIN``
# keeps that order). Written as ``id IN (...)``, the planner (no ``sqlite_stat1``)
# walked the project's runs by time, every run of the project, for the order
# (docs/benchmarks.md, round 16).
_CLAIMABLE_AMONG = (
    f"SELECT {RUNS.qualified('r')} FROM json_each(?) AS wanted"
    " CROSS JOIN evaluation_runs AS r ON r.project_id = ? AND r.id = wanted.value"
    " WHERE (r.status = 'pending' OR (r.status = 'running' AND r.claimed_until_ns < ?))"
    " ORDER BY r.created_ns LIMIT ?"
)


def _claimable_among(
    conn: sqlite3.Connection, now_ns: int, limit: int, project_id: int, ids: Sequence[str]
) -> list[RunRecord]:
    rows = conn.execute(
        _CLAIMABLE_AMONG, (json.dumps(sorted(set(ids))), project_id, now_ns, limit)
    ).fetchall()
    return [_run(row) for row in rows]


def add_to_totals(
    conn: sqlite3.Connection,
    project_id: int,
    evaluator: str,
    status: str,
    input_tokens: int | None,
    output_tokens: int | None,
    cost_usd: float | None,
) -> None:
    """Count a finished run in its evaluator's totals."""
    conn.execute(
        "INSERT INTO evaluation_totals (project_id, evaluator, runs_done, runs_failed,"
        " input_tokens, output_tokens, cost_usd) VALUES (?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (project_id, evaluator) DO UPDATE SET"
        " runs_done = runs_done + excluded.runs_done,"
        " runs_failed = runs_failed + excluded.runs_failed,"
        " input_tokens = input_tokens + excluded.input_tokens,"
        " output_tokens = output_tokens + excluded.output_tokens,"
        " cost_usd = CASE WHEN excluded.cost_usd IS NULL THEN cost_usd"
        " ELSE COALESCE(cost_usd, 0) + excluded.cost_usd END",
        (
            project_id,
            evaluator,
            int(status == "done"),
            int(status != "done"),
            input_tokens or 0,
            output_tokens or 0,
            cost_usd,
        ),
    )


def _totals(
    conn: sqlite3.Connection, project_id: int, name: str | None = None
) -> dict[str, EvaluatorTotals]:
    args: list[int | str] = [project_id]
    where = "project_id = ?"
    if name is not None:
        where, args = where + " AND evaluator = ?", [project_id, name]
    totals: dict[str, EvaluatorTotals] = {}
    for row in conn.execute(f"SELECT {_TOTALS.sql} FROM evaluation_totals WHERE {where}", args):
        named = _TOTALS.named(row)
        totals[named.pop("evaluator")] = EvaluatorTotals(**named)
    # Unfinished runs are few: counted from the queue's indexes, not from a rollup.
    for evaluator, waiting in conn.execute(
        "SELECT evaluator, COUNT(*) FROM (SELECT evaluator FROM evaluation_runs"
        f" WHERE status = 'pending' AND {where} UNION ALL SELECT evaluator"
        f" FROM evaluation_runs WHERE status = 'running' AND {where}) GROUP BY evaluator",
        args + args,
    ):
        totals.setdefault(evaluator, EvaluatorTotals()).runs_pending = waiting
    return totals
