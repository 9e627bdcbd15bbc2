"""What of an export's records travels back from a worker to the writer, once the
store has made its rows there.

A store that prepares its rows in the worker (``Store.span_preparer``: both stores)
has encoded each record's attributes into its row by then; the write
transaction reads the records only for what the rows do not carry in a usable form
(the rollups' facts, the texts of the search documents, the session signals), never
their attributes. The attributes are most of a record's objects (a key and a value
each, ~8 a span in the benchmark's workload): sent whole, the server process loads
each of them again only to drop it. So they are left out of the answer
(docs/benchmarks.md, "Round 7: CPU a span in the answer"). A batch whose rows the
preparer left to the writer (ClickHouse, when the writer may infer its sessions) is
made in the writer from its records, which come whole.
"""

from __future__ import annotations

from collections.abc import Sequence

from threadline.server.model import SpanRecord


def drop_encoded_attributes(spans: Sequence[SpanRecord]) -> None:
    """Empty the attributes of ``spans``, records of the worker's own whose rows hold
    them already (a fresh dict each: nothing is shared that a reader might change)."""
    for span in spans:
        span.attributes = {}
