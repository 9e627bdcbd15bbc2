"""Whether a data-skipping index on ``share_links.target_id`` would spare ClickHouse's
delete of the links to deleted traces (``deletion_leftovers.forget``: a lightweight
``DELETE`` by project, kind and target, on a table sorted by link id) the reading of
every link, in chDB.

    python bench/clickhouse_link_deletes.py [--links 50000] [--parts 4] [--turns 8]

Two tables as migration 0005 makes ``share_links``, one with a ``bloom_filter`` index
on ``target_id``, each filled in ``--parts`` inserts; then a delete of 20 random trace
links from each in turns, ``lightweight_deletes_sync = 2`` as the store sends it. Prints
the median wall and process CPU ms of each.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time

from chdb import session

_TABLE = """CREATE TABLE {name} (
    id String, project_id UInt64, token_hash String, kind LowCardinality(String),
    target_id String, created_ns Int64, expires_ns Int64, revoked_ns Nullable(Int64),
    hide_io UInt8, hide_metadata Array(String), is_revoked UInt8{index}
) ENGINE = ReplacingMergeTree(is_revoked) ORDER BY id"""
TABLES = {
    "links_plain": "",
    "links_indexed": ",\n    INDEX by_target target_id TYPE bloom_filter GRANULARITY 1",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--links", type=int, default=50_000)
    parser.add_argument("--parts", type=int, default=4)
    parser.add_argument("--turns", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as path:
        s = session.Session(path)
        per_part = args.links // args.parts
        for name, index in TABLES.items():
            s.query(_TABLE.format(name=name, index=index))
            for part in range(args.parts):
                s.query(
                    f"INSERT INTO {name} SELECT concat('l', toString(number)), 1, hex(number),"
                    " if(number % 2 = 0, 'trace', 'session'), concat('t', toString(number)),"
                    f" number, 10, NULL, 0, [], 0 FROM numbers({part * per_part}, {per_part})"
                )
        rng = random.Random(1)
        took: dict[str, list[tuple[float, float]]] = {name: [] for name in TABLES}
        for turn in range(args.turns):
            for name in TABLES if turn % 2 == 0 else reversed(TABLES):
                ids = ", ".join(f"'t{rng.randrange(args.links)}'" for _ in range(20))
                wall, cpu = time.perf_counter(), time.process_time()
                s.query(
                    f"DELETE FROM {name} WHERE project_id = 1 AND kind = 'trace'"
                    f" AND target_id IN ({ids}) SETTINGS lightweight_deletes_sync = 2"
                )
                took[name].append(
                    ((time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000)
                )
        for name, times in took.items():
            print(
                f"{name}: wall p50 {statistics.median(t[0] for t in times):.1f} ms,"
                f" process CPU p50 {statistics.median(t[1] for t in times):.1f} ms"
            )
        s.close()


if __name__ == "__main__":
    main()
