"""Where the search index's time goes in the writer's transaction, step by step.

    python bench/search_writer.py --spans 100000 --corpus real --setup "" --setup automerge=8

The documents ingest makes (``search.documents`` of each export, as the workers make
them) of ``--corpus`` (``real``: ``corpus_otlp.py``'s chats; ``workload``: ``workload.py``)
are written into fresh databases holding only the index's tables (migrations 0009 and
0016), one transaction per ``--group`` exports, as ``search.index`` writes them, with the
thread's CPU time of each step measured apart: the key of each trace (``search_traces``:
its lookup, and the insert of a new one, as the store did before migration 0018 moved
the keys to ``trace_keys``, minted for the whole write), the ``search_docs`` rows, the FTS5 inserts
(FTS5 adds each word to its in-memory term table) and the commit (FTS5 writes the
transaction's terms out as a new segment, and merges segments, ``automerge``).

Each ``--setup`` is a set of FTS5 settings made before the first transaction (e.g.
``automerge=8,crisismerge=32``, or ``""`` for the table as the migrations leave it);
``quoted=0`` gives the documents as made before a text another span of its trace
quotes whole was left out of them; ``idle=N`` runs FTS5's ``merge`` command with ``N``
pages after each transaction, timed apart (the work a writer could do in its idle turns).
The setups run in turns (A B B A A B ... for ``--rounds``), all on the same documents.
Printed for each: µs of CPU a span by step, the segments left, the bytes of
``search_text_data``, and the p50 of a rare and a common word's newest 50 rowids (what
the lists' two plans read).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import pickle
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import corpus_otlp  # noqa: E402
import workload  # noqa: E402

from threadline.server.ingest.decode import PROTOBUF, decode_request  # noqa: E402
from threadline.server.ingest.normalize import normalize_request  # noqa: E402
from threadline.server.model import SpanRecord  # noqa: E402
from threadline.server.search import text  # noqa: E402
from threadline.server.store.sqlite import search  # noqa: E402
from threadline.server.store.sqlite.driver import sqlite3  # noqa: E402

MIGRATIONS = BENCH.parent / "src/threadline/server/store/sqlite/migrations"
TABLES = ("0009_search.sql", "0016_search_contentless_delete.sql")
CORPORA = {"real": corpus_otlp.batches, "workload": workload.batches}
STEPS = ("keys", "docs", "fts insert", "commit", "idle merge")


class Document(NamedTuple):
    trace_id: str
    span_ids: str
    text: str


class Export(NamedTuple):
    spans: int
    documents: list[Document]


def _documents(records: Sequence[SpanRecord]) -> list[Document]:
    made = search.documents(search.by_trace(records))
    return [Document(*d) for d in zip(made.trace_ids, made.span_ids, made.texts, strict=True)]


class Result(NamedTuple):
    us: dict[str, float]  # CPU µs a span, by step
    segments: int
    data_bytes: int
    rare_ms: float
    common_ms: float


def exports(corpus: str, spans: int, quoted: bool = True) -> list[Export]:
    """The corpus's exports as the workers hand them to the writer (kept in the temporary
    directory between runs: making the real corpus takes minutes; named by a digest of the
    code that makes them, so that two checkouts compared never read each other's); with
    ``quoted`` false, the documents as made before a text quoted whole by another span of
    its trace was left out (``text.QUOTED_MIN_CHARS`` past any text's length)."""
    made_by = _code_digest()
    cache = (
        Path(tempfile.gettempdir()) / f"threadline-search-writer-{corpus}-{spans}-{made_by}.pickle"
    )
    if not cache.exists():
        made: dict[bool, list[Export]] = {True: [], False: []}
        shortest = text.QUOTED_MIN_CHARS
        for batch in CORPORA[corpus](spans, 512):
            records = normalize_request(decode_request(batch.body, PROTOBUF)).spans
            made[True].append(Export(len(records), _documents(records)))
            text.QUOTED_MIN_CHARS = 1 << 62
            made[False].append(Export(len(records), _documents(records)))
            text.QUOTED_MIN_CHARS = shortest
        cache.write_bytes(pickle.dumps(made))
    return pickle.loads(cache.read_bytes())[quoted]


def _code_digest() -> str:
    """A digest of the code the documents come from: the corpus, ingest's normalisation
    and the search text (a change to any of them makes other documents)."""
    server = Path(text.__file__).resolve().parent.parent
    sources = [
        *sorted((server / "search").glob("*.py")),
        *sorted((server / "ingest").glob("*.py")),
        server / "chat_messages.py",
        server / "store/sqlite/search.py",
        *(BENCH / name for name in ("corpus_otlp.py", "payload_corpus.py", "workload.py")),
    ]
    digest = hashlib.sha256()
    for source in sources:
        digest.update(source.read_bytes())
    return digest.hexdigest()[:12]


def parse_setup(text: str) -> dict[str, int]:
    return {k: int(v) for k, v in (item.split("=") for item in text.split(",") if item)}


def index_database(path: str | Path, settings: dict[str, int]) -> sqlite3.Connection:
    """A new database at ``path`` holding the search index alone, opened as the store's
    writer opens its own (store/sqlite/database.py: its commits do not checkpoint the
    WAL, a background thread does), with FTS5's ``settings`` (e.g. automerge)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA cache_size=-16384")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("CREATE TABLE spans (span_id TEXT)")  # the migrations' backfill reads it
    for name in TABLES:
        conn.executescript((MIGRATIONS / name).read_text())
    for name, value in settings.items():
        conn.execute("INSERT INTO search_text (search_text, rank) VALUES (?, ?)", (name, value))
    return conn


def run(
    batches: Sequence[Sequence[Export]], setup: dict[str, int], probes: Sequence[str]
) -> Result:
    spent = dict.fromkeys(STEPS, 0.0)
    spans = 0
    idle = setup.pop("idle", 0)
    with tempfile.TemporaryDirectory(prefix="threadline-search-writer-") as tmp:
        # Checkpoints here: between transactions, not timed.
        conn = index_database(os.path.join(tmp, "index.db"), setup)
        for number, group in enumerate(batches):
            if number % 10 == 9:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            clock = time.thread_time()
            conn.execute("BEGIN")
            docs, texts = [], []
            for export in group:
                spans += export.spans
                for document in export.documents:
                    row = conn.execute(
                        "SELECT key, numbered FROM search_traces"
                        " WHERE project_id = ? AND trace_id = ?",
                        (1, document.trace_id),
                    ).fetchone()
                    if row is None:
                        key = conn.execute(
                            "INSERT INTO search_traces (project_id, trace_id, numbered)"
                            " VALUES (?, ?, 1)",
                            (1, document.trace_id),
                        ).lastrowid
                        assert key is not None  # an INSERT's row
                        doc = key << search.DOC_BITS
                    else:
                        key, count = row
                        doc = (key << search.DOC_BITS) + count
                        conn.execute(
                            "UPDATE search_traces SET numbered = ? WHERE key = ?", (count + 1, key)
                        )
                    docs.append((doc, document.span_ids))
                    texts.append((doc, document.text))
            now = time.thread_time()
            spent["keys"] += now - clock
            clock = now
            conn.executemany("INSERT INTO search_docs (doc, span_ids) VALUES (?, ?)", docs)
            now = time.thread_time()
            spent["docs"] += now - clock
            clock = now
            conn.executemany("INSERT INTO search_text (rowid, body) VALUES (?, ?)", texts)
            now = time.thread_time()
            spent["fts insert"] += now - clock
            clock = now
            conn.execute("COMMIT")
            now = time.thread_time()
            spent["commit"] += now - clock
            if idle:
                clock = now
                conn.execute(
                    "INSERT INTO search_text (search_text, rank) VALUES ('merge', ?)", (idle,)
                )
                spent["idle merge"] += time.thread_time() - clock
        segments = conn.execute("SELECT count(DISTINCT segid) FROM search_text_idx").fetchone()[0]
        data_bytes = conn.execute("SELECT sum(length(block)) FROM search_text_data").fetchone()[0]
        times = []
        for probe in probes:
            runs = []
            for _ in range(15):
                clock = time.perf_counter()
                conn.execute(
                    "SELECT rowid FROM search_text WHERE search_text MATCH ?"
                    " ORDER BY rowid DESC LIMIT 50",
                    (probe,),
                ).fetchall()
                runs.append(time.perf_counter() - clock)
            times.append(statistics.median(runs) * 1e3)
        conn.close()
    return Result(
        {step: seconds / spans * 1e6 for step, seconds in spent.items()},
        segments,
        data_bytes,
        *times,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=50_000)
    parser.add_argument("--corpus", choices=sorted(CORPORA), default="real")
    parser.add_argument("--group", type=int, default=1, help="exports a transaction")
    parser.add_argument("--setup", action="append", default=None)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--repeat", type=int, default=1, help="send the corpus this many times (new trace ids)"
    )
    parser.add_argument("--probes", default="unpickling,the", help="a rare word, a common one")
    args = parser.parse_args()
    setups = args.setup or [""]
    batches = {}
    for quoted in (True, False):
        made = exports(args.corpus, args.spans, quoted)
        made = [
            Export(e.spans, [d._replace(trace_id=f"{d.trace_id}{n}") for d in e.documents])
            for n in range(args.repeat)
            for e in made
        ]
        batches[quoted] = [made[i : i + args.group] for i in range(0, len(made), args.group)]
        words = sum(len(d.text.split()) for e in made for d in e.documents)
        spans = sum(e.spans for e in made)
        print(
            f"{args.corpus}{'' if quoted else ' (quoted=0)'}: {spans:,} spans,"
            f" {len(batches[quoted])} transactions,"
            f" {words / spans:.0f} words a span given to the index",
            flush=True,
        )
    print(
        f"{'setup':28s} "
        + " ".join(f"{s:>10s}" for s in STEPS)
        + "      total  segments  data MB  rare ms  common ms"
    )
    for round_ in range(args.rounds):
        order = setups if round_ % 2 == 0 else setups[::-1]
        for setup in order:
            settings = parse_setup(setup)
            quoted = bool(settings.pop("quoted", 1))
            r = run(batches[quoted], settings, args.probes.split(","))
            print(
                f"{setup or '(as migrated)':28s} "
                + " ".join(f"{r.us[s]:10.1f}" for s in STEPS)
                + f" {sum(r.us.values()):10.1f} {r.segments:9d} {r.data_bytes / 1e6:8.1f}"
                f" {r.rare_ms:8.2f} {r.common_ms:10.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
