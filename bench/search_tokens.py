"""What the search index is given per span, and what FTS5 costs per word it is given.

    python bench/search_tokens.py --spans 20000 --transactions 20

Two workloads: ``workload.py``'s (the ingest benchmarks': exports of 512 spans, random
windows of a 70-word vocabulary) and ``payload_corpus.py``'s (chats of real text whose
calls resend their history). For each, per span:

- the words of its inputs and outputs (every JSON string), the words the index is given
  (the documents of ``search.documents``, batch by batch: of a chat only each call's
  new messages, a text two spans of a trace say once), the words of indexed texts that
  repeat a text already indexed for the same session (an earlier batch's document, a
  sibling span's), and the distinct words of each document;
- then, on ``workload.py``'s documents, the CPU of the FTS5 insert and commit in
  transactions of an export's documents, by table option (as migration 0016 makes it,
  ``detail=column``, ``detail=none``, the ``ascii`` tokenizer), and with each document
  reduced to its distinct words, once each; and the CPU that reduction costs in Python
  (where it would run: the ingest workers).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import payload_corpus  # noqa: E402
import workload  # noqa: E402

from threadline.server import jsontext  # noqa: E402
from threadline.server.ingest.decode import PROTOBUF, decode_request  # noqa: E402
from threadline.server.ingest.normalize import normalize_request  # noqa: E402
from threadline.server.model import SpanRecord  # noqa: E402
from threadline.server.search.query import words_of  # noqa: E402
from threadline.server.search.text import _strings, span_parts  # noqa: E402
from threadline.server.store.sqlite import search  # noqa: E402
from threadline.server.store.sqlite.driver import sqlite3  # noqa: E402

_WORD = re.compile(r"[^\W_]+")
# As migration 0016 makes ``search_text``, but the options compared.
_TABLE = "CREATE VIRTUAL TABLE t USING fts5(body, content = '', contentless_delete = 1,{})"
_OPTIONS = {
    "as 0016 (detail=full, unicode61)": " tokenize = 'unicode61 remove_diacritics 2'",
    "detail=column": " detail = column, tokenize = 'unicode61 remove_diacritics 2'",
    "detail=none": " detail = none, tokenize = 'unicode61 remove_diacritics 2'",
    "tokenize=ascii": " tokenize = 'ascii'",
}


def workload_batches(spans: int) -> list[list[SpanRecord]]:
    return [
        normalize_request(decode_request(batch.body, PROTOBUF)).spans
        for batch in workload.batches(spans, 512)
    ]


def corpus_batches(spans: int) -> list[list[SpanRecord]]:
    records = payload_corpus.spans(payload_corpus.Corpus(1), spans)
    return [records[i : i + 512] for i in range(0, len(records), 512)]


def _words(text: str) -> int:
    return len(_WORD.findall(text))


def _payload_words(span: SpanRecord) -> int:
    """The words of every string of the span's input and output (no new-messages rule)."""
    out = [span.name]
    for payload in (span.input, span.output):
        if payload:
            try:
                _strings(jsontext.loads(payload), 0, out)
            except ValueError:
                out.append(payload)
    return sum(map(_words, out))


def what_is_indexed(label: str, batches: Sequence[Sequence[SpanRecord]]) -> None:
    spans = payload = indexed = distinct = repeated = 0
    said: dict[str, set[str]] = defaultdict(set)  # session (else trace) -> texts indexed
    for batch in batches:
        for document in search.documents(search.by_trace(batch)).texts:
            indexed += _words(document)
            distinct += len(set(words_of(document)))
        for span in batch:
            spans += 1
            payload += _payload_words(span)
            texts = said[span.session_id or span.trace_id]
            for part in span_parts(span):
                if part in texts:
                    repeated += _words(part)
                texts.add(part)
    print(
        f"{label}: {spans:,} spans; words a span, in its inputs and outputs {payload / spans:.0f},"
        f" given to the index {indexed / spans:.0f}, of them repeating a text of the same"
        f" session {repeated / spans:.1f}, distinct in their document {distinct / spans:.0f}"
    )


def distinct_words(text: str) -> str:
    """The text's words, folded, each once: the fastest reduction found in Python (bytes
    methods for ASCII text; the query's own word split otherwise)."""
    if text.isascii():
        return b" ".join(dict.fromkeys(text.encode().lower().translate(_ASCII).split())).decode()
    return " ".join(dict.fromkeys(words_of(text)))


# Letters and digits stay, every other byte is a space (unicode61's split of ASCII).
_ASCII = bytes(c if chr(c).isalnum() else 32 for c in range(256))


def fts5_cost(transactions: Sequence[Sequence[str]], options: str) -> tuple[float, float, int]:
    """CPU seconds of the inserts and of the commits, and the file's bytes, for these
    transactions of documents."""
    with tempfile.TemporaryDirectory(prefix="threadline-fts5-") as tmp:
        path = os.path.join(tmp, "fts.db")
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(_TABLE.format(options))
        inserting = committing = 0.0
        rowid = 0
        for documents in transactions:
            rows = []
            for text in documents:
                rowid += 1
                rows.append((rowid, text))
            started = time.thread_time()
            conn.execute("BEGIN")
            conn.executemany("INSERT INTO t (rowid, body) VALUES (?, ?)", rows)
            inserted = time.thread_time()
            conn.execute("COMMIT")
            inserting += inserted - started
            committing += time.thread_time() - inserted
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
        return inserting, committing, os.path.getsize(path)


def timed(reduce: Callable[[str], str], texts: Sequence[str]) -> float:
    started = time.thread_time()
    for text in texts:
        reduce(text)
    return time.thread_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=20_000)
    parser.add_argument("--corpus-spans", type=int, default=6_000)
    parser.add_argument("--transactions", type=int, default=20, help="exports timed in FTS5")
    args = parser.parse_args()
    batches = workload_batches(args.spans)
    what_is_indexed("workload.py", batches)
    what_is_indexed("payload_corpus.py", corpus_batches(args.corpus_spans))

    timed_batches = batches[: args.transactions]
    spans = sum(map(len, timed_batches))
    texts = [search.documents(search.by_trace(batch)).texts for batch in timed_batches]
    reduced = [[distinct_words(text) for text in batch] for batch in texts]
    print(f"FTS5 on workload.py's documents, {spans:,} spans in {len(texts)} transactions:")
    print(f"  {'table':34s} {'insert µs/span':>15s} {'commit µs/span':>15s} {'bytes/span':>11s}")
    runs = [(name, options, texts) for name, options in _OPTIONS.items()]
    runs.append(
        ("as 0016, distinct words once each", _OPTIONS["as 0016 (detail=full, unicode61)"], reduced)
    )
    for name, options, given in runs:
        inserting, committing, size = fts5_cost(given, options)
        print(
            f"  {name:34s} {inserting / spans * 1e6:15.1f} {committing / spans * 1e6:15.1f}"
            f" {size / spans:11.0f}"
        )
    flat = [text for batch in texts for text in batch]
    made = timed(lambda text: text, flat)  # the loop alone
    print(
        "  Python, reducing the documents to their distinct words:"
        f" {(timed(distinct_words, flat) - made) / spans * 1e6:.1f} µs/span"
    )


if __name__ == "__main__":
    main()
