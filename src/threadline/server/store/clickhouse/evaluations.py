"""Evaluators, evaluation runs and their totals in ClickHouse.

``EvaluationTables`` is mixed into ``ClickHouseStore``. Without transactions, a claim
is an insert of a ``running`` version naming this store's token, then a read-back:
the runs whose newest version is that claim are this runner's. Two servers claiming
one run at the same instant may both win it, and the run is judged twice; the score's
id is derived from the evaluator and target, so the second judgment replaces the first.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from typing import Any

from threadline.server.evaluation.model import (
    EvaluationRun,
    Evaluator,
    EvaluatorIn,
    EvaluatorTotals,
    RunOutcome,
    RunQuery,
    RunRecord,
    present_run,
)
from threadline.server.model import Page, ns_to_datetime
from threadline.server.store import cursors

FINISHED = 2**61  # version offset of a finished run (migration 0004)
_RUN_FIELDS = (
    "evaluator",
    "target_kind",
    "target_id",
    "session_id",
    "trigger",
    "status",
    "reason",
    "attempts",
    "score_id",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "created_ns",
    "finished_ns",
    "claimed_until_ns",
    "claimed_by",
)
_RUN_INSERT = ["project_id", "id", *_RUN_FIELDS, "version"]
_EVALUATOR_FIELDS = ("definition", "online", "online_since_ns", "created_ns", "deleted")


def _latest_runs(where: str) -> str:
    """Each run's newest state, as columns: id, the fields, project_id."""
    unpacked = ", ".join(f"tupleElement(row, {i + 1}) AS {f}" for i, f in enumerate(_RUN_FIELDS))
    return (
        f"SELECT id, {unpacked}, project_id FROM (SELECT project_id, id,"
        f" argMax(({', '.join(_RUN_FIELDS)}), version) AS row FROM evaluation_runs"
        f" WHERE {where} GROUP BY project_id, id)"
    )


_LATEST_EVALUATORS = (
    "SELECT project_id, name, tupleElement(row, 1) AS definition, tupleElement(row, 2) AS"
    " online, tupleElement(row, 3) AS online_since_ns, tupleElement(row, 4) AS created_ns"
    f" FROM (SELECT project_id, name, argMax(({', '.join(_EVALUATOR_FIELDS)}), version) AS row"
    " FROM evaluators WHERE {where} GROUP BY project_id, name) WHERE tupleElement(row, 5) = 0"
)


def _run(row: Sequence[Any]) -> RunRecord:
    return RunRecord(
        id=row[0],
        evaluator=row[1],
        target_kind=row[2],
        target_id=row[3],
        session_id=row[4],
        trigger=row[5],
        status=row[6],
        reason=row[7],
        attempts=int(row[8]),
        score_id=row[9],
        input_tokens=row[10],
        output_tokens=row[11],
        cost_usd=row[12],
        created_ns=row[13],
        finished_ns=row[14],
        claimed_until_ns=row[15],
        project_id=int(row[17]),
    )


