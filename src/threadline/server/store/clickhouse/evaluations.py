"""Evaluators, evaluation runs and their totals in ClickHouse.

``EvaluationTables`` is mixed into ``ClickHouseStore``. Without transactions, a claim
is an insert of a ``running`` version naming this store's token, then a read-back:
the runs whose newest version is that claim are this runner's. Two servers claiming
one run at the same instant may both win it, and the run is judged twice; the score's
id is derived from the evaluator and target, so the second judgment replaces the first.

What is waiting is read from ``evaluation_queue`` (migration 0023), a copy of every
version inserted into ``evaluation_runs`` from which the finished runs are deleted now
and then (``_forget_finished``): a claim, and a poll of an empty queue, read the runs
not finished (and those finished since the last deletion), not every run ever queued.
Whether a claim was won is read from ``evaluation_runs``, the record.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Sequence
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

FINISHED = 2**61  # version offset of a finished run (migration 0004)
# A run's row: its record and the runner holding its claim. All but the project and id
# are versioned.
_RUN_ROW = RUNS + Columns("claimed_by")
_RUN_FIELDS = tuple(name for name in _RUN_ROW.names if name not in ("id", "project_id"))
_RUN_INSERT = [*_RUN_ROW.names, "version"]
# An evaluator's row (``_LATEST_EVALUATORS``); after its project and name, versioned
# with whether the version deletes it.
_EVALUATOR_ROW = Columns(
    "project_id", "name", "definition", "online", "online_since_ns", "created_ns"
)
_EVALUATOR_FIELDS = (*_EVALUATOR_ROW.names[2:], "deleted")
_EVALUATOR_INSERT = [*_EVALUATOR_ROW.names, "deleted", "version"]
# What ``evaluation_totals`` sums for an evaluator (``costed_runs``: runs with a cost).
_TOTALS = Columns(
    "evaluator",
    "runs_done",
    "runs_failed",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "costed_runs",
)


def _unpacked(fields: tuple[str, ...]) -> dict[str, str]:
    """A column expression per versioned field, out of the ``row`` tuple argMax picked."""
    return {name: f"tupleElement(row, {i})" for i, name in enumerate(fields, 1)}


def _latest_runs(where: str, table: str = "evaluation_runs") -> str:
    """Each run's newest state, as the columns of ``_RUN_ROW``; ``table``:
    ``evaluation_queue`` for the unfinished runs only (what a run left there is its
    every version, so its newest state is the same)."""
    return (
        f"SELECT {_RUN_ROW.select(**_unpacked(_RUN_FIELDS))} FROM (SELECT project_id, id,"
        f" argMax(({', '.join(_RUN_FIELDS)}), version) AS row FROM {table}"
        f" WHERE {where} GROUP BY project_id, id)"
    )


_QUEUE = "evaluation_queue"
# How many finished runs a claim may read in the queue before it deletes them.
_FINISHED_KEPT = 1000
# What a deletion of finished runs from the queue says in ``system.mutations`` (the
# deletions of deleted sessions' runs, ``deletion_leftovers``, name sessions or traces).
_FORGETTING = "(project_id, id) IN"

log = logging.getLogger("threadline.store")


_LATEST_EVALUATORS = (
    f"SELECT {_EVALUATOR_ROW.select(**_unpacked(_EVALUATOR_FIELDS))}"
    f" FROM (SELECT project_id, name, argMax(({', '.join(_EVALUATOR_FIELDS)}), version) AS row"
    " FROM evaluators WHERE {where} GROUP BY project_id, name)"
    f" WHERE tupleElement(row, {len(_EVALUATOR_FIELDS)}) = 0"
)


def _run(row: Sequence[Any]) -> RunRecord:
    return RUNS.read(row, RunRecord, attempts=int, project_id=int)


def _run_row(r: RunRecord, claimed_by: str, version: int) -> list[Any]:
    return [*RUNS.values(r), claimed_by, version]


def _evaluator_row(
    project_id: int,
    name: str,
    definition: str,
    online: bool,
    online_since_ns: int,
    created_ns: int,
    *,
    deleted: bool = False,
) -> list[Any]:
    return [
        project_id,
        name,
        definition,
        int(online),
        online_since_ns,
        created_ns,
        int(deleted),
        time.time_ns(),
    ]


class EvaluationTables:
    """The evaluation part of the Store protocol (see ``store/base.py``)."""

    _ch: Any
    _types: dict[str, dict[str, str]]
    _rows: Any
    _claim_token: str = ""

    def _put(self, table: str, data: list[list[Any]], columns: list[str]) -> None:
        if table not in self._types:
            self._types[table] = dict(
                self._rows(
                    "SELECT name, type FROM system.columns WHERE database = currentDatabase()"
                    " AND table = %(table)s",
                    {"table": table},
                )
            )
        self._insert(table, data, columns)  # type: ignore[attr-defined]

    def _token(self) -> str:
        if not self._claim_token:
            self._claim_token = secrets.token_hex(8)
        return self._claim_token

    # --- evaluators --------------------------------------------------------------------

    def _evaluator_rows(self, where: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        return self._rows(
            _LATEST_EVALUATORS.format(where=where) + " ORDER BY project_id, name", params
        )

    def put_evaluator(
        self, project_id: int, evaluator: EvaluatorIn, watch_after_ns: int | None = None
    ) -> Evaluator:
        now = time.time_ns()
        before = self._evaluator_rows(
            "project_id = %(project)s AND name = %(name)s",
            {"project": project_id, "name": evaluator.name},
        )
        old = _EVALUATOR_ROW.named(before[0]) if before else None
        created = old["created_ns"] if old else now
        # Switched on now (new, or from offline): a new sweep mark from now on.
        stays_on = bool(old and old["online"] and evaluator.online)
        online_since = old["online_since_ns"] if old and stays_on else now
        if evaluator.online and not stays_on and watch_after_ns is not None:
            # Its first mark before the evaluator itself: a sweep that sees it switched
            # on sees the mark too (marks are per switch-on, ``online_since_ns``).
            self._put(
                "evaluator_sweeps",
                [[project_id, evaluator.name, online_since, watch_after_ns]],
                ["project_id", "name", "online_since_ns", "swept_until_ns"],
            )
        row = _evaluator_row(
            project_id,
            evaluator.name,
            evaluator.model_dump_json(),
            evaluator.online,
            online_since,
            created,
        )
        self._put("evaluators", [row], _EVALUATOR_INSERT)
        found = self.get_evaluator(project_id, evaluator.name)
        assert found is not None
        return found

    def list_evaluators(self, project_id: int) -> list[Evaluator]:
        found = self._evaluator_rows("project_id = %(project)s", {"project": project_id})
        totals = self._totals(project_id)
        return [_evaluator(row, totals.get(_EVALUATOR_ROW.named(row)["name"])) for row in found]

    def get_evaluator(self, project_id: int, name: str) -> Evaluator | None:
        found = self._evaluator_rows(
            "project_id = %(project)s AND name = %(name)s", {"project": project_id, "name": name}
        )
        if not found:
            return None
        return _evaluator(found[0], self._totals(project_id, name).get(name))

    def delete_evaluator(self, project_id: int, name: str) -> bool:
        found = self._evaluator_rows(
            "project_id = %(project)s AND name = %(name)s", {"project": project_id, "name": name}
        )
        if not found:
            return False
        old = _EVALUATOR_ROW.named(found[0])
        row = _evaluator_row(
            project_id,
            name,
            old["definition"],
            False,
            old["online_since_ns"],
            old["created_ns"],
            deleted=True,
        )
        self._put("evaluators", [row], _EVALUATOR_INSERT)
        waiting = [
            _run(r)
            for r in self._rows(
                _latest_runs("project_id = %(project)s AND evaluator = %(name)s", _QUEUE)
                + " WHERE status IN ('pending', 'running')",
                {"project": project_id, "name": name},
            )
        ]
        for run in waiting:
            self.finish_run(project_id, run.id, RunOutcome("failed", "evaluator deleted", 0))
        return True

    def online_evaluators(self) -> list[tuple[int, Evaluator, int | None]]:
        found = self._evaluator_rows("1", {})
        marks = {
            (project_id, name, since): until
            for project_id, name, since, until in self._rows(
                "SELECT project_id, name, online_since_ns, max(swept_until_ns)"
                " FROM evaluator_sweeps GROUP BY project_id, name, online_since_ns"
            )
        }
        online = []
        for row in found:
            named = _EVALUATOR_ROW.named(row)
            if named["online"]:
                mark = (named["project_id"], named["name"], named["online_since_ns"])
                online.append((int(named["project_id"]), _evaluator(row, None), marks.get(mark)))
        return online

    def ended_sessions(
        self, project_id: int, after_ns: int, until_ns: int, limit: int
    ) -> list[tuple[str, int]]:
        from threadline.server.store.clickhouse import queries

        return [
            (session_id, int(end_ns))
            for session_id, end_ns in self._rows(
                "SELECT session_id, end_ns FROM"
                f" ({queries.sessions_near('%(after)s', '%(until)s')})"
                " WHERE end_ns > %(after)s AND end_ns <= %(until)s"
                " ORDER BY end_ns, session_id LIMIT %(limit)s",
                {"project": project_id, "after": after_ns, "until": until_ns, "limit": limit},
            )
        ]

    # --- runs --------------------------------------------------------------------------

    def _latest(self, project_id: int, ids: Sequence[str]) -> dict[str, RunRecord]:
        found: dict[str, RunRecord] = {}
        ids = list(ids)
        for i in range(0, len(ids), 1000):
            for row in self._rows(
                _latest_runs("project_id = %(project)s AND id IN %(ids)s"),
                {"project": project_id, "ids": ids[i : i + 1000]},
            ):
                run = _run(row)
                found[run.id] = run
        return found

    def add_runs(
        self,
        project_id: int,
        runs: Sequence[RunRecord],
        swept: tuple[str, int] | None = None,
    ) -> int:
        stored = self._latest(project_id, [r.id for r in runs]) if runs else {}
        fresh: dict[str, RunRecord] = {}
        now = time.time_ns()
        for run in runs:
            if run.id not in stored and run.id not in fresh:
                fresh[run.id] = run.queued(project_id, now)
        # Version 1: any claim outranks a queued copy another sweep inserts late.
        self._put("evaluation_runs", [_run_row(r, "", 1) for r in fresh.values()], _RUN_INSERT)
        if swept is not None:
            name, until = swept
            found = self._evaluator_rows(
                "project_id = %(project)s AND name = %(name)s",
                {"project": project_id, "name": name},
            )
            evaluator = _EVALUATOR_ROW.named(found[0]) if found else None
            if evaluator and evaluator["online"]:
                self._put(
                    "evaluator_sweeps",
                    [[project_id, name, evaluator["online_since_ns"], until]],
                    ["project_id", "name", "online_since_ns", "swept_until_ns"],
                )
        return len(fresh)

    def runs_waiting(self, project_id: int) -> int:
        # Only each run's newest status is needed: three narrow columns, not the whole
        # state _latest_runs takes the newest of (a fifth of the engine's CPU).
        return int(
            self._rows(
                "SELECT countIf(status IN ('pending', 'running')) FROM (SELECT"
                f" argMax(status, version) AS status FROM {_QUEUE}"
                " WHERE project_id = %(project)s GROUP BY id)",
                {"project": project_id},
            )[0][0]
        )

    def _claimable(
        self,
        now_ns: int,
        limit: int,
        only: tuple[int, Sequence[str]] | None,
        idle_projects: bool = False,
    ) -> list[RunRecord]:
        """Pending runs and running ones whose lease ran out, shared fairly across
        projects (``fair_share``); ``only``: among these runs of this project."""
        waiting = "status = 'pending' OR (status = 'running' AND claimed_until_ns < %(now)s)"
        if only is not None:
            return [
                _run(row)
                for row in self._rows(
                    _latest_runs("project_id = %(project)s AND id IN %(ids)s", _QUEUE)
                    + f" WHERE {waiting} ORDER BY created_ns LIMIT %(limit)s",
                    {"now": now_ns, "limit": limit, "project": only[0], "ids": list(only[1])},
                )
            ]
        oldest: dict[int, int] = {}
        in_flight: dict[int, int] = {}
        finished = 0
        for project_id, flying, queued, first, done in self._rows(
            f"SELECT project_id, countIf(status = 'running' AND NOT ({waiting})),"
            f" countIf({waiting}), minIf(created_ns, {waiting}),"
            f" countIf(status IN ('done', 'failed')) FROM ({_latest_runs('1', _QUEUE)})"
            " GROUP BY project_id",
            {"now": now_ns},
        ):
            in_flight[int(project_id)] = int(flying)
            if int(queued):
                oldest[int(project_id)] = int(first)
            finished += int(done)
        if finished >= _FINISHED_KEPT:
            self._forget_finished()
        chosen = fair_share.projects_to_read(oldest, in_flight, limit, idle_projects)
        if not chosen:
            return []
        runs: dict[int, list[RunRecord]] = {}
        for row in self._rows(
            _latest_runs("project_id IN %(projects)s", _QUEUE)
            + f" WHERE {waiting} ORDER BY project_id, created_ns LIMIT %(limit)s BY project_id",
            {"now": now_ns, "limit": limit, "projects": chosen},
        ):
            run = _run(row)
            runs.setdefault(run.project_id, []).append(run)
        return fair_share.fair_share(runs, in_flight, limit, idle_projects)

    def _forget_finished(self) -> None:
        """Delete the finished runs' rows from the queue, unless a deletion (any
        server's) is still under way: each is a mutation, done in the background. The
        ids are read first, so each deletion names runs finished by then: every row of
        such a run goes (a run keeps all its rows or none), whichever part holds it. A
        claim or release a slow process writes after the deletion is put right by the
        claim that reads it (``claim_runs``)."""
        under_way = self._rows(
            "SELECT mutation_id, position(command, %(ours)s) > 0, latest_fail_reason"
            " FROM system.mutations WHERE database = currentDatabase()"
            f" AND table = '{_QUEUE}' AND NOT is_done",
            {"ours": _FORGETTING},
        )
        failed = [m for m, ours, reason in under_way if reason and ours]
        if failed:
            # A failed mutation is retried for ever (holding up the later ones on its
            # parts), and forgetting would stop for good. Cancelled, what it did part way
            # is put right as a late claim is (``claim_runs``), and its runs, finished
            # still, are named by the next deletion.
            log.warning("a deletion of finished runs from %s failed: cancelled", _QUEUE)
            self._ch.command(
                "KILL MUTATION WHERE database = currentDatabase() AND table = %(table)s"
                " AND mutation_id IN %(ids)s",
                parameters={"table": _QUEUE, "ids": failed},
            )
            return
        # Another failed mutation (a deleted session's runs, ``deletion_leftovers``) is
        # not waited for: it would never end.
        if any(not reason for _, _, reason in under_way):
            return
        done = self._rows(
            f"SELECT project_id, id FROM ({_latest_runs('1', _QUEUE)})"
            " WHERE status IN ('done', 'failed')"
        )
        for i in range(0, len(done), 1000):
            self._ch.command(
                f"DELETE FROM {_QUEUE} WHERE (project_id, id) IN %(keys)s",
                parameters={"keys": [(int(p), run_id) for p, run_id in done[i : i + 1000]]},
                settings={"lightweight_deletes_sync": 0},
            )

    def claim_runs(
        self,
        limit: int,
        lease_ns: int,
        only: tuple[int, Sequence[str]] | None = None,
        idle_projects: bool = False,
    ) -> list[RunRecord]:
        now = time.time_ns()
        if only is not None and not only[1]:
            return []
        candidates = self._claimable(now, limit, only, idle_projects)
        if not candidates:
            return []
        token = self._token()
        for run in candidates:
            run.status, run.claimed_until_ns = "running", now + lease_ns
        self._put("evaluation_runs", [_run_row(r, token, now) for r in candidates], _RUN_INSERT)
        won = []
        by_project: dict[int, list[RunRecord]] = {}
        for run in candidates:
            by_project.setdefault(run.project_id, []).append(run)
        stale: list[RunRecord] = []
        for project_id, runs in by_project.items():
            mine = set()
            for row in self._rows(
                _latest_runs("project_id = %(project)s AND id IN %(ids)s"),
                {"project": project_id, "ids": [r.id for r in runs]},
            ):
                newest = _RUN_ROW.named(row)
                if newest["claimed_by"] == token:
                    mine.add(newest["id"])
                elif newest["status"] in ("done", "failed"):
                    stale.append(_run(row))
            won += [r for r in runs if r.id in mine]
        if stale:
            # Finished, yet waiting in the queue: a claim or release written after the
            # queue forgot the run. Its finished state goes back, to outrank it there.
            rows = [_run_row(r, "", FINISHED + (r.finished_ns or 0)) for r in stale]
            self._put(_QUEUE, rows, _RUN_INSERT)
        return won

    def release_runs(self, runs: Sequence[RunRecord]) -> None:
        now = time.time_ns()
        keys = [(run.project_id, run.id) for run in runs]
        rows = []
        for i in range(0, len(keys), 1000):  # one read for a runner's few, of any projects
            for row in self._rows(
                _latest_runs("(project_id, id) IN %(keys)s"), {"keys": keys[i : i + 1000]}
            ):
                current = _run(row)
                if current.status == "running":
                    current.status, current.claimed_until_ns = "pending", None
                    rows.append(_run_row(current, "", now))
        if rows:
            self._put("evaluation_runs", rows, _RUN_INSERT)

    def finish_run(self, project_id: int, run_id: str, outcome: RunOutcome) -> bool:
        current = self._latest(project_id, [run_id]).get(run_id)
        if current is None or current.status in ("done", "failed"):
            return False
        now = time.time_ns()
        current.status = outcome.status
        current.reason = outcome.reason
        current.attempts += outcome.attempts
        current.score_id = outcome.score_id
        current.input_tokens = outcome.input_tokens
        current.output_tokens = outcome.output_tokens
        current.cost_usd = outcome.cost_usd
        current.finished_ns = now
        current.claimed_until_ns = None
        self._put("evaluation_runs", [_run_row(current, "", FINISHED + now)], _RUN_INSERT)
        return True

    def list_runs(self, project_id: int, query: RunQuery) -> Page[EvaluationRun]:
        where = ["1"]
        params: dict[str, Any] = {"project": project_id, "limit": query.limit + 1}
        inner = ["project_id = %(project)s"]
        for column in ("evaluator", "session_id"):
            value = getattr(query, column)
            if value:
                inner.append(f"{column} = %({column})s")
                params[column] = value
        if query.status:
            where.append("status = %(status)s")
            params["status"] = query.status
        if query.cursor:
            created_ns, run_id = cursors.decode(
                query.cursor, int, str, made_by=sorts.RUNS_BY_CREATION
            )
            where.append("(created_ns, id) < (%(c_ns)s, %(c_id)s)")
            params.update(c_ns=created_ns, c_id=run_id)
        # The waiting runs are all in the queue, with every version each has: their
        # newest state is the record's (bar a late claim not yet put right, as in
        # ``_totals``), without reading every run ever queued.
        table = _QUEUE if query.status in ("pending", "running") else "evaluation_runs"
        found = self._rows(
            _latest_runs(" AND ".join(inner), table)
            + f" WHERE {' AND '.join(where)} ORDER BY created_ns DESC, id DESC"
            " LIMIT %(limit)s",
            params,
        )
        records = [_run(row) for row in found]
        page, next_cursor = cursors.page(
            records, query.limit, lambda r: (r.created_ns, r.id), made_by=sorts.RUNS_BY_CREATION
        )
        return Page[EvaluationRun](items=[present_run(r) for r in page], next_cursor=next_cursor)

    def get_runs(self, project_id: int, run_ids: Sequence[str]) -> dict[str, EvaluationRun]:
        return {i: present_run(r) for i, r in self._latest(project_id, run_ids).items()}

    def _totals(self, project_id: int, name: str | None = None) -> dict[str, EvaluatorTotals]:
        where = "project_id = %(project)s" + (" AND evaluator = %(name)s" if name else "")
        params = {"project": project_id, "name": name}
        totals: dict[str, EvaluatorTotals] = {}
        # Not aliased to the columns' own names: ClickHouse would read the alias inside sum().
        sums = ", ".join(["evaluator", *(f"sum({name})" for name in _TOTALS.names[1:])])
        for row in self._rows(
            f"SELECT {sums} FROM evaluation_totals WHERE {where} GROUP BY evaluator", params
        ):
            named = _TOTALS.named(row)
            totals[named["evaluator"]] = EvaluatorTotals(
                runs_done=named["runs_done"],
                runs_failed=named["runs_failed"],
                input_tokens=named["input_tokens"],
                output_tokens=named["output_tokens"],
                cost_usd=float(named["cost_usd"]) if named["costed_runs"] else None,
            )
        for evaluator, waiting in self._rows(
            "SELECT evaluator, count() FROM ("
            + _latest_runs(where, _QUEUE)
            + ") WHERE status IN ('pending', 'running') GROUP BY evaluator",
            params,
        ):
            totals.setdefault(evaluator, EvaluatorTotals()).runs_pending = int(waiting)
        return totals


def _evaluator(row: Sequence[Any], totals: EvaluatorTotals | None) -> Evaluator:
    named = _EVALUATOR_ROW.named(row)
    return present_evaluator(named["definition"], named["created_ns"], totals)
