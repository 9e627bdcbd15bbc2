"""The search index's whole CPU a span, part by part, on one thread and without HTTP.

    python bench/search_accounting.py --spans 20480 --group 2 --rounds 3 --corpus real

Takes each export of ``--corpus`` the way a server does, twice: into a store with the
index and into one without (whose preparation makes no documents, as the
``without_search_index`` hook of ``bench/hooks`` makes a server's), the two arms
alternating export by export and transaction by transaction, so that the machine's drift
favours neither:

- **worker**: the job (``prepare_export``: decode, normalise, the store's rows, rollups
  and, with the index, ``search.documents``), the store's preparer trained on a first
  export as in a server;
- **transfer**: the answer pickled (in the worker) and loaded (in the server process's
  slot thread), with its bytes;
- **writer**: ``write_span_batches`` of ``--group`` exports a transaction (what the
  writer's group commit joins), with the statements of ``search.index`` timed one by one
  (the lookup of a trace stored before, the ``search_docs`` rows, FTS5's insert,
  ``trace_keys.numbered``) and the documents the writer makes again for a trace split
  between two exports of a group; the commit timed apart.

Printed: the thread's CPU µs a span of each part in each arm, and the difference, which
is the index's cost, by part. ``--fts5 automerge=N`` sets an option of the index.
A benchmark, not a test: it prints numbers.
"""

from __future__ import annotations

import argparse
import itertools
import pickle
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parent))
import corpus_otlp
import workload
from server import cpu_seconds

from threadline.server.ingest.decode import PROTOBUF
from threadline.server.ingest.prepare import Job, Prepared, prepare_export
from threadline.server.ingest.tuning import tune_garbage_collector
from threadline.server.model import SpanRecord
from threadline.server.redaction.rules import RedactionRules
from threadline.server.settings import Settings
from threadline.server.store.base import SpanBatch
from threadline.server.store.sqlite import SQLiteStore, search, trace_keys

ARMS = ("with", "without")
_making = search.documents


class Clock:
    """Thread CPU seconds by part, for the arm being run."""

    def __init__(self) -> None:
        self.spent: dict[str, dict[str, float]] = {arm: defaultdict(float) for arm in ARMS}
        self.arm = "with"
        self.where = "worker"

    @contextmanager
    def part(self, name: str) -> Iterator[None]:
        started = time.thread_time()
        try:
            yield
        finally:
            self.spent[self.arm][name] += time.thread_time() - started


CLOCK = Clock()
FTS5: list[tuple[int, int]] = []  # each transaction's documents, and rowids not rising
FTS5_BYTES: list[int] = []  # each transaction's text given to FTS5


def documents(traces: Iterable[Sequence[SpanRecord]]) -> search.Documents:
    """``search.documents`` timed where it is called (a worker's job, or the writer's
    for a trace split between two exports of a group); none in the arm without."""
    if CLOCK.arm == "without":
        return search.Documents()
    with CLOCK.part(f"{CLOCK.where}: documents"):
        return _making(traces)


class TimedConnection:
    """The writer's connection as ``search.index`` sees it: each statement timed."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def _name(self, sql: str) -> str:
        return f"search.index: {_statement(sql)}"

    def execute(self, sql: str, *args: Any) -> Any:
        with CLOCK.part(self._name(sql)):
            return self._conn.execute(sql, *args)

    def executemany(self, sql: str, rows: Any) -> Any:
        rows = list(rows)
        if not rows:
            return None
        if sql.startswith("INSERT INTO search_text "):
            # FTS5 writes its pending words out as a segment whenever a rowid is not
            # above the last one (and past ``hashsize`` bytes): each step back is one.
            FTS5.append((len(rows), sum(b <= a for (a, _), (b, _) in itertools.pairwise(rows))))
            FTS5_BYTES.append(sum(len(text) for _, text in rows))
        with CLOCK.part(self._name(sql)):
            return self._conn.executemany(sql, rows)


_index = search.index


def index(
    conn: sqlite3.Connection,
    project_id: int,
    batch: search.Documents,
    spans: Sequence[SpanRecord],
    minted: trace_keys.Minted,
) -> None:
    with CLOCK.part("search.index: all"):
        # TimedConnection has the methods search.index calls on a connection.
        timed = cast(sqlite3.Connection, TimedConnection(conn))
        _index(timed, project_id, batch, spans, minted)


class TimedWriter:
    """The writer's connection as the transaction sees it: each statement timed (a
    SELECT's rows are mostly read after it returns: those are not), the COMMIT too."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def execute(self, sql: str, *args: Any) -> Any:
        with CLOCK.part(f"transaction: {_statement(sql)}"):
            return self._conn.execute(sql, *args)

    def executemany(self, sql: str, rows: Any) -> Any:
        with CLOCK.part(f"transaction: {_statement(sql)}"):
            return self._conn.executemany(sql, rows)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def _statement(sql: str) -> str:
    """A statement's verb and table, e.g. ``insert spans``."""
    words = sql.split()
    after = {"INSERT": "INTO", "SELECT": "FROM", "UPDATE": "UPDATE", "DELETE": "FROM"}
    if words[0] not in after or after[words[0]] not in words:
        return words[0].lower()
    return f"{words[0].lower()} {words[words.index(after[words[0]]) + 1]}"


