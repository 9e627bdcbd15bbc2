"""A span's API JSON written by SQLite, in C, as ``trace_json.span_json`` writes it in
Python: the bulk export's fast path (docs/benchmarks.md, export, round 5).

Each expression here yields exactly the bytes ``span_json`` would, or NULL where it
cannot be sure of them; NULL spreads through ``||``, so a span whose JSON has any part
SQLite cannot vouch for comes back NULL and is written by ``span_json`` instead. What
SQLite writes, and why it matches:

- strings and integers: ``json_quote``, which escapes as orjson does (``"``, ``\\``,
  the control characters, with the same short forms, nothing else);
- times: ``datetime.fromtimestamp(ns / 1e9)`` redone step by step in the same double
  arithmetic (a double's whole part taken off is exact; the microseconds rounded half
  to even), then written as orjson writes a UTC time;
- the duration: ``(end - start) / 1e6`` for a whole number of nanoseconds below 10^15
  (at most 15 digits: its shortest form is its decimal, which orjson writes without an
  exponent from 10 ns up);
- inputs and outputs: plain text quoted; JSON passed through when ``json_valid`` takes
  it and orjson surely does too (orjson also refuses numbers beyond a double and lone
  surrogate escapes: texts that may hold either go the Python way);
- attributes, resource and events when they are passed through unparsed.

The cost is left to Python (a float's shortest form is not SQLite's): the span comes
back in two parts around it. ``tests/store/test_span_json_sql.py`` holds these equal.
"""

from __future__ import annotations

from threadline.server.store.columns import Columns

# What may start JSON (``trace_json._MAY_START_JSON``): text starting otherwise is plain.
_MAY_START_JSON = '{["-0123456789tfnNI \t\n\r'
_SURELY_SHALLOW = 64  # rows.MAX_PAYLOAD_DEPTH, checked in the tests
# A run of digits this long may be a number beyond a double (orjson refuses those); any
# digit followed by an exponent may be too. Such texts go the Python way.
_LONG_DIGITS = "[0-9]" * 20


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _quoted(column: str) -> str:
    """A string or integer column as JSON; a real (never written there) goes to Python."""
    return f"CASE typeof({column}) WHEN 'real' THEN NULL ELSE json_quote({column}) END"


def _time(column: str) -> str:
    """``ns_to_datetime(column)`` as orjson writes it (``"...Z"``), NULL before 1970."""
    seconds = f"({column} / 1e9)"
    whole = f"CAST({seconds} AS INTEGER)"
    micros = f"(({seconds} - {whole}) * 1e6)"  # modf, then times 10^6: as Python does
    floor = f"CAST({micros} AS INTEGER)"
    rest = f"({micros} - {floor})"
    rounded = f"({floor} + ({rest} > 0.5 OR ({rest} = 0.5 AND {floor} % 2 = 1)))"
    return (
        f"CASE WHEN {column} >= 0 THEN"
        f" '\"' || strftime('%Y-%m-%dT%H:%M:%S', {whole} + ({rounded} = 1000000), 'unixepoch')"
        f" || CASE {rounded} % 1000000 WHEN 0 THEN '' ELSE"
        f" printf('.%06d', {rounded} % 1000000) END || 'Z\"' END"
    )


def _duration(start: str, end: str) -> str:
    """``(end - start) / 1e6`` as orjson writes it, for 0 and 10 ns up to 10^15 ns."""
    ns = f"({end} - {start})"
    return (
        f"CASE WHEN {ns} = 0 OR ({ns} >= 10 AND {ns} < 1000000000000000) THEN"
        f" ({ns} / 1000000) || '.' || CASE {ns} % 1000000 WHEN 0 THEN '0' ELSE"
        f" rtrim(printf('%06d', {ns} % 1000000), '0') END END"
    )


def _payload(column: str) -> str:
    """An input or output as ``trace_json._payload`` writes it, NULL where unsure."""
    containers = (
        f"(2 * length({column}) - length(replace({column}, '{{', ''))"
        f" - length(replace({column}, '[', '')))"
    )
    return (
        f"CASE WHEN {column} IS NULL THEN 'null'"
        f" WHEN typeof({column}) <> 'text' THEN NULL"  # packed: unpacked in Python
        f" WHEN {column} = '' THEN '\"\"'"
        f" WHEN instr({_sql_string(_MAY_START_JSON)}, substr({column}, 1, 1)) = 0"
        f" THEN json_quote({column})"
        f" WHEN {containers} <= {_SURELY_SHALLOW} AND json_valid({column})"
        f" AND instr({column}, '\\ud') = 0 AND instr({column}, '\\uD') = 0"
        f" AND {column} NOT GLOB '*[0-9][eE]*'"
        f" AND {column} NOT GLOB '*{_LONG_DIGITS}*'"
        f" THEN {column} END"
    )


def _stored_map(column: str) -> str:
    """Attributes or a resource passed through as stored (``trace_json._stored``)."""
    return (
        f"CASE WHEN instr({column}, 'NaN') = 0 AND instr({column}, 'Infinity') = 0"
        f" THEN {column} END"
    )


_BEFORE_COST = " || ".join(
    [
        "'{\"span_id\":'",
        _quoted("span_id"),
        "',\"parent_span_id\":'",
        _quoted("parent_span_id"),
        "',\"name\":'",
        _quoted("name"),
        "',\"span_type\":'",
        _quoted("span_type"),
        "',\"kind\":'",
        _quoted("kind"),
        "',\"start_time\":'",
        _time("start_ns"),
        "',\"end_time\":'",
        _time("end_ns"),
        "',\"duration_ms\":'",
        _duration("start_ns", "end_ns"),
        "',\"status\":'",
        _quoted("status"),
        "',\"status_message\":'",
        _quoted("status_message"),
        "',\"input\":'",
        _payload("input"),
        "',\"output\":'",
        _payload("output"),
        "',\"model\":'",
        _quoted("model"),
        "',\"input_tokens\":'",
        _quoted("input_tokens"),
        "',\"output_tokens\":'",
        _quoted("output_tokens"),
        "',\"total_tokens\":'",
        _quoted("total_tokens"),
        "',\"cost_usd\":'",
    ]
)
_AFTER_COST = " || ".join(
    [
        # An input or output taken from an attribute is put back into them in Python.
        "CASE WHEN coalesce(input_source, '') = '' AND coalesce(output_source, '') = ''"
        " THEN ',\"attributes\":' END",
        _stored_map("attributes"),
        "',\"events\":'",
        "CASE events WHEN '[]' THEN '[]' END",
        "',\"resource\":'",
        _stored_map("resource"),
        "'}'",
    ]
)

# A span's row for the export: its trace, its sort key (start, id), its rowid (to read
# the whole row when SQLite could not write it), the JSON before the cost, the cost,
# and the JSON after it. The two parts come as bytes (BLOB), ready to be joined.
ROW = Columns("trace_id", "start_ns", "span_id", "rowid", "before_cost", "cost_usd", "after_cost")
_PARTS = f"CAST({_BEFORE_COST} AS BLOB), cost_usd, CAST({_AFTER_COST} AS BLOB)"
# With ``{}`` left for ``select_in``'s list of ids (the JSON's own braces doubled).
SELECT = (
    "SELECT trace_id, start_ns, span_id, rowid, "
    + _PARTS.replace("{", "{{").replace("}", "}}")
    + " FROM spans WHERE project_id = ? AND trace_id IN ({})"
)
