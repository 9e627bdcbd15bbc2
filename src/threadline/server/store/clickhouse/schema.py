"""The ClickHouse schema: numbered migrations with a recorded version, and retention.

Migrations are the ``migrations/NNNN_*.sql`` files: every one whose version is not
recorded in ``threadline_schema`` is applied, in number order (not only those above the
highest: migrations were merged out of number order). Their statements are idempotent
(``IF NOT EXISTS``), so two servers starting at once against a new database both
succeed. Retention is not a migration: it is a deployment setting, applied as a TTL on
every data table whenever a store opens.
"""

from __future__ import annotations

import time
from typing import Any

from threadline.server.store import migrations

# The tables holding trace data, and the time their rows expire after. (`traces` and
# `sessions`, the versioned rollups before migration 0010, are no longer written.)
# The tables whose rows each name one trace (``trace_id``): deleting a trace deletes
# its rows from each of them (``ClickHouseStore.delete_traces``), and retention expires
# them with it.
TRACE_TABLES = (
    "spans",
    "trace_parts_by_id",
    "trace_parts_packed",
    "trace_times",
    "trace_activity",
    "session_members",
    "user_activity",  # user_activity.py
    "search_text",  # search.py
    "trace_model_parts_by_id",  # model_usage.py
    "trace_context",  # context use (context.py): row by row, one small row a trace
    "trace_labels",  # the users, tags and metadata values traces named (trace_labels.py)
    "genai_events",  # GenAI log events kept beside their spans (genai_events.py)
)
RETAINED_TABLES = (
    *TRACE_TABLES,
    "metric_slices",  # the dashboard's figures (metric_slices.py): row by row, few rows
)
_EXPIRY = "toDateTime(intDiv(end_ns, 1000000000))"
# The retained tables partitioned by time, whose expired data goes by whole parts
# (``ttl_only_drop_parts``); the others (``search_text``) expire row by row.
_DROPPED_BY_PARTS = (
    "spans",
    "trace_parts_by_id",
    "trace_parts_packed",
    "trace_times",
    "trace_activity",
    "session_members",
    "user_activity",
    "trace_labels",
)


def migrate(client: Any) -> int:
    """Apply the migrations not recorded as applied; return the highest version now."""
    client.command(
        "CREATE TABLE IF NOT EXISTS threadline_schema (version UInt32, applied_ns Int64)"
        " ENGINE = MergeTree ORDER BY version"
    )
    applied = {
        int(version)
        for (version,) in client.query("SELECT DISTINCT version FROM threadline_schema").result_rows
    }
    current = max(applied, default=0)
    for version, script in migrations.pending("threadline.server.store.clickhouse", applied):
        for statement in _statements(script):
            client.command(statement)
        client.insert(
            "threadline_schema",
            [[version, time.time_ns()]],
            column_names=["version", "applied_ns"],
        )
        current = max(current, version)
    return current


def apply_retention(client: Any, retention_days: int) -> None:
    """Make every data table keep rows ``retention_days`` after their end (0: forever).

    The tables partitioned by time (by month) lose expired data by whole parts
    (``ttl_only_drop_parts``): a part is dropped once all its rows expired, never
    rewritten row by row.
    """
    for table in RETAINED_TABLES:
        has_ttl = " TTL " in _create_statement(client, table)
        if retention_days > 0:
            if table in _DROPPED_BY_PARTS:
                client.command(f"ALTER TABLE {table} MODIFY SETTING ttl_only_drop_parts = 1")
            client.command(
                f"ALTER TABLE {table} MODIFY TTL {_EXPIRY} + toIntervalDay({int(retention_days)})"
            )
        elif has_ttl:
            client.command(f"ALTER TABLE {table} REMOVE TTL")


def _create_statement(client: Any, table: str) -> str:
    rows = client.query(
        "SELECT create_table_query FROM system.tables"
        " WHERE database = currentDatabase() AND name = %(table)s",
        parameters={"table": table},
    ).result_rows
    return rows[0][0] if rows else ""


def _statements(script: str) -> list[str]:
    """The statements of a migration: split on ';' at line ends, comments dropped."""
    lines = [line for line in script.splitlines() if not line.lstrip().startswith("--")]
    parts = (part.strip().rstrip(";").strip() for part in "\n".join(lines).split(";\n"))
    return [part for part in parts if part]
