"""An export's rows for the three tables it is written to: ``span_intake`` (the spans and,
through its views, every rollup), ``search_text`` and ``trace_context``.

They are pure functions of the project and the spans, so an ingest worker process makes
them (``RowsPreparer``, the store's ``span_preparer``) and the server's writer only
sends them: a span's searchable words alone cost the writer ~0.3 ms (docs/benchmarks.md,
"ClickHouse ingest: one insert per table for a group of exports"). The exception is a
batch whose sessions the store may infer (``inferred_sessions.may_place``) in a project
that infers them, or whose setting the job did not know (``inference.py`` says how
stale it may be): naming them reads what other servers stored, which only the writer
can do, and the names change the rows; the worker then makes nothing, keeps the records
whole, and the writer makes the rows after placing them.

Rows made in the worker are the only rows of their batch: the records come back
without their attributes, inputs and outputs (``ingest/writer_records.py``), so the
writer could not make them again, and rows it cannot use are an error
(``base.PreparedForAnother``), never a reason to make others from what is left of the
records.

A group of exports ready together is then one insert per table (``merged``): ClickHouse
spends most of an insert on fixed costs (a part per target table, nine views on the
intake), so one insert of eight exports cost the engine a seventh of eight inserts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from threadline.server.model import SpanRecord
from threadline.server.store.clickhouse import context, inferred_sessions, intake, search


@dataclass
class ExportRows:
    """The rows of one batch (or of a group's batches), in each table's column order;
    ``project_id``: the project they were made for (a group's: its first batch's, the
    rows carrying each their own)."""

    project_id: int
    intake: list[list[Any]] = field(default_factory=list)
    search: list[list[Any]] = field(default_factory=list)
    context: list[list[Any]] = field(default_factory=list)


def rows_of(project_id: int, spans: Sequence[SpanRecord]) -> ExportRows:
    return ExportRows(
        project_id,
        intake.intake_rows(project_id, spans),
        search.rows(project_id, spans),
        context.rows(project_id, spans),
    )


@dataclass(frozen=True)
class RowsPreparer:
    """Makes a batch's rows in a worker process (picklable, sent with each job); None
    for a batch whose sessions the writer may still infer. ``infers_sessions``: the
    project's setting as the job knew it (None: not known, taken as on)."""

    infers_sessions: bool | None = None

    def __call__(self, project_id: int, spans: Sequence[SpanRecord]) -> ExportRows | None:
        if self.infers_sessions is not False and inferred_sessions.may_place(spans):
            return None
        return rows_of(project_id, spans)


def merged(batches: Sequence[ExportRows]) -> ExportRows:
    """The batches' rows as one insert per table. The views merge one insert's rows as
    they merge the parts of several, so the rollups are those of the batches inserted in
    turn; but for one thing: a span that two batches of the group carry with different
    amounts (tokens, cost) keeps the lesser copy's rather than the first's, the two
    copies being written at the same instant (merged_traces.py, ``_first_copies``)."""
    if len(batches) == 1:
        return batches[0]
    together = ExportRows(batches[0].project_id)
    for batch in batches:
        together.intake.extend(batch.intake)
        together.search.extend(batch.search)
        together.context.extend(batch.context)
    return together
