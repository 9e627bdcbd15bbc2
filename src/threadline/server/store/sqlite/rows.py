"""The SQLite store's SQL for spans, traces and sessions, made from the one declaration
of their columns (``store/columns.py``); rows become records in ``store/rows.py``.

SQLite keeps a rollup's tags, metadata and user ids as JSON text.
"""

from __future__ import annotations

from typing import Any

from threadline.server.jsontext import dumps
from threadline.server.store.columns import SESSIONS, SPAN_FACTS, SPANS, TRACES, Columns
from threadline.server.store.rollups import SessionRollup, TraceRollup
from threadline.server.store.sqlite.trace_keys import KEYS_OF


def _marks(columns: Columns) -> str:
    return ", ".join("?" * len(columns.names))


# A span row is followed by which of its payloads are JSON to pass through as stored
# (json_payloads.py) and its trace's key (trace_keys.py): the duplicate of a stored
# span, the same (trace key, span id), is ignored.
INSERT_SPAN = (
    f"INSERT OR IGNORE INTO spans ({SPANS.sql}, json_payloads, trace_key)"
    f" VALUES ({_marks(SPANS)}, ?, ?)"
)

# Only the small leading columns: typeof() reads a column's type from the record
# header without loading the payload. The rowid finds a span's payload later.
SPAN_FACTS_ROWID = SPAN_FACTS + Columns("rowid")
SELECT_SPAN_FACTS = (
    "SELECT "
    + SPAN_FACTS.select(has_input="typeof(input) != 'null'", has_output="typeof(output) != 'null'")
    + f", rowid FROM spans WHERE trace_key IN {KEYS_OF}"
)

_TRACE_ROW = Columns("project_id") + TRACES
SELECT_TRACES_FROM = f"SELECT {TRACES.sql} FROM traces"
SELECT_TRACES = SELECT_TRACES_FROM + " WHERE project_id = ?"
# The traces of a project whose ids fill the ``{}`` (``?``: the project first), found by
# their keys: the table's rowid is the trace's key (migration 0019), and no index of it
# is keyed by the trace id.
SELECT_TRACES_BY_ID = SELECT_TRACES_FROM + f" WHERE trace_key IN {KEYS_OF}"
# A rollup row is followed by its trace's key, the table's primary key: a rollup
# written again replaces the trace's row.
UPSERT_TRACE = (
    f"INSERT OR REPLACE INTO traces ({_TRACE_ROW.sql}, trace_key) VALUES ({_marks(_TRACE_ROW)}, ?)"
)
_TRACE_AS_IS = TRACES.getter()
_TRACE_TAGS, _TRACE_METADATA = (_TRACE_ROW.position(n) for n in ("tags", "metadata"))


def trace_row(project_id: int, r: TraceRollup) -> list[Any]:
    """A rollup's values in ``UPSERT_TRACE``'s order."""
    row = [project_id, *_TRACE_AS_IS(r)]
    row[_TRACE_TAGS] = dumps(r.tags)
    row[_TRACE_METADATA] = dumps(r.metadata)
    return row


_SESSION_ROW = Columns("project_id") + SESSIONS
SELECT_SESSIONS = f"SELECT {SESSIONS.sql} FROM sessions WHERE project_id = ?"
UPSERT_SESSION = (
    f"INSERT OR REPLACE INTO sessions ({_SESSION_ROW.sql}) VALUES ({_marks(_SESSION_ROW)})"
)
_SESSION_AS_IS = SESSIONS.getter()
_SESSION_USERS = _SESSION_ROW.position("user_ids")


def session_row(project_id: int, r: SessionRollup) -> list[Any]:
    """A rollup's values in ``UPSERT_SESSION``'s order."""
    row = [project_id, *_SESSION_AS_IS(r)]
    row[_SESSION_USERS] = dumps(r.user_ids)
    return row
