"""Evaluation runs read whole and written whole, for ``threadline migrate``: every run
of a project with its outcome (status, reason, score, judge tokens and cost), so the
runs list and each evaluator's totals carry over.

A run copied that was running (claimed by a server of the source) is copied as
pending: its claim belonged to that server, and the target's runner judges it again,
as it would after the lease ended. A finished run copied is counted in its
evaluator's totals, as when it finished; a run the target has already is left as it
is, so copying twice counts nothing twice."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace

from threadline.server.evaluation.model import RunRecord
from threadline.server.store.record_columns import RUNS
from threadline.server.store.sqlite.database import Database
from threadline.server.store.sqlite.evaluations import _run, add_to_totals

_FINISHED = ("done", "failed")


class RunTransfer(Database):
    def iter_runs(self, project_id: int, batch_size: int) -> Iterator[list[RunRecord]]:
        """Every run of the project, in batches in id order."""
        after = ""
        while True:
            with self._read() as conn:
                rows = conn.execute(
                    f"SELECT {RUNS.sql} FROM evaluation_runs WHERE project_id = ?"
                    " AND id > ? ORDER BY id LIMIT ?",
                    (project_id, after, batch_size),
                ).fetchall()
            if not rows:
                return
            runs = [_run(row) for row in rows]
            yield runs
            after = runs[-1].id

    def load_runs(self, project_id: int, runs: Sequence[RunRecord]) -> int:
        """Add runs as they are (a running one as pending); returns how many were new."""
        added = 0
        with self._transaction() as conn:
            for r in runs:
                status = r.status if r.status in _FINISHED else "pending"
                copied = replace(
                    r,
                    status=status,
                    finished_ns=r.finished_ns if status in _FINISHED else None,
                    claimed_until_ns=None,
                    project_id=project_id,
                )
                inserted = conn.execute(
                    f"INSERT OR IGNORE INTO evaluation_runs ({RUNS.sql}) VALUES ({RUNS.qmarks})",
                    RUNS.values(copied),
                ).rowcount
                added += inserted
                if inserted and status in _FINISHED:
                    add_to_totals(
                        conn,
                        project_id,
                        r.evaluator,
                        status,
                        r.input_tokens,
                        r.output_tokens,
                        r.cost_usd,
                    )
        return added
