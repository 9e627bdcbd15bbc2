"""What migration 0016 costs a store at its first start: the search index made anew.

    python bench/search_rebuild.py --spans 100000

Writes the workload of ``workload.py`` (10-span traces, ~3,300 characters of
searchable text a span) into a fresh SQLite store in one process, closes it, puts it
back as migration 0016 finds a store (its index empty, its spans to index), and times
opening it again: ``search.backfill`` reading every span, unpacking its input and
output, making the documents and inserting them, in transactions of 5,000 spans. Prints
the seconds, spans a second, and the file's size before and after.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import workload

from threadline.server import pricing
from threadline.server.ingest.decode import PROTOBUF, decode_request
from threadline.server.ingest.normalize import normalize_request
from threadline.server.store.sqlite import SQLiteStore, driver
from threadline.server.store.sqlite.driver import sqlite3

# What 0016 does to the index's tables, on a store that has the new table already.
_AS_MIGRATED = (
    "DELETE FROM search_text; DELETE FROM search_docs; UPDATE search_traces SET numbered = 0;"
    " DELETE FROM search_backfill; INSERT INTO search_backfill VALUES (1);"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=100_000)
    args = parser.parse_args()
    pricing.load()
    with tempfile.TemporaryDirectory(prefix="threadline-rebuild-") as tmp:
        path = Path(tmp) / "store.db"
        store = SQLiteStore(path)
        project = store.create_project("rebuild").id
        for batch in workload.batches(args.spans):
            records = normalize_request(decode_request(batch.body, PROTOBUF)).spans
            store.write_spans(project, records, store.span_preparer()(project, records))
        store.close()
        conn = sqlite3.connect(path, isolation_level=None)
        conn.executescript(_AS_MIGRATED)
        conn.close()
        size = path.stat().st_size
        started, cpu = time.perf_counter(), time.process_time()
        SQLiteStore(path).close()
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        print(
            f"{driver.describe()}: {args.spans} spans indexed anew in {wall:.1f} s"
            f" ({args.spans / wall:,.0f} spans/s; CPU {cpu:.1f} s,"
            f" {args.spans / cpu:,.0f} spans per CPU second);"
            f" file {size / 1e6:.0f} MB before, {path.stat().st_size / 1e6:.0f} MB after"
        )


if __name__ == "__main__":
    main()
