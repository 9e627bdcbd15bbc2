"""What an FTS5 insert costs inside a transaction and at its commit, by vocabulary size.

    python bench/fts5_transactions.py

The search index (``store/sqlite/search.py``) is an FTS5 table written in every write
transaction. FTS5 gathers a transaction's words in memory and writes them out as a new
segment at the commit, then merges segments (``automerge``). This writes transactions of
50 documents of 400 words each, drawn uniformly from vocabularies of 10 to 20,000 words,
into a contentless table made as migration 0009 makes ``search_text``, and prints the
thread's CPU time per transaction spent in the inserts and in the commit, with FTS5's
default ``automerge`` (4) and with merging off (0).
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time

from threadline.server.store.sqlite.driver import sqlite3


def run(
    vocabulary: int, automerge: int, transactions: int, made: str
) -> tuple[float, float, int, float]:
    """CPU seconds per transaction (inserts, commit); then the segments left and the
    CPU seconds of a one-word query's first 50 rowids, newest first."""
    rng = random.Random(1)
    words = [f"w{i}x" for i in range(vocabulary)]
    with tempfile.TemporaryDirectory(prefix="threadline-fts5-") as tmp:
        conn = sqlite3.connect(os.path.join(tmp, "fts.db"), isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA cache_size=-16384")
        conn.execute(
            f"CREATE VIRTUAL TABLE t USING fts5(body, content = '',{made}"
            " tokenize = 'unicode61 remove_diacritics 2')"
        )
        conn.execute("INSERT INTO t (t, rank) VALUES ('automerge', ?)", (automerge,))
        inserting = committing = 0.0
        rowid = 0
        for _ in range(transactions):
            rows = []
            for _ in range(50):
                rowid += 1
                rows.append((rowid, " ".join(rng.choices(words, k=400))))
            started = time.thread_time()
            conn.execute("BEGIN")
            conn.executemany("INSERT INTO t (rowid, body) VALUES (?, ?)", rows)
            inserted = time.thread_time()
            conn.execute("COMMIT")
            inserting += inserted - started
            committing += time.thread_time() - inserted
        segments = conn.execute("SELECT count(DISTINCT segid) FROM t_idx").fetchone()[0]
        started = time.thread_time()
        for i in range(50):
            conn.execute(
                "SELECT rowid FROM t WHERE t MATCH ? ORDER BY rowid DESC LIMIT 50",
                (words[i % vocabulary],),
            ).fetchall()
        query = (time.thread_time() - started) / 50
        conn.close()
    return inserting / transactions, committing / transactions, segments, query


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--transactions", type=int, default=100)
    parser.add_argument("--automerge", default="4,0", help="values to compare, e.g. 4,8,16,0")
    parser.add_argument("--vocabularies", default="10,1000,5000,20000")
    parser.add_argument(
        "--contentless-delete", action="store_true", help="the table as migration 0016 makes it"
    )
    args = parser.parse_args()
    made = " contentless_delete = 1," if args.contentless_delete else ""
    print(
        "vocabulary  automerge  inserts ms  commit ms  (per transaction of 20,000 words)"
        "  segments  query ms"
    )
    for vocabulary in (int(v) for v in args.vocabularies.split(",")):
        for automerge in (int(a) for a in args.automerge.split(",")):
            inserts, commit, segments, query = run(vocabulary, automerge, args.transactions, made)
            print(
                f"{vocabulary:10,} {automerge:10} {inserts * 1e3:11.2f} {commit * 1e3:10.2f}"
                f" {segments:42} {query * 1e3:9.2f}"
            )


if __name__ == "__main__":
    main()
