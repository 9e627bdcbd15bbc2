"""The raw SQLite ceiling of a workload: how fast SQLite itself takes its span rows.

``server.py --ceiling`` and ``compare.py`` print it beside the server's durable ingest,
measured in the same run, so that the server's share of it is a printed figure.

**The definition.** The exports are first made ready exactly as the server's ingest
workers make them, untimed: inflated, decoded, normalised, and turned into the SQLite
store's span rows by the store's own preparer (``prepare_export`` with
``Store.span_preparer``: attributes as JSON, inputs and outputs packed with zstd and the
store's payload dictionary, trained on the first export as a server trains it). Then one
thread, timed, writes those rows into a store opened by ``SQLiteStore`` (so the
``spans`` table with its columns and its unique index ``(trace_key, span_id)``, the
store's pragmas: WAL, ``synchronous=NORMAL``, a 16 MiB cache; and its WAL checkpointer
thread beside it), the way the write transaction does: for each transaction,
``BEGIN IMMEDIATE``, each trace's key minted (``trace_keys.mint``: a look-up, and one
insert for a trace new to the store; the spans cannot be stored without it), the rows
inserted with the store's ``INSERT OR IGNORE`` (one ``executemany`` a trace), ``COMMIT``;
``group`` exports a transaction (``server.py`` gives the mean of the server's own
transactions in the same run, ``/healthz``'s ``exports_written / write_transactions``).

So the ceiling is what SQLite can take of this data with the work that must precede it
for every span (the CPU of decoding, normalising, encoding and packing) already done.
Left out, and charged to the server: that CPU itself, HTTP, the workers' transfer, and
what the server keeps besides the span rows on each write (the search index, the trace
and session rollups, the metric aggregates, inferred sessions). Those are features the
server must pay for within its share.

``writer_rate`` is a second, higher-level figure for the same prepared exports: the
store's whole write transaction (``SQLiteStore.write_span_batches``: the spans, the
search index, every rollup) run by one thread with nothing else to do. It bounds what the
one-writer design can reach on this machine, whatever the workers do; between it and the
raw ceiling is what the server's features cost its writer.

Both start from a copy of a store holding the first export (which trained the payload
dictionary the rows were packed with, so the writer can read back any payload it
needs); the rate counts the exports after it.
"""

from __future__ import annotations

import pickle
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent))
import workload

from threadline.server.ingest.decode import PROTOBUF
from threadline.server.ingest.prepare import Job, Prepared, prepare_export
from threadline.server.redaction.rules import RedactionRules
from threadline.server.settings import Settings
from threadline.server.store.base import SpanBatch
from threadline.server.store.sqlite import SQLiteStore, trace_keys
from threadline.server.store.sqlite import rows as schema
from threadline.server.store.sqlite.span_batch import PreparedSpans

DB = "threadline.db"


class Rate(NamedTuple):
    """Spans a second (wall), and CPU µs a span of this process (the timed thread and the
    store's checkpointer beside it: a loaded machine disturbs it less)."""

    spans_per_s: float
    cpu_us: float


@dataclass
class Ready:
    """A workload's exports made ready as the workers make them: a store holding the
    first one (``base``, whose dictionary packed the rest), and the rest pickled as a
    worker's answers travel (each run loads its own copy: a write may change them)."""

    base: Path
    project_id: int
    answers: bytes
    spans: int


def make_ready(bodies: Sequence[workload.Batch], directory: Path) -> Ready:
    """Prepare ``bodies`` (untimed) into ``directory``, as described in the module's
    docstring."""
    settings = Settings()
    store = SQLiteStore(directory / DB)
    try:
        project_id = store.create_project("ceiling").id
        first = _prepare(Job(settings, project_id, RedactionRules(), None), bodies[0].body)
        store.write_span_batches([SpanBatch(project_id, first.normalized.spans, None)])
        job = Job(settings, project_id, RedactionRules(), store.span_preparer())
    finally:
        store.close()
    batches = []
    for batch in bodies[1:]:
        prepared = _prepare(job, batch.body)
        batches.append(SpanBatch(project_id, prepared.normalized.spans, prepared.for_store))
    return Ready(
        directory / DB,
        project_id,
        pickle.dumps(batches, protocol=pickle.HIGHEST_PROTOCOL),
        sum(len(b.spans) for b in batches),
    )


def span_rows(ready: Ready) -> list[list[object]]:
    """The prepared exports' span rows, in order, without their trace keys (the columns of
    ``store.columns.SPANS``)."""
    batches: list[SpanBatch] = pickle.loads(ready.answers)
    found: list[list[object]] = []
    for batch in batches:
        assert isinstance(batch.prepared, PreparedSpans)
        for trace_rows in batch.prepared.rows.values():
            found += trace_rows
    return found


def raw_rate(ready: Ready, group: int) -> Rate:
    """Spans/s of the raw ceiling: the prepared rows alone into the store's ``spans``,
    ``group`` exports a transaction."""
    batches: list[SpanBatch] = pickle.loads(ready.answers)
    with _store_copy(ready) as store:
        conn = store._writer  # the store's own writer connection, with its pragmas
        started, cpu = time.perf_counter(), time.process_time()
        for i in range(0, len(batches), group):
            conn.execute("BEGIN IMMEDIATE")
            for batch in batches[i : i + group]:
                assert isinstance(batch.prepared, PreparedSpans)
                rows = batch.prepared.rows
                keys = trace_keys.mint(conn, batch.project_id, list(rows)).keys
                for trace_id, trace_rows in rows.items():
                    key = keys[trace_id]
                    conn.executemany(schema.INSERT_SPAN, [[*row, key] for row in trace_rows])
            conn.execute("COMMIT")
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    return Rate(ready.spans / elapsed, cpu / ready.spans * 1e6)


def writer_rate(ready: Ready, group: int) -> Rate:
    """Spans/s of the store's whole write transaction on the prepared exports, ``group``
    a transaction, from one thread."""
    batches: list[SpanBatch] = pickle.loads(ready.answers)
    with _store_copy(ready) as store:
        started, cpu = time.perf_counter(), time.process_time()
        for i in range(0, len(batches), group):
            store.write_span_batches(batches[i : i + group])
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    return Rate(ready.spans / elapsed, cpu / ready.spans * 1e6)


def _prepare(job: Job, body: bytes) -> Prepared:
    prepared = prepare_export(job, body, PROTOBUF, None)
    assert isinstance(prepared, Prepared), "an export of more spans than a piece"
    return prepared


@contextmanager
def _store_copy(ready: Ready) -> Iterator[SQLiteStore]:
    """A store opened on a fresh copy of ``ready.base``, closed and removed after."""
    with tempfile.TemporaryDirectory(prefix="threadline-ceiling-", dir=ready.base.parent) as tmp:
        copy = Path(tmp) / DB
        shutil.copyfile(ready.base, copy)
        store = SQLiteStore(copy)
        try:
            yield store
        finally:
            store.close()
