"""Evaluation runs read whole and written whole, for ``threadline migrate`` (as SQLite's
``run_transfer.py``): every run of a project with its outcome.

A run that was running is copied as pending (its claim belonged to a server of the
source). A finished run is inserted with a finished version (``FINISHED`` + its finish
time), which the totals' materialized view counts, as when it finished; a run the
target has already is left as it is, so copying twice counts nothing twice."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence

from threadline.server.evaluation.model import RunRecord
from threadline.server.store.clickhouse.evaluations import (
    _RUN_INSERT,
    FINISHED,
    EvaluationTables,
    _latest_runs,
    _run,
    _run_row,
)

_DONE = ("done", "failed")


class RunTransfer(EvaluationTables):
    def iter_runs(self, project_id: int, batch_size: int) -> Iterator[list[RunRecord]]:
        after = ""
        while True:
            rows = self._rows(
                _latest_runs("project_id = %(project)s AND id > %(after)s")
                + " ORDER BY id LIMIT %(limit)s",
                {"project": project_id, "after": after, "limit": batch_size},
            )
            if not rows:
                return
            runs = [_run(row) for row in rows]
            yield runs
            after = runs[-1].id

    def load_runs(self, project_id: int, runs: Sequence[RunRecord]) -> int:
        stored = self._latest(project_id, [r.id for r in runs]) if runs else {}
        data = []
        for r in runs:
            if r.id in stored:
                continue
            stored[r.id] = r
            if r.status in _DONE:
                run = dataclasses.replace(r, project_id=project_id, claimed_until_ns=None)
                data.append(_run_row(run, "", FINISHED + (r.finished_ns or r.created_ns)))
            else:
                run = dataclasses.replace(
                    r,
                    project_id=project_id,
                    status="pending",
                    claimed_until_ns=None,
                    finished_ns=None,
                )
                data.append(_run_row(run, "", 1))
        self._put("evaluation_runs", data, _RUN_INSERT)
        return len(data)
