"""Several prepared batches of spans made one, to be written in one transaction.

The writer commits together the exports that became ready while it was busy
(``SpanWrites.write_span_batches``). Writing a project's batches as one batch is what
makes that cheaper than writing them in turn: each trace and session they touch is
rolled up, read and written once for the group, not once per export, and the group
pays for one commit. A trace whose spans came in more than one of the batches is
rolled up again from all of them (as if none of it was stored before, the first copy
of a span winning, as the insert keeps it), its records' inputs and outputs taken from
their rows (``span_batch.restore_payloads``); the rest is concatenation.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from threadline.server.model import SpanRecord
from threadline.server.store.base import SpanBatch
from threadline.server.store.rows import Unpack
from threadline.server.store.sqlite import metric_upkeep, search
from threadline.server.store.sqlite.span_batch import (
    FreshTrace,
    PreparedSpans,
    fresh_traces,
    new_aggregates,
    restore_payloads,
)


class ProjectBatch(NamedTuple):
    """One project's spans of a group, and their preparation."""

    project_id: int
    spans: Sequence[SpanRecord]
    prepared: PreparedSpans


def by_project(
    batches: Sequence[SpanBatch],
    prepare: Callable[[int, Sequence[SpanRecord]], PreparedSpans],
    unpack: Unpack,
) -> list[ProjectBatch]:
    """The non-empty ``batches`` as one batch per project, in the order each project
    first appears. A batch not prepared is prepared here with ``prepare``; one prepared
    for another project or by another store raises ``PreparedForAnother``; ``unpack``
    reads the payloads of its rows."""
    parts: dict[int, list[ProjectBatch]] = defaultdict(list)
    for batch in batches:
        if not batch.spans:
            continue
        prepared = batch.prepared_as(PreparedSpans, "SQLite's preparation")
        if prepared is None:
            prepared = prepare(batch.project_id, batch.spans)
        parts[batch.project_id].append(ProjectBatch(batch.project_id, batch.spans, prepared))
    return [merged(project_parts, unpack) for project_parts in parts.values()]


def merged(parts: Sequence[ProjectBatch], unpack: Unpack) -> ProjectBatch:
    """The batches of one project (in the order they were given) as one."""
    if len(parts) == 1:
        return parts[0]
    project_id = parts[0].project_id
    spans = [span for part in parts for span in part.spans]
    rows: dict[str, list[list[Any]]] = defaultdict(list)
    fresh: dict[str, FreshTrace] = {}
    shared: set[str] = set()  # traces with spans in more than one of the batches
    for part in parts:
        for trace_id, trace_rows in part.prepared.rows.items():
            rows[trace_id].extend(trace_rows)
        for trace_id, trace in part.prepared.fresh.items():
            if trace_id in fresh:
                shared.add(trace_id)
            else:
                fresh[trace_id] = trace
    documents = search.Documents()
    aggregates = metric_upkeep.NewTraces()
    for part in parts:
        documents.extend(part.prepared.documents, leaving=shared)
        aggregates.add(part.prepared.aggregates)
    if shared:
        for part in parts:
            restore_payloads(part.spans, part.prepared.rows, shared, unpack)
            aggregates.take_back(
                (t.rollup for i, t in part.prepared.fresh.items() if i in shared),
                part.prepared.aggregates.packed,
            )
        again = fresh_traces(project_id, [s for s in spans if s.trace_id in shared])
        fresh.update(again)
        # One document each, from the first copy of each span, as the insert keeps it.
        documents.extend(search.documents([trace.spans for trace in again.values()]))
        aggregates.add(new_aggregates(again))
    samples = [p.prepared.samples for p in parts if p.prepared.samples is not None]
    return ProjectBatch(
        project_id,
        spans,
        PreparedSpans(
            project_id,
            dict(rows),
            fresh,
            documents,
            [sample for some in samples for sample in some] if samples else None,
            aggregates,
        ),
    )
