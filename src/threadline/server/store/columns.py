"""Each stored table's columns, declared once for both backends.

A ``Columns`` is a table's columns (or a query's) in the one order every backend writes
and reads them. The SQL column lists, a row's values in insert order and a row read
back by name all come from it, so a column is added in one place and no code counts
positions. ``store/rows.py`` turns rows into records and back with these; the backends
only write the SQL around them (and say how they store a column that differs, such as
ClickHouse's tags array).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields
from operator import attrgetter
from typing import Any, TypeVar

from threadline.server.model import SpanRecord
from threadline.server.store.rollups import SessionRollup, TraceRollup

R = TypeVar("R")


class Columns:
    """Column names in order; ``sql`` is their list as a SELECT or INSERT takes it."""

    def __init__(self, *names: str) -> None:
        self.names = names
        self.sql = ", ".join(names)
        self._positions = {name: i for i, name in enumerate(names)}

    def __add__(self, more: Columns) -> Columns:
        return Columns(*self.names, *more.names)

    def position(self, name: str) -> int:
        return self._positions[name]

    def named(self, row: Sequence[Any]) -> dict[str, Any]:
        """A row that starts with these columns as a dict by column name (columns after
        them, such as a sort key a query added, are left out)."""
        return dict(zip(self.names, row, strict=False))

    def getter(self, *skip: str) -> attrgetter[Any]:
        """Reads the attributes of these names (but ``skip``) off a record, in order."""
        return attrgetter(*(name for name in self.names if name not in skip))

    @property
    def qmarks(self) -> str:
        """One ``?`` a column: the VALUES of a SQLite insert of these columns."""
        return ", ".join("?" * len(self.names))

    def qualified(self, alias: str) -> str:
        """The column list of a table named ``alias`` in a join (``k.id, k.name``)."""
        return ", ".join(f"{alias}.{name}" for name in self.names)

    def values(self, record: Any, **encode: Callable[[Any], Any]) -> list[Any]:
        """``record``'s attributes of these names, in order, for an insert; those named
        in ``encode`` are converted to how the table stores them."""
        return [
            encode[name](getattr(record, name)) if name in encode else getattr(record, name)
            for name in self.names
        ]

    def read(
        self,
        row: Sequence[Any] | Mapping[str, Any],
        make: Callable[..., R],
        **decode: Callable[[Any], Any],
    ) -> R:
        """A row that starts with these columns (or a wider row already ``named``) as
        ``make(column=value, ...)``; those named in ``decode`` are converted back from
        how the table stores them."""
        if isinstance(row, Mapping):
            named = {name: row[name] for name in self.names}
        else:
            named = self.named(row)
        for name, convert in decode.items():
            named[name] = convert(named[name])
        return make(**named)

    def select(self, **expressions: str) -> str:
        """The column list with some columns computed (``name=SQL``, as ``SQL AS name``)."""
        return ", ".join(
            f"{expressions[name]} AS {name}" if name in expressions else name for name in self.names
        )


# A span row, in insert order: every stored field of a SpanRecord, after the project.
SPANS = Columns(
    "project_id",
    "trace_id",
    "span_id",
    "parent_span_id",
    "start_ns",
    "end_ns",
    "status",
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "cost_usd",
    "session_id",
    "user_id",
    "metadata",
    "tags",
    "name",
    "kind",
    "span_type",
    "model",
    "scope",
    "status_message",
    "input_source",
    "output_source",
    "input",
    "output",
    "resource",
    "events",
    "attributes",
)
# What a SpanRecord carries for the write transaction only, kept elsewhere than in its
# row (the keys inferred sessions are grouped by have tables of their own), and what it
# carries in the ingest worker only (its input and output parsed).
_SPAN_NOT_STORED = frozenset(("session_signals", "input_messages", "output_messages"))
_SPAN_STORED = tuple(f.name for f in fields(SpanRecord) if f.name not in _SPAN_NOT_STORED)
assert set(SPANS.names) == {"project_id", *_SPAN_STORED}, "a SpanRecord field has no column"

# A stored span read back whole, as the SpanRecord it was written from (for migrate).
SPAN_RECORD = Columns("project_id", *_SPAN_STORED)

# What a span's detail shows.
SPAN_DETAIL = Columns(
    "span_id",
    "parent_span_id",
    "name",
    "span_type",
    "kind",
    "start_ns",
    "end_ns",
    "status",
    "status_message",
    "input",
    "output",
    "model",
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "cost_usd",
    "attributes",
    "events",
    "resource",
    "input_source",
    "output_source",
)

# What a trace's rollup reads of its stored spans: no payload, only whether there is
# one (``has_input`` and ``has_output`` are each backend's expressions).
SPAN_FACTS = Columns(
    "trace_id",
    "span_id",
    "parent_span_id",
    "name",
    "start_ns",
    "end_ns",
    "status",
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "cost_usd",
    "session_id",
    "user_id",
    "metadata",
    "tags",
    "has_input",
    "has_output",
    "model",
)

# A trace's rollup and a session's: the fields of the records, in their order.
TRACES = Columns(*(f.name for f in fields(TraceRollup)))
SESSIONS = Columns(*(f.name for f in fields(SessionRollup)))

# A user's totals over the traces that carry their id (each backend aggregates them).
USER_TOTALS = Columns(
    "user_id",
    "session_count",
    "trace_count",
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "cost_usd",
    "error_count",
    "first_seen_ns",
    "last_seen_ns",
)
