"""Each trace's usage by model, kept in its ``traces`` row (``model_usage``, migration
0017) as a small JSON object: model ('' for spans without one) -> [spans whose cost is
known, cost in 1e-12 USD, input, output, total tokens], only the models that used
something, NULL for none.

The row is rewritten whenever the trace is, so the usage costs no write of its own: a
table of its own (0010 to 0016) cost two more B-tree inserts per trace at random pages.
The stored usage of a trace a batch adds to is read before its row is replaced. SQL
reads the object with ``json_each`` (the delete trigger); the filtered dashboard reads the
column and adds it up here.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from threadline.server.jsontext import dumps, loads
from threadline.server.store.model_usage import NO_MODEL, ModelSpan, picodollars
from threadline.server.store.sqlite import rows as schema
from threadline.server.store.sqlite.chunked import select_in
from threadline.server.store.sqlite.driver import sqlite3
from threadline.server.store.sqlite.trace_keys import KEYS_OF

UPSERT_TRACE = schema.UPSERT_TRACE.replace(") VALUES (", ", model_usage) VALUES (?, ", 1)
# The same usage summed again from a trace's spans (written in one transaction with the
# rollup, so all of them are there).
_FROM_SPANS = (
    "SELECT trace_id, COALESCE(model, ''), COUNT(cost_usd),"
    " COALESCE(SUM(CAST(cost_usd * 1e12 + 0.5 AS INTEGER)), 0), COALESCE(SUM(input_tokens), 0),"
    " COALESCE(SUM(output_tokens), 0), COALESCE(SUM(total_tokens), 0)"
    f" FROM spans WHERE trace_key IN {KEYS_OF} GROUP BY trace_id, 2"
)
_STORED = (
    f"SELECT trace_id, model_usage FROM traces WHERE trace_key IN {KEYS_OF}"
    " AND model_usage IS NOT NULL"
)

# A model's usage: spans whose cost is known, cost in 1e-12 USD, input, output, total
# tokens (the packed column's order).
Used = list[int]
# Traces' usage: (the start of a trace, its usage by model), one a trace.
Rows = list[tuple[int, dict[str, Used]]]


@dataclass
class BatchUsage:
    """The usage by model of the traces a batch writes: each one's packed column, and
    the usage their old rows held and their new ones hold, for the per-hour sums."""

    packed: dict[str, str | None] = field(default_factory=dict)
    replaced: Rows = field(default_factory=list)
    written: Rows = field(default_factory=list)


def for_batch(
    conn: sqlite3.Connection,
    project_id: int,
    starts: Mapping[str, int],
    batch: Mapping[str, Sequence[ModelSpan]],
    stored: Mapping[str, int],
    all_new: Collection[str],
) -> BatchUsage:
    """The usage by model of the traces whose rollups are about to be written, read
    before their rows are replaced.

    ``starts``: each such trace's start (its new rollup's); ``batch``: its spans in this
    batch; ``stored``: the start of each trace stored before the batch; ``all_new``: the
    traces none of whose batch spans was stored before. A trace new to the store has all
    its spans in hand; one stored before whose batch spans were all new adds them to its
    stored usage; any other (a retry mixed with new spans) is summed again from its spans.
    (Ingest gives only the traces stored before: those new to the store had their usage
    worked out with the batch, ``metric_upkeep.new_traces``.)
    """
    found = BatchUsage()
    usage: dict[str, dict[str, Used]] = {}
    before = [t for t in starts if t in stored]
    for trace_id, text in select_in(conn, _STORED, (project_id,), before):
        found.replaced.append((stored[trace_id], unpack(text)))
        if trace_id in all_new:
            usage[trace_id] = unpack(text)  # added to below: not the rows replaced
    recount = [t for t in before if t not in all_new]
    for trace_id, model, *used in select_in(conn, _FROM_SPANS, (project_id,), recount):
        if any(used):
            usage.setdefault(trace_id, {})[model] = used
    for trace_id in starts:
        if trace_id in stored and trace_id not in all_new:
            continue
        models = usage.get(trace_id)
        if models is None:
            models = usage[trace_id] = {}
        _add_spans(models, batch[trace_id])
    packed, written = found.packed, found.written
    for trace_id, models in usage.items():
        packed[trace_id] = pack(models)
        written.append((starts[trace_id], models))
    return found


def of_spans(spans: Sequence[ModelSpan]) -> dict[str, Used]:
    """The usage by model of ``spans`` (those of a trace new to the store: all of it)."""
    models: dict[str, Used] = {}
    _add_spans(models, spans)
    return models


def _add_spans(models: dict[str, Used], spans: Sequence[ModelSpan]) -> None:
    """Add what ``spans`` used to each model's usage (most spans, tools and steps, use
    nothing and are passed over)."""
    for span in spans:
        cost = span.cost_usd
        i, o, t = span.input_tokens, span.output_tokens, span.total_tokens
        if cost is None and not (i or o or t):
            continue
        model = span.model or NO_MODEL
        used = models.get(model)
        if used is None:
            used = models[model] = [0, 0, 0, 0, 0]
        if cost is not None:
            used[0] += 1
            used[1] += picodollars(cost)
        if i:
            used[2] += i
        if o:
            used[3] += o
        if t:
            used[4] += t


def pack(models: Mapping[str, Used]) -> str | None:
    """The column of a trace's usage by model (only models that used something)."""
    # orjson, a few times faster than writing the text by hand (docs/benchmarks.md).
    return dumps(models) if models else None


def unpack(text: str | None) -> dict[str, Used]:
    """A trace's usage by model from its column."""
    return json.loads(text) if text else {}


def by_group_and_bucket(rows: Iterable[tuple[str | None, int, str]]) -> list[tuple]:
    """The usage by model of traces given as (group, bucket, column), added up per
    (group, model, bucket) in the shape ``MetricsRows.models`` holds: (group, model,
    bucket, cost in picodollars or None when no span's cost is known, input, output, total
    tokens). A column may hold the columns of several traces joined by commas (SQL's
    ``group_concat``)."""
    sums: dict[tuple[str | None, str, int], list[int]] = {}
    for group, bucket, text in rows:
        for usage in loads(f"[{text}]"):
            for model, (costed, cost, tokens_in, tokens_out, tokens_total) in usage.items():
                key = (group, model, bucket)
                total = sums.get(key)
                if total is None:
                    sums[key] = [costed > 0, cost, tokens_in, tokens_out, tokens_total]
                else:
                    total[0] += costed > 0
                    total[1] += cost
                    total[2] += tokens_in
                    total[3] += tokens_out
                    total[4] += tokens_total
    return [
        (group, model, bucket, cost if traces else None, i, o, t)
        for (group, model, bucket), (traces, cost, i, o, t) in sums.items()
    ]
