"""Each trace's usage by model on ClickHouse, kept the way the trace rollups are
(migration 0010): a materialized view turns every insert into ``span_intake`` into a
partial row per (trace, model) whose amounts are kept per span id, so a span delivered
twice counts once and a write never reads. Retention expires it with the trace parts
(``schema.RETAINED_TABLES``). Reads merge a trace's parts and take each
span's first written copy, as ``queries.latest_traces`` does for the trace's totals.

Not a numbered migration: the view reads ``span_intake``, which migration 0010 makes,
and a store already past 0010 would never apply a lower number; ``ensure`` runs at
every start and is idempotent (``IF NOT EXISTS``; the backfill of a store that had
spans before is made of idempotent states, so two servers starting at once are fine).
The backfill runs after the view is made (no span can fall between them), so the view
alone cannot say it is done: an empty table, ``trace_model_backfill_due``, made before
the view and dropped after the backfill, says it is not. A server stopped anywhere
between backfills at its next start; one that backfills twice adds nothing.

Only spans that used something (tokens or a cost) make a row: most spans (roots, tools,
steps) use nothing, and a row of theirs, an empty state, counted nothing while it was
read, copied and merged like the others.

The rows are read by trace id (a filtered dashboard's few hundred traces) in 64-row
granules and small compressed blocks, as ``trace_parts_by_id`` is (migration 0011):
in the 8,192-row granules of the first table, ``trace_model_parts``, a day's part of a
month's traffic was one granule, so a few hundred ids read every row of the month
(docs/benchmarks.md). ClickHouse cannot change a table's granules in place; ``ensure``
moves a store's rows from that table as 0011 moved the trace parts: the new view first
(an insert from then on lands in both tables), then the copy (a row copied twice merges
into one), then the old view goes and the old table is emptied; two servers doing it
at once do no harm in any interleaving, and one stopped midway finishes the move at
its next start (the old view goes only after the copy). A store whose view wrote a row
for every span has that view replaced the same way, and its empty rows deleted before
the old view goes (rows it writes in between are empty: they count nothing).
"""

from __future__ import annotations

from typing import Any

TABLE = "trace_model_parts_by_id"
_TABLE = """
CREATE TABLE IF NOT EXISTS trace_model_parts_by_id (
    project_id  UInt64,
    trace_id    String,
    model       String,
    start_ns    SimpleAggregateFunction(min, Int64),
    end_ns      SimpleAggregateFunction(max, Int64),  -- what retention expires rows by
    -- (span id, written, input, output, total tokens, cost), as trace_parts_by_id.amounts
    amounts     AggregateFunction(groupUniqArray,
                    Tuple(String, Int64, Int64, Int64, Int64, Nullable(Float64)))
) ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMMDD(toDateTime(intDiv(start_ns, 1000000000)))
ORDER BY (project_id, trace_id, model)
SETTINGS index_granularity = 64, min_compress_block_size = 4096,
    max_compress_block_size = 16384
"""
_VIEW_NAME = "trace_model_usage_from_intake"
# The view before it, which wrote a row (empty for most) for every span's trace and model.
_EVERY_SPAN_VIEW = "trace_model_parts_by_id_from_intake"
# While this (empty) table exists, the spans stored before the view still need their
# usage copied (``ensure``).
_BACKFILL_DUE = "trace_model_backfill_due"
_DUE = f"CREATE TABLE IF NOT EXISTS {_BACKFILL_DUE} (due UInt8) ENGINE = MergeTree ORDER BY due"
# The first table and its view (8,192-row granules), whose rows ``ensure`` moves.
_OLD_TABLE, _OLD_VIEW = "trace_model_parts", "trace_model_parts_from_intake"
_HAS_AMOUNTS = (
    "isNotNull(input_tokens) OR isNotNull(output_tokens) OR isNotNull(total_tokens)"
    " OR isNotNull(cost_usd)"
)
_VIEW = f"""
CREATE MATERIALIZED VIEW IF NOT EXISTS {_VIEW_NAME} TO {TABLE} AS
    SELECT project_id, trace_id, ifNull(model, '') AS model, min(start_ns) AS start_ns,
        max(end_ns) AS end_ns, groupUniqArrayState((span_id, toUnixTimestamp64Nano(now64(9)),
            coalesce(input_tokens, 0), coalesce(output_tokens, 0), coalesce(total_tokens, 0),
            cost_usd)) AS amounts
    FROM span_intake WHERE {_HAS_AMOUNTS} GROUP BY project_id, trace_id, model
"""
_BACKFILL = f"""
INSERT INTO {TABLE}
    SELECT project_id, trace_id, ifNull(model, ''), min(start_ns), max(end_ns),
        groupUniqArrayState((span_id, ingested_ns, coalesce(input_tokens, 0),
            coalesce(output_tokens, 0), coalesce(total_tokens, 0), cost_usd))
    FROM spans WHERE {_HAS_AMOUNTS} GROUP BY project_id, trace_id, ifNull(model, '')
"""
_USED_SOMETHING = "notEmpty(finalizeAggregation(amounts))"


