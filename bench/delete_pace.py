"""How fast the SQLite store deletes traces, and the search index's part of it.

    python bench/delete_pace.py --spans 20000 --pairs 2

Writes the workload of ``workload.py`` (10-span traces, ~3,300 characters of searchable
text a span) into two fresh SQLite stores in one process, as ``ingest_growth.py`` does,
then deletes every trace in batches of ``--batch`` (what retention's batch is while
spans arrive), the two stores taking turns batch by batch, and prints µs of CPU per
span deleted, whole and the search index's part (``search.forget_traces``):

- ``text``: the index as migration 0009 made it (contentless, no ``contentless_delete``):
  FTS5 is given each document's text again, made anew from the spans;
- ``rowid``: as migration 0016 makes it (``contentless_delete=1``): by rowid only.

Both on the SQLite linked (store/sqlite/driver.py); ``text`` is what an engine older
than 3.43 does.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import workload

from threadline.server import pricing
from threadline.server.ingest.decode import PROTOBUF, decode_request
from threadline.server.ingest.normalize import normalize_request
from threadline.server.store.sqlite import SQLiteStore, driver, search

_INDEX_0009 = (
    "DROP TABLE search_text;"
    " CREATE VIRTUAL TABLE search_text USING fts5("
    "body, content = '', tokenize = 'unicode61 remove_diacritics 2');"
)


def _filled(path: Path, spans: int, by_rowid: bool) -> tuple[SQLiteStore, int]:
    store = SQLiteStore(path)
    if not by_rowid:
        store._writer.executescript(_INDEX_0009)  # a fresh store: nothing indexed yet
    project = store.create_project("delete").id
    for batch in workload.batches(spans):
        records = normalize_request(decode_request(batch.body, PROTOBUF)).spans
        store.write_spans(project, records, store.span_preparer()(project, records))
    with store._read() as conn:
        assert search.deletes_by_rowid(conn) is by_rowid
    return store, project


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=100, help="traces a delete")
    parser.add_argument("--pairs", type=int, default=2)
    args = parser.parse_args()
    pricing.load()
    print(f"{driver.describe()}; {args.spans} spans a store, {args.batch} traces a delete")
    forget = search.forget_traces
    spent: dict[str, float] = defaultdict(float)

    def timed_forget(
        conn: driver.sqlite3.Connection,
        project_id: int,
        trace_ids: Sequence[str],
        unpack: search.Unpack,
    ) -> None:
        started = time.thread_time()
        try:
            forget(conn, project_id, trace_ids, unpack)
        finally:
            spent["search"] += time.thread_time() - started

    search.forget_traces = timed_forget
    for pair in range(1, args.pairs + 1):
        with tempfile.TemporaryDirectory(prefix="threadline-delete-") as tmp:
            stores = {
                name: _filled(Path(tmp) / f"{name}.db", args.spans, name == "rowid")
                for name in ("text", "rowid")
            }
            ids = {}
            for name, (store, _) in stores.items():
                with store._read() as conn:
                    ids[name] = [r[0] for r in conn.execute("SELECT trace_id FROM traces")]
            totals: dict[str, float] = defaultdict(float)
            searches: dict[str, float] = defaultdict(float)
            order = ["text", "rowid"] if pair % 2 else ["rowid", "text"]
            for start in range(0, len(ids["text"]), args.batch):
                for name in order:
                    store, project = stores[name]
                    chunk = ids[name][start : start + args.batch]
                    spent.clear()
                    started = time.thread_time()
                    store.delete_traces(project, chunk)
                    totals[name] += time.thread_time() - started
                    searches[name] += spent["search"]
            for name in ("text", "rowid"):
                store, project = stores[name]
                with store._read() as conn:
                    assert conn.execute("SELECT count(*) FROM spans").fetchone()[0] == 0
                    assert conn.execute("SELECT count(*) FROM search_docs").fetchone()[0] == 0
                store.close()
                print(
                    f"pair {pair} {name:>5}: {totals[name] / args.spans * 1e6:7.1f} µs/span"
                    f" deleted, search index {searches[name] / args.spans * 1e6:6.1f} µs/span",
                    flush=True,
                )


if __name__ == "__main__":
    main()
