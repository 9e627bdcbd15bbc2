"""What of an export's records travels back from a worker to the writer, once the
store has made its rows there.

A store that prepares its rows in the worker (``Store.span_preparer``: both stores)
has encoded each record's attributes into its row by then, and its input and output
too. The write transaction reads the records only for what the rows do not carry in a
usable form (the rollups' facts, the session signals), never their attributes, and
their inputs and outputs only for the few traces whose rollup or search document the
SQLite store makes again (a trace with spans stored before, one split between two
exports of a group, a large trace's tally): it takes those from the rows
(``store/sqlite/span_batch.restore_payloads``); ClickHouse's writer inserts the rows it
is given. Attributes are most of a record's objects and the input and output most of
its bytes (~3.6 of ~8.2 KB a span of the benchmark's workload): sent whole, the server
process loads them again only to drop them. So they are left out of the answer
(docs/benchmarks.md, "Round 7: CPU a span in the answer" and "Round 9"). A batch whose
rows the preparer left to the writer (ClickHouse, when only the writer can name its
inferred sessions) is made in the writer from its records, which come whole.
"""

from __future__ import annotations

from collections.abc import Sequence

from threadline.server.model import SpanRecord


def drop_what_rows_hold(spans: Sequence[SpanRecord]) -> None:
    """Empty the attributes, input and output (and their parsed messages) of ``spans``,
    records of the worker's own whose rows hold them already (a fresh dict each: nothing
    is shared that a reader might change)."""
    for span in spans:
        span.attributes = {}
        span.input = span.output = None
        span.input_messages = span.output_messages = None