def ensure(client: Any) -> None:
    """Make the table and its view if missing; a store with spans from before the view
    gets their usage once: moved from the first table if it has one, else from the
    spans."""
    client.command(_TABLE)
    if not _exists(client, _VIEW_NAME):
        if not (_exists(client, _EVERY_SPAN_VIEW) or _exists(client, _OLD_TABLE)):
            client.command(_DUE)
        client.command(_VIEW)
    if _exists(client, _BACKFILL_DUE):
        client.command(_BACKFILL)
        client.command(f"DROP TABLE IF EXISTS {_BACKFILL_DUE}")
    # Each old view is dropped only after its rows are dealt with: while it is there,
    # that step is not done (a server stopped before it does it at its next start).
    if _exists(client, _OLD_VIEW):
        client.command(f"INSERT INTO {TABLE} SELECT * FROM {_OLD_TABLE} WHERE {_USED_SOMETHING}")
        client.command(f"DROP VIEW IF EXISTS {_OLD_VIEW}")
        client.command(f"TRUNCATE TABLE IF EXISTS {_OLD_TABLE}")
    if _exists(client, _EVERY_SPAN_VIEW):
        # Only a row whose state is empty goes: one merged with a row that used
        # something holds that row's amounts now.
        client.command(
            f"ALTER TABLE {TABLE} DELETE WHERE NOT {_USED_SOMETHING} SETTINGS mutations_sync = 1"
        )
        client.command(f"DROP VIEW IF EXISTS {_EVERY_SPAN_VIEW}")


def _exists(client: Any, table: str) -> bool:
    return bool(
        client.query(
            "SELECT count() FROM system.tables WHERE database = currentDatabase()"
            " AND name = %(table)s",
            parameters={"table": table},
        ).result_rows[0][0]
    )


def latest(traces: str) -> str:
    """Each (trace, model)'s usage among the trace ids ``traces`` selects: (cost spans,
    cost in picodollars, input, output, total tokens) as ``usage``."""
    return latest_where(f"trace_id IN ({traces})")


def latest_where(where: str) -> str:
    """``latest`` of the (trace, model) parts meeting ``where`` (besides the project):
    it must select all of a (trace, model)'s parts or none."""
    first_copies = (
        "arrayFilter((x, i) -> i = 1 OR copies[i - 1].1 != x.1, copies, arrayEnumerate(copies))"
    )
    return (
        "SELECT trace_id, model, (arrayCount(x -> isNotNull(x.6), spans),"
        " arraySum(x -> if(isNull(x.6), 0, toInt64(assumeNotNull(x.6) * 1e12 + 0.5)), spans),"
        " arraySum(x -> x.3, spans), arraySum(x -> x.4, spans), arraySum(x -> x.5, spans))"
        f" AS usage FROM (SELECT trace_id, model, {first_copies} AS spans FROM"
        " (SELECT trace_id, model, arraySort(groupUniqArrayMerge(amounts)) AS copies"
        f" FROM {TABLE} WHERE project_id = %(project)s"
        f" AND {where} GROUP BY trace_id, model))"
    )