def open_store(
    path: Path, fts5: dict[str, int], first: bytes, cache_mib: int
) -> tuple[SQLiteStore, Job]:
    """A store whose payload dictionary ``first`` trained, as in a server, and the
    worker's job for its project (``cache_mib``: the writer's page cache, if not 0)."""
    store = SQLiteStore(path)
    if cache_mib:
        store._writer.execute(f"PRAGMA cache_size=-{cache_mib * 1024}")
    with store._transaction() as conn:
        for name, value in fts5.items():
            conn.execute("INSERT INTO search_text (search_text, rank) VALUES (?, ?)", (name, value))
    store._writer = TimedWriter(store._writer)  # type: ignore[assignment]
    project = store.create_project("bench").id
    job = Job(Settings(), project, RedactionRules(), store.span_preparer())
    trained = prepare_export(job, first, PROTOBUF, None)
    assert isinstance(trained, Prepared)
    store.write_span_batches([SpanBatch(project, trained.normalized.spans, trained.for_store)])
    return store, Job(Settings(), project, RedactionRules(), store.span_preparer())


def _rchar() -> int:
    """Bytes this process has read from files (SQLite's page cache misses among them)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    return 0


def run(
    bodies: list[bytes], group: int, fts5: dict[str, int], cache_mib: int
) -> dict[str, dict[str, float]]:
    """One pass of both arms over ``bodies`` (the first trains the dictionaries): CPU µs
    a span by part, by arm."""
    first, *rest = bodies
    spent_before = {arm: dict(CLOCK.spent[arm]) for arm in ARMS}
    spans = 0
    answer_bytes = dict.fromkeys(ARMS, 0)
    checkpoints = dict.fromkeys(ARMS, 0.0)
    with tempfile.TemporaryDirectory(prefix="threadline-search-accounting-") as tmp:
        stores: dict[str, tuple[SQLiteStore, Job]] = {}
        CLOCK.where = "worker"
        for arm in ARMS:
            CLOCK.arm = arm
            stores[arm] = open_store(Path(tmp) / f"{arm}.db", fts5, first, cache_mib)
        for start in range(0, len(rest), group):
            arms = ARMS if (start // group) % 2 == 0 else ARMS[::-1]
            for arm in arms:
                CLOCK.arm = arm
                store, job = stores[arm]
                batches = []
                for body in rest[start : start + group]:
                    CLOCK.where = "worker"
                    with CLOCK.part("worker: the job"):
                        answer = prepare_export(job, body, PROTOBUF, None)
                    with CLOCK.part("transfer: pickle"):
                        data = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
                    answer_bytes[arm] += len(data)
                    with CLOCK.part("transfer: load"):
                        answer = pickle.loads(data)
                    assert isinstance(answer, Prepared)
                    batches.append(
                        SpanBatch(job.project_id, answer.normalized.spans, answer.for_store)
                    )
                    if arm == "with":
                        spans += len(answer.normalized.spans)
                CLOCK.where = "writer"
                read = _rchar()
                with CLOCK.part("writer: write_span_batches"):
                    store.write_span_batches(batches)
                CLOCK.spent[arm]["writer: bytes read"] += (_rchar() - read) / 1e6
        for arm, (store, _) in stores.items():
            # The WAL's checkpoints run on a thread of their own.
            thread = store._checkpointer._thread.native_id
            checkpoints[arm] = cpu_seconds(Path(f"/proc/self/task/{thread}/stat"))
            store.close()
    per_span = {
        arm: {
            part: (seconds - spent_before[arm].get(part, 0.0)) / spans * 1e6
            for part, seconds in CLOCK.spent[arm].items()
        }
        for arm in ARMS
    }
    for arm in ARMS:
        per_span[arm]["transfer: bytes"] = answer_bytes[arm] / spans
        per_span[arm]["checkpoints (their thread)"] = checkpoints[arm] / spans * 1e6
    return per_span


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=20_480, help="a multiple of 512")
    parser.add_argument("--group", type=int, default=1, help="exports a transaction")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--corpus", choices=("workload", "real"), default="real")
    parser.add_argument(
        "--fts5", action="append", default=[], help="an FTS5 option, e.g. automerge=8"
    )
    parser.add_argument("--cache-mib", type=int, default=0, help="the writer's page cache")
    args = parser.parse_args()
    fts5 = {k: int(v) for k, v in (item.split("=") for item in args.fts5)}
    make: Callable[[int, int], Any] = (
        corpus_otlp.batches if args.corpus == "real" else workload.batches
    )
    # Kept between runs: making the real corpus takes minutes.
    cache = Path(tempfile.gettempdir()) / f"threadline-search-accounting-{args.corpus}-{args.spans}"
    if not cache.exists():
        cache.write_bytes(pickle.dumps([b.body for b in make(args.spans + 512, 512)]))
    bodies = pickle.loads(cache.read_bytes())
    tune_garbage_collector()  # as a worker and the server do
    search.documents = documents
    search.index = index
    rounds = [run(bodies, args.group, fts5, args.cache_mib) for _ in range(args.rounds)]
    print(
        f"FTS5 inserts a transaction: {statistics.mean(d for d, _ in FTS5):.0f} documents,"
        f" {statistics.mean(FTS5_BYTES) / 1e3:.0f} kB of text,"
        f" {statistics.mean(s for _, s in FTS5):.2f} rowids not rising"
    )
    parts = sorted({part for r in rounds for arm in ARMS for part in r[arm]})
    print(
        f"{args.corpus}: {args.spans:,} spans, {args.group} exports a transaction,"
        f" {args.rounds} rounds; CPU µs a span, median of the rounds (each round's)"
    )
    print(f"{'part':32s} {'with':>8s} {'without':>8s} {'index':>8s}   rounds' differences")
    for part in parts:
        with_ = [r["with"].get(part, 0.0) for r in rounds]
        without = [r["without"].get(part, 0.0) for r in rounds]
        differences = [a - b for a, b in zip(with_, without, strict=True)]
        print(
            f"{part:32s} {statistics.median(with_):8.2f} {statistics.median(without):8.2f}"
            f" {statistics.median(differences):8.2f}   "
            + " ".join(f"{d:6.2f}" for d in differences)
        )


if __name__ == "__main__":
    main()