def _run_row(r: RunRecord, claimed_by: str, version: int) -> list[Any]:
    return [
        r.project_id,
        r.id,
        r.evaluator,
        r.target_kind,
        r.target_id,
        r.session_id,
        r.trigger,
        r.status,
        r.reason,
        r.attempts,
        r.score_id,
        r.input_tokens,
        r.output_tokens,
        r.cost_usd,
        r.created_ns,
        r.finished_ns,
        r.claimed_until_ns,
        claimed_by,
        version,
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

    def put_evaluator(self, project_id: int, evaluator: EvaluatorIn) -> Evaluator:
        now = time.time_ns()
        before = self._evaluator_rows(
            "project_id = %(project)s AND name = %(name)s",
            {"project": project_id, "name": evaluator.name},
        )
        created = before[0][5] if before else now
        # Switched on now (new, or from offline): a new sweep mark from now on.
        online_since = before[0][4] if before and before[0][3] and evaluator.online else now
        self._put(
            "evaluators",
            [
                [
                    project_id,
                    evaluator.name,
                    evaluator.model_dump_json(),
                    int(evaluator.online),
                    online_since,
                    created,
                    0,
                    now,
                ]
            ],
            ["project_id", "name", *_EVALUATOR_FIELDS, "version"],
        )
        found = self.get_evaluator(project_id, evaluator.name)
        assert found is not None
        return found

    def list_evaluators(self, project_id: int) -> list[Evaluator]:
        found = self._evaluator_rows("project_id = %(project)s", {"project": project_id})
        totals = self._totals(project_id)
        return [_evaluator(row, totals.get(row[1])) for row in found]

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
        row = found[0]
        self._put(
            "evaluators",
            [[project_id, name, row[2], 0, row[4], row[5], 1, time.time_ns()]],
            ["project_id", "name", *_EVALUATOR_FIELDS, "version"],
        )
        waiting = [
            _run(r)
            for r in self._rows(
                _latest_runs("project_id = %(project)s AND evaluator = %(name)s")
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
            (row[0], row[1], row[2]): row[3]
            for row in self._rows(
                "SELECT project_id, name, online_since_ns, max(swept_until_ns)"
                " FROM evaluator_sweeps GROUP BY project_id, name, online_since_ns"
            )
        }
        return [
            (int(row[0]), _evaluator(row, None), marks.get((row[0], row[1], row[4])))
            for row in found
            if row[3]
        ]

    def ended_sessions(
        self, project_id: int, after_ns: int, until_ns: int, limit: int
    ) -> list[tuple[str, int]]:
        from threadline.server.store.clickhouse import queries

        return [
            (row[0], int(row[1]))
            for row in self._rows(
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
                found[row[0]] = _run(row)
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
                fresh[run.id] = RunRecord(
                    id=run.id,
                    evaluator=run.evaluator,
                    target_kind=run.target_kind,
                    target_id=run.target_id,
                    session_id=run.session_id,
                    trigger=run.trigger,
                    created_ns=run.created_ns or now,
                    project_id=project_id,
                )
        # Version 1: any claim outranks a queued copy another sweep inserts late.
        self._put("evaluation_runs", [_run_row(r, "", 1) for r in fresh.values()], _RUN_INSERT)
        if swept is not None:
            name, until = swept
            found = self._evaluator_rows(
                "project_id = %(project)s AND name = %(name)s",
                {"project": project_id, "name": name},
            )
            if found and found[0][3]:
                self._put(
                    "evaluator_sweeps",
                    [[project_id, name, found[0][4], until]],
                    ["project_id", "name", "online_since_ns", "swept_until_ns"],
                )
        return len(fresh)

    def _claimable(
        self, now_ns: int, limit: int, only: tuple[int, Sequence[str]] | None
    ) -> list[RunRecord]:
        where = "1"
        params: dict[str, Any] = {"now": now_ns, "limit": limit}
        if only is not None:
            where = "project_id = %(project)s AND id IN %(ids)s"
            params.update(project=only[0], ids=list(only[1]))
        return [
            _run(row)
            for row in self._rows(
                _latest_runs(where) + " WHERE status = 'pending' OR (status = 'running'"
                " AND claimed_until_ns < %(now)s) ORDER BY created_ns LIMIT %(limit)s",
                params,
            )
        ]

    def claim_runs(
        self, limit: int, lease_ns: int, only: tuple[int, Sequence[str]] | None = None
    ) -> list[RunRecord]:
        now = time.time_ns()
        if only is not None and not only[1]:
            return []
        candidates = self._claimable(now, limit, only)
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
        for project_id, runs in by_project.items():
            latest = _latest_runs("project_id = %(project)s AND id IN %(ids)s")
            newest = self._rows(
                f"SELECT id, claimed_by FROM ({latest})",
                {"project": project_id, "ids": [r.id for r in runs]},
            )
            mine = {row[0] for row in newest if row[1] == token}
            won += [r for r in runs if r.id in mine]
        return won

    def release_runs(self, runs: Sequence[RunRecord]) -> None:
        now = time.time_ns()
        rows = []
        for run in runs:
            current = self._latest(run.project_id, [run.id]).get(run.id)
            if current is not None and current.status == "running":
                current.status, current.claimed_until_ns = "pending", None
                rows.append(_run_row(current, "", now))
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
            created_ns, run_id = cursors.decode(query.cursor, int, str)
            where.append("(created_ns, id) < (%(c_ns)s, %(c_id)s)")
            params.update(c_ns=created_ns, c_id=run_id)
        found = self._rows(
            _latest_runs(" AND ".join(inner))
            + f" WHERE {' AND '.join(where)} ORDER BY created_ns DESC, id DESC"
            " LIMIT %(limit)s",
            params,
        )
        records = [_run(row) for row in found]
        page, next_cursor = cursors.page(records, query.limit, lambda r: (r.created_ns, r.id))
        return Page[EvaluationRun](items=[present_run(r) for r in page], next_cursor=next_cursor)

    def get_runs(self, project_id: int, run_ids: Sequence[str]) -> dict[str, EvaluationRun]:
        return {i: present_run(r) for i, r in self._latest(project_id, run_ids).items()}

    def _totals(self, project_id: int, name: str | None = None) -> dict[str, EvaluatorTotals]:
        where = "project_id = %(project)s" + (" AND evaluator = %(name)s" if name else "")
        params = {"project": project_id, "name": name}
        totals: dict[str, EvaluatorTotals] = {}
        for row in self._rows(
            "SELECT evaluator, sum(runs_done), sum(runs_failed), sum(input_tokens),"
            " sum(output_tokens), sum(cost_usd), sum(costed_runs) FROM evaluation_totals"
            f" WHERE {where} GROUP BY evaluator",
            params,
        ):
            totals[row[0]] = EvaluatorTotals(
                runs_done=row[1],
                runs_failed=row[2],
                input_tokens=row[3],
                output_tokens=row[4],
                cost_usd=float(row[5]) if row[6] else None,
            )
        for evaluator, waiting in self._rows(
            "SELECT evaluator, count() FROM ("
            + _latest_runs(where)
            + ") WHERE status IN ('pending', 'running') GROUP BY evaluator",
            params,
        ):
            totals.setdefault(evaluator, EvaluatorTotals()).runs_pending = int(waiting)
        return totals


def _evaluator(row: Sequence[Any], totals: EvaluatorTotals | None) -> Evaluator:
    definition = EvaluatorIn.model_validate_json(row[2])
    return Evaluator(
        **definition.model_dump(),
        created_at=ns_to_datetime(row[5]),
        totals=totals or EvaluatorTotals(),
    )
