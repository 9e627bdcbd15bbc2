"""An export's rows for the three tables it is written to: ``span_intake`` (the spans and,
through its views, every rollup), ``search_text`` and ``trace_context``.

They are pure functions of the project and the spans, so an ingest worker process makes
them (``RowsPreparer``, the store's ``span_preparer``) and the server's writer only
sends them: a span's searchable words alone cost the writer ~0.3 ms (docs/benchmarks.md,
"ClickHouse ingest: one insert per table for a group of exports"). In a project that
infers sessions the worker names them first (``inferred_sessions.place_alone``), as the
writer would, and the rows carry the response ids' sessions for the writer to store.
Two batches are left to the writer, which makes nothing of them in the worker, keeps
the records whole and makes the rows after placing them: one that asks for a response
it does not answer itself (the Responses chain names a turn after what other servers
stored, which only the writer reads), and one whose sessions the store may infer
(``inferred_sessions.may_place``) when the preparer does not know the project's setting
(one made for any project: the pipeline reads the setting before making a job that
lacks it, ``inference.py``).

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
    # The sessions of the response ids the batch's inferred turns carry (``response_
    # sessions``): stored batch by batch before the group's insert, where a later
    # batch's lookup finds them; not part of ``merged``.
    responses: list[list[object]] = field(default_factory=list)


def rows_of(project_id: int, spans: Sequence[SpanRecord]) -> ExportRows:
    return ExportRows(
        project_id,
        intake.intake_rows(project_id, spans),
        search.rows(project_id, spans),
        context.rows(project_id, spans),
    )


@dataclass(frozen=True)
class RowsPreparer:
    """Makes a batch's rows in a worker process (picklable, sent with each job), its
    inferred sessions named; None for a batch whose sessions only the writer can name.
    ``infers_sessions``: the project's setting as the job knew it (None: not known, a
    preparer for any project; taken as on)."""

    infers_sessions: bool | None = None

    def __call__(self, project_id: int, spans: Sequence[SpanRecord]) -> ExportRows | None:
        if self.infers_sessions is False:
            return rows_of(project_id, spans)
        if self.infers_sessions is None:
            return None if inferred_sessions.may_place(spans) else rows_of(project_id, spans)
        placement = inferred_sessions.place_alone(project_id, spans)
        if placement is None:
            return None
        rows = rows_of(project_id, placement.spans)
        rows.responses = placement.responses
        return rows


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
