"""SQL of the ClickHouse store: the newest version of each row, and the query filters.

Tables are only ever appended to (see ``migrations/0001_initial.sql``), so a table may
hold several versions of a trace, a session or a key until ClickHouse merges them. Every
read goes through one of the ``latest_*`` subqueries below, which keep the newest
version of each row by ``argMax`` over the version column: correct before any merge,
and without ``FINAL``. The row's fields are aggregated as one tuple, because ``argMax``
over a Nullable column alone would skip the NULLs of the newest version.

Parameters use clickhouse-connect's client-side binding, ``%(name)s``.
"""

from __future__ import annotations

from typing import Any

from threadline.server.model import SessionQuery, TraceQuery, datetime_to_ns

TRACE_FIELDS = (
    "session_id",
    "user_id",
    "name",
    "start_ns",
    "end_ns",
    "error_count",
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "cost_usd",
    "status",
    "tags",
    "metadata",
    "metadata_text",
    "input_preview",
    "output_preview",
)
# What a trace row reads back as (``store._trace_rollup`` takes them in this order).
TRACE_COLUMNS = (
    "trace_id, session_id, user_id, name, start_ns, end_ns, span_count, error_count,"
    " input_tokens, output_tokens, total_tokens, cost_usd, status, tags, metadata,"
    " input_preview, output_preview"
)

SESSION_FIELDS = (
    "trace_count",
    "span_count",
    "start_ns",
    "end_ns",
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "cost_usd",
    "error_count",
    "user_ids",
    "first_input",
    "last_output",
)
SESSION_COLUMNS = (
    "session_id, trace_count, span_count, start_ns, end_ns, input_tokens, output_tokens,"
    " total_tokens, cost_usd, error_count, user_ids, first_input, last_output"
)

# Sort orders of the sessions list -> (expression, cursor type), as on SQLite; an
# unknown cost sorts below every known one.
SESSION_SORTS: dict[str, tuple[str, type]] = {
    "last_activity": ("end_ns", int),
    "start": ("start_ns", int),
    "duration": ("(end_ns - start_ns)", int),
    "cost": ("coalesce(cost_usd, -1.0)", float),
    "tokens": ("total_tokens", int),
}


def _unpacked(fields: tuple[str, ...]) -> str:
    return ", ".join(f"tupleElement(row, {i}) AS {f}" for i, f in enumerate(fields, 1))


def latest_traces(where: str = "project_id = %(project)s") -> str:
    """Each trace's newest rollup, with ``span_count`` and ``written_ns`` (its latest
    write, for the live feed)."""
    return (
        f"SELECT trace_id, {_unpacked(TRACE_FIELDS)}, newest_count AS span_count,"
        " last_written_ns AS written_ns FROM ("
        f"SELECT trace_id, argMax(({', '.join(TRACE_FIELDS)}), span_count) AS row,"
        " max(span_count) AS newest_count, max(written_ns) AS last_written_ns"
        f" FROM traces WHERE {where} GROUP BY trace_id)"
    )


def latest_sessions() -> str:
    """Each session's newest rollup; sessions left without traces are not listed."""
    return (
        f"SELECT session_id, {_unpacked(SESSION_FIELDS)} FROM ("
        f"SELECT session_id, argMax(({', '.join(SESSION_FIELDS)}), version) AS row"
        " FROM sessions WHERE project_id = %(project)s GROUP BY session_id)"
        " WHERE tupleElement(row, 1) > 0"
    )


def latest_keys(where: str = "1") -> str:
    """Each API key's newest state: a revoked version wins over an active one."""
    fields = ("project_id", "key_hash", "prefix", "scope", "created_ns", "revoked_ns")
    return (
        f"SELECT id, {_unpacked(fields)} FROM (SELECT id, argMax(({', '.join(fields)}), is_revoked)"
        f" AS row FROM api_keys WHERE {where} GROUP BY id)"
    )


# Projects are one row per name; a name's first id stands (see ``create_project``).
LATEST_PROJECTS = "SELECT name, argMin(id, created_ns) AS id FROM projects GROUP BY name"


class Filters:
    """WHERE conditions and their parameters, built up one filter at a time."""

    def __init__(self, project_id: int):
        self.where: list[str] = []
        self.params: dict[str, Any] = {"project": project_id}

    def add(self, condition: str, **params: Any) -> None:
        self.where.append(condition)
        self.params.update(params)

    def param(self, value: Any) -> str:
        """A fresh placeholder bound to ``value``."""
        name = f"p{len(self.params)}"
        self.params[name] = value
        return f"%({name})s"

    def sql(self) -> str:
        return " AND ".join(self.where) if self.where else "1"

    def time_overlap(self, start: Any, end: Any) -> None:
        """Keep what was active in [start, end]: a long session shows in every window."""
        self.where += self.overlap_conditions(start, end)

    def overlap_conditions(self, start: Any, end: Any) -> list[str]:
        """The conditions of ``time_overlap``, with their parameters bound here, for the
        caller to place."""
        conditions = []
        if start is not None:
            conditions.append(f"end_ns >= {self.param(datetime_to_ns(start))}")
        if end is not None:
            conditions.append(f"start_ns <= {self.param(datetime_to_ns(end))}")
        return conditions

    def text_search(self, text: str, columns: tuple[str, ...]) -> None:
        """Keep rows with ``text`` in any of ``columns``: literal, ASCII case-insensitive
        (like SQLite's LIKE on the other backend)."""
        needle = self.param(text)
        self.where.append(
            "(" + " OR ".join(f"positionCaseInsensitive({c}, {needle}) > 0" for c in columns) + ")"
        )

    def trace_conditions(self, query: TraceQuery | SessionQuery) -> list[str]:
        """Conditions on a latest-trace row for the tag, metadata and live filters."""
        conditions: list[str] = []
        if query.tag:
            conditions.append(f"has(tags, {self.param(query.tag)})")
        for key, value in query.metadata.items():
            k = self.param(key)
            conditions.append(
                f"mapContains(metadata_text, {k}) AND metadata_text[{k}] = {self.param(value)}"
            )
        if query.changed_after is not None:
            conditions.append(f"written_ns > {self.param(query.changed_after)}")
        return conditions
