"""Full-text search on a large store: query latency, and what the index costs at ingest
and on disk.

    python bench/search.py --spans 1000000 --ab-spans 100000 --pairs 3

1. Ingest with and without the index: two fresh stores written side by side, batch by
   batch (``--ab-batch`` spans, alternating which goes first), spans per second of the
   writer (``Store.write_spans`` given the batch prepared, as the server's writer
   thread is) and of the whole write path (preparation and transaction on one thread;
   HTTP, protobuf and normalising, which the index does not touch, are not counted, so
   the share is the index's share at its largest), and bytes on disk per span of each
   store; ``--pairs`` such runs.
2. A store of ``--spans`` spans with the index, then ``threadline serve`` on it, and over
   HTTP the p50 / p95 of: a rare word over all sessions (each request a different word,
   found in one session), a common word's first page (a word in nearly every span),
   the same on traces, a phrase, a prefix, relevance, a numeric filter, and search
   inside one session.

Sessions of 5 traces of 10 spans, as ``pages.py``: a root span with the user's message
and the reply, LLM calls whose input is the chat so far (history grows turn by turn) and
tool calls with JSON arguments and results. Words are drawn from a Zipf distribution
over a 5,000-word vocabulary; each session says one word of its own (the rare word).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fillers
from fillers import T0
from server import latencies, start_server

from threadline.server.model import SpanRecord
from threadline.server.store.sqlite import SQLiteStore
from threadline.server.store.sqlite import search as sqlite_search
from threadline.server.store.sqlite.driver import sqlite3

SYLLABLES = ["ka", "lo", "mi", "ren", "to", "sa", "vi", "del", "por", "na", "gu", "ish"]


def vocabulary(rng: random.Random, size: int = 5000) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 4))))
    ordered = sorted(words)
    rng.shuffle(ordered)
    return ordered


class Text:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.words = vocabulary(self.rng)
        self.weights = [1 / (rank + 1) for rank in range(len(self.words))]

    def sentence(self, n: int) -> str:
        return " ".join(self.rng.choices(self.words, self.weights, k=n))


def rare_word(session: int) -> str:
    return f"zq{session:07d}x"


def spans(total: int, seed: int = 5) -> Iterator[SpanRecord]:
    rng = random.Random(seed)
    text = Text(seed)
    for s in range(total // 50):
        history: list[dict[str, str]] = [{"role": "system", "content": "You help travellers."}]
        for turn in range(5):
            trace = fillers.trace_id(rng)
            start = T0 + s * 10**9 + turn * 60 * 10**9
            root = fillers.span_id(rng)
            said = text.sentence(15) + (f" {rare_word(s)}" if turn == 2 else "")
            replied = text.sentence(40)
            yield fillers.turn_root(
                trace,
                root,
                start,
                f"search-{s:07d}",
                f"user-{s % 997}",
                json.dumps({"message": said}),
                json.dumps({"reply": replied}),
            )
            history.append({"role": "user", "content": said})
            for i in range(9):
                if i % 2 == 0:
                    answer = replied if i == 8 else text.sentence(12)
                    payload_in = json.dumps(history)
                    payload_out = json.dumps([{"role": "assistant", "content": answer}])
                    history.append({"role": "assistant", "content": answer})
                else:
                    payload_in = json.dumps({"query": text.sentence(4)})
                    result = text.sentence(20)
                    payload_out = json.dumps({"results": [result]})
                    history.append({"role": "tool", "content": result})
                payloads = (payload_in, payload_out)
                yield fillers.turn_step(rng, trace, root, start, i, "search_places", payloads)


def fill(path: Path, total: int, batch: int = 5000, fts5: Sequence[str] = ()) -> float:
    """Write ``total`` spans; returns the seconds spent in ``write_spans``. ``fts5``:
    options of the search index set first, e.g. ``automerge=8``."""
    store = SQLiteStore(path)
    for option in fts5:
        name, value = option.split("=", 1)
        store._writer.execute(
            "INSERT INTO search_text (search_text, rank) VALUES (?, ?)", (name, int(value))
        )
    project = store.create_project("default").id
    pending: list[SpanRecord] = []
    writing = 0.0
    for span in spans(total):
        pending.append(span)
        if len(pending) >= batch:
            started = time.perf_counter()
            store.write_spans(project, pending)
            writing += time.perf_counter() - started
            pending = []
    if pending:
        started = time.perf_counter()
        store.write_spans(project, pending)
        writing += time.perf_counter() - started
    store.close()
    return writing


def store_bytes(path: Path) -> int:
    return sum(
        os.path.getsize(f"{path}{suffix}")
        for suffix in ("", "-wal")
        if os.path.exists(f"{path}{suffix}")
    )


def ingest_pairs(total: int, pairs: int, batch: int = 5000) -> None:
    """Two fresh stores written side by side, batch by batch, alternating which goes
    first: one with the index, one without (its preparation makes no documents, so its
    write transaction's index call gets none). Interleaving batches cancels the drift of
    a shared machine's load, which whole runs one after the other do not. ``pairs`` such
    runs.

    Each batch is prepared (``span_preparer``: rows, rollups, the index's documents)
    and then written, timed apart, as the server does it: there the preparation runs in
    worker processes and the writer thread, the server's bottleneck, only runs the
    transaction. Two shares are printed: the writer's (the transaction alone) and the
    whole write path's (preparation and transaction on one thread, the CPU the index
    adds). Times are the thread's CPU time (the write path is CPU-bound: WAL commits do
    not wait for the disk), which a shared machine's other jobs disturb far less than
    the wall clock: spans per CPU second of one core."""
    indexing = sqlite_search.documents

    def no_documents(traces: Iterable[Sequence[SpanRecord]]) -> sqlite_search.Documents:
        return sqlite_search.Documents()

    batches: list[list[SpanRecord]] = []
    pending: list[SpanRecord] = []
    for span in spans(total):
        pending.append(span)
        if len(pending) == batch:
            batches.append(pending)
            pending = []
    if pending:
        batches.append(pending)
    for pair in range(pairs):
        with tempfile.TemporaryDirectory(prefix="threadline-search-ab-") as tmp:
            stores = {
                variant: SQLiteStore(Path(tmp) / f"{variant}.db") for variant in ("with", "without")
            }
            projects = {v: store.create_project("default").id for v, store in stores.items()}
            preparing = {"with": 0.0, "without": 0.0}
            writing = {"with": 0.0, "without": 0.0}
            for i, records in enumerate(batches):
                order = ("with", "without") if (i + pair) % 2 == 0 else ("without", "with")
                for variant in order:
                    sqlite_search.documents = indexing if variant == "with" else no_documents
                    store, project = stores[variant], projects[variant]
                    started = time.thread_time()
                    prepared = store.span_preparer()(project, records)
                    prepared_at = time.thread_time()
                    store.write_spans(project, records, prepared)
                    preparing[variant] += prepared_at - started
                    writing[variant] += time.thread_time() - prepared_at
            sqlite_search.documents = indexing
            for store in stores.values():
                store.close()
            size = {v: store_bytes(Path(tmp) / f"{v}.db") for v in stores}
        writer = {v: total / writing[v] for v in writing}
        whole = {v: total / (writing[v] + preparing[v]) for v in writing}
        print(
            f"  pair {pair + 1}: writer {writer['with']:7.0f} spans/s with the index, "
            f"{writer['without']:7.0f} without: {writer['with'] / writer['without']:6.1%}; "
            f"whole write path {whole['with']:7.0f} vs {whole['without']:7.0f}: "
            f"{whole['with'] / whole['without']:6.1%}; "
            f"bytes/span {size['with'] / total:6.0f} vs {size['without'] / total:6.0f} "
            f"({size['with'] / size['without'] - 1:+.1%})",
            flush=True,
        )


def query_latencies(total: int, queries: int, batch: int, fts5: Sequence[str]) -> None:
    text = Text(5)
    sessions = total // 50
    common = text.words[0]
    second = text.words[1]
    with tempfile.TemporaryDirectory(prefix="threadline-search-") as tmp:
        data_dir = Path(tmp)
        started = time.perf_counter()
        fill(data_dir / "threadline.db", total, batch, fts5)
        print(f"filled {total:,} spans with the index in {time.perf_counter() - started:.0f} s")
        with closing(sqlite3.connect(data_dir / "threadline.db")) as conn:
            (segments,) = conn.execute(
                "SELECT count(DISTINCT segid) FROM search_text_idx"
            ).fetchone()
        print(f"search index: {segments} segments (FTS5 options: {', '.join(fts5) or 'none'})")
        process, base_url, key = start_server(data_dir, workers=1)
        try:
            api = httpx.Client(
                base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=120
            )
            rng = random.Random(9)
            rare = [rare_word(rng.randrange(sessions)) for _ in range(queries)]
            one = f"search-{sessions // 2:07d}"
            checks = {
                "sessions, rare word": [f"/api/v1/sessions?window=all&q={w}" for w in rare],
                "sessions, common word, first page": [f"/api/v1/sessions?window=all&q={common}"]
                * queries,
                "traces, rare word": [f"/api/v1/traces?window=all&q={w}" for w in rare],
                "traces, common word, first page": [f"/api/v1/traces?window=all&q={common}"]
                * queries,
                "sessions, phrase of two common words": [
                    f'/api/v1/sessions?window=all&q="{common} {second}"'
                ]
                * queries,
                "sessions, prefix of a rare word": [
                    f"/api/v1/sessions?window=all&q={w[:-2]}*" for w in rare
                ],
                "sessions, rare word, relevance": [
                    f"/api/v1/sessions?window=all&q={w}&sort=relevance" for w in rare
                ],
                "sessions, filter=turns>=5&filter=cost>0.004": [
                    "/api/v1/sessions?window=all&filter=turns>=5&filter=cost>0.004"
                ]
                * queries,
                "session-search, common word": [
                    f"/api/v1/session-search?session_id={one}&q={common}"
                ]
                * queries,
            }
            found = api.get(f"/api/v1/sessions?window=all&q={rare[0]}").json()["items"]
            assert len(found) == 1 and found[0]["snippet"], found
            figures = {name: latencies(api, paths) for name, paths in checks.items()}
        finally:
            process.terminate()
            process.wait()
    print(f"{total:,} spans, {sessions:,} sessions; p50 / p95 over {queries} requests:")
    for name, (p50, p95) in figures.items():
        print(f"  {name:44s} {p50:7.1f} / {p95:7.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--ab-spans", type=int, default=100_000)
    parser.add_argument("--ab-batch", type=int, default=5000)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--skip-ab", action="store_true")
    parser.add_argument("--skip-queries", action="store_true")
    parser.add_argument("--fill-batch", type=int, default=5000, help="spans a transaction")
    parser.add_argument(
        "--fts5",
        action="append",
        default=[],
        metavar="OPTION=VALUE",
        help="an FTS5 option of the search index for the query store, e.g. automerge=8",
    )
    args = parser.parse_args()
    if not args.skip_ab:
        print(f"ingest A/B, {args.ab_spans:,} spans a store, {args.pairs} pairs:")
        ingest_pairs(args.ab_spans, args.pairs, args.ab_batch)
    if not args.skip_queries:
        query_latencies(args.spans, args.queries, args.fill_batch, args.fts5)


if __name__ == "__main__":
    main()
