"""Each trace's usage by model (``trace_model_usage``, migration 0010), written in the
transaction that writes its rollup, with the trace's start (the hour its usage counts
in). A deleted trace's rows go with it (a trigger).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any

from threadline.server.store.model_usage import ModelSpan, ModelUsage, usage_by_model
from threadline.server.store.sqlite.driver import sqlite3

_COLUMNS = "model, spans, cost_spans, cost_pico, input_tokens, output_tokens, total_tokens"
_UPSERT = (
    "INSERT OR REPLACE INTO trace_model_usage (project_id, trace_id, start_ns, "
    f"{_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# A trace's usage summed again from its spans (written in one transaction with the
# rollup, so all of them are there).
_FROM_SPANS = (
    "SELECT trace_id, COALESCE(model, ''), COUNT(*), COUNT(cost_usd),"
    " COALESCE(SUM(CAST(cost_usd * 1e12 + 0.5 AS INTEGER)), 0), COALESCE(SUM(input_tokens), 0),"
    " COALESCE(SUM(output_tokens), 0), COALESCE(SUM(total_tokens), 0)"
    " FROM spans WHERE project_id = ? AND trace_id IN ({}) GROUP BY trace_id, 2"
)
_STORED = (
    f"SELECT trace_id, start_ns, {_COLUMNS} FROM trace_model_usage"
    " WHERE project_id = ? AND trace_id IN ({})"
)
_CHUNK = 500

Rows = list[tuple[int, ModelUsage]]


def write(
    conn: sqlite3.Connection,
    project_id: int,
    starts: Mapping[str, int],
    batch: Mapping[str, Sequence[ModelSpan]],
    stored: Collection[str],
    all_new: Collection[str],
) -> tuple[Rows, Rows]:
    """Write the usage by model of the traces whose rollups were just written; returns
    the rows replaced and the rows written, each with its trace's start.

    ``starts``: each such trace's start (its new rollup's); ``batch``: its spans in
    this batch; ``stored``: the traces stored before the batch; ``all_new``: those none
    of whose batch spans was stored before. A trace new to the store has all its spans
    in hand; one stored before whose batch spans were all new adds them to its stored
    usage; any other (a retry mixed with new spans) is summed again from its spans.
    """
    before = [t for t in starts if t in stored]
    replaced: Rows = []
    usage: dict[str, dict[str, ModelUsage]] = {t: {} for t in starts}
    for trace_id, start_ns, *row in _select_in(conn, _STORED, project_id, before):
        replaced.append((start_ns, ModelUsage(*row)))
        # Every stored row is rewritten (with the new start), zero if nothing is left.
        usage[trace_id][row[0]] = ModelUsage(row[0])
        if trace_id in all_new:
            usage[trace_id][row[0]].add(ModelUsage(*row))
    recount = [t for t in before if t not in all_new]
    for trace_id, *row in _select_in(conn, _FROM_SPANS, project_id, recount):
        usage[trace_id][row[0]] = ModelUsage(*row)
    for trace_id in starts:
        if trace_id in stored and trace_id not in all_new:
            continue
        for model, more in usage_by_model(batch[trace_id]).items():
            found = usage[trace_id].get(model)
            if found is not None:
                found.add(more)
            elif not more.is_empty:
                # Nothing used (spans without a model, such as tools): no row.
                usage[trace_id][model] = more
    written: Rows = [(starts[t], u) for t, models in usage.items() for u in models.values()]
    rows: list[tuple[Any, ...]] = [
        (
            project_id,
            trace_id,
            starts[trace_id],
            u.model,
            u.spans,
            u.cost_spans,
            u.cost_pico,
            u.input_tokens,
            u.output_tokens,
            u.total_tokens,
        )
        for trace_id, models in usage.items()
        for u in models.values()
    ]
    conn.executemany(_UPSERT, rows)
    return replaced, written


def _select_in(
    conn: sqlite3.Connection, sql: str, project_id: int, ids: Sequence[str]
) -> Iterator[tuple[Any, ...]]:
    for i in range(0, len(ids), _CHUNK):
        chunk = ids[i : i + _CHUNK]
        yield from conn.execute(sql.format(", ".join("?" * len(chunk))), (project_id, *chunk))
