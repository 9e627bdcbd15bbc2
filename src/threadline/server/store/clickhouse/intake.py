"""An export as one insert: the rows of ``span_intake`` (migration 0010).

The writer sends each span once, with what the rollup needs that SQL cannot make
cheaply: tags as a list, metadata entries with their filter text, and the previews.
ClickHouse's materialized views do the rest (the span rows, the partial trace rollups,
the session memberships), so an export reads nothing back.

Input previews are parsed JSON (``previews.input_preview``), too costly for every span,
so each trace's batch makes one: for the span that stands for the batch's input by the
rollup rule (the root's when it has one, else the earliest span's with one). The span
standing for the whole trace's input is always that span of its own batch: the root is
the root of its batch too, and the earliest span with an input overall is the earliest
in its batch. Spans without a preview made never win, so the merged rollup finds the
same preview as the SQLite store, given the same session and user ids; those ids are
the batch's own (as the trace's rule picks them from the batch), which differ from the
whole trace's only when an argument list's one other text is another session's id.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from threadline.server.jsontext import dumps
from threadline.server.model import SpanRecord, metadata_text
from threadline.server.previews import input_preview
from threadline.server.store import rows as table_rows
from threadline.server.store.columns import SPANS

COLUMNS = [
    *SPANS.names,
    "tag_list",
    "meta_entries",
    "input_preview",
    "output_preview",
]


def intake_rows(project_id: int, spans: Sequence[SpanRecord]) -> list[list[Any]]:
    """One row per span of the export, in ``COLUMNS`` order."""
    by_trace: dict[str, list[SpanRecord]] = defaultdict(list)
    for span in spans:
        by_trace[span.trace_id].append(span)
    previews: dict[int, str | None] = {}
    for batch in by_trace.values():
        source, ids = _input_source(batch)
        if source is not None:
            previews[id(source)] = input_preview(source.input_text, ids)
    resources: dict[int, str] = {}
    data = []
    for span in spans:
        resource = resources.get(id(span.resource))
        if resource is None:
            resource = resources[id(span.resource)] = dumps(span.resource)
        data.append(
            [
                *table_rows.span_row(project_id, span, resource),
                span.tags,
                [(key, dumps(value), metadata_text(value)) for key, value in span.metadata.items()],
                previews.get(id(span)),
                span.output_preview,
            ]
        )
    return data


def _input_source(batch: list[SpanRecord]) -> tuple[SpanRecord | None, list[str]]:
    """The span standing for this batch's input, and the batch's session and user ids
    (the root's, else the earliest span's that has one), by the rollup rule."""
    by_start = sorted(batch, key=lambda s: (s.start_ns, s.span_id))
    root = next((s for s in by_start if s.parent_span_id is None), by_start[0])
    session = root.session_id or next((s.session_id for s in by_start if s.session_id), None)
    user = root.user_id or next((s.user_id for s in by_start if s.user_id), None)
    ids = [i for i in (session, user) if i]
    if root.has_input:
        return root, ids
    return next((s for s in by_start if s.has_input), None), ids
