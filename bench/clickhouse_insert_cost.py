"""What an export's inserts cost the ClickHouse engine, by how many exports one insert
carries, and how much of the intake's cost is its materialized views.

    python tests/store/chdb_http.py --port 8124 --path DIR &   # the engine; note its pid
    python bench/clickhouse_insert_cost.py --url clickhouse://default:@127.0.0.1:8124 \\
        --engine-pid PID --group 1 4 8 --rounds 2

Opens the store on a fresh database (synchronous inserts unless ``--settings`` says
otherwise), makes the rows of ``workload.py``'s exports of 512 spans as the store makes
them (``intake.intake_rows``, ``search.rows``), and inserts ``--exports`` exports at a time into
``span_intake`` and into ``search_text``, ``--group`` exports per insert, alternating
the group sizes over ``--rounds``; then, once, the intake with every view on it detached
(each attached again at the end, whatever happens). Prints per export the engine's CPU
(user + system of its process, from /proc) and the wall time. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import workload
from clickhouse_scale import engine_cpu_ms

from threadline.server.ingest.decode import PROTOBUF, decode_request
from threadline.server.ingest.normalize import normalize_request
from threadline.server.store.clickhouse import intake, search
from threadline.server.store.clickhouse.store import ClickHouseStore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="clickhouse://user:pw@host:port (no db)")
    parser.add_argument("--engine-pid", type=int, required=True)
    parser.add_argument("--group", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--exports", type=int, default=8, help="exports a run inserts")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--settings", default="async_insert=0")
    args = parser.parse_args()

    store = ClickHouseStore(f"{args.url.rstrip('/')}/insert_cost_{time.time_ns()}?{args.settings}")
    project = store.create_project("cost").id
    runs = args.rounds * len(args.group) * 2 + 2
    exports: Iterator[Any] = iter(workload.batches(512 * args.exports * runs, 512))

    def run(label: str, table: str, group: int) -> None:
        batches = [next(exports) for _ in range(args.exports)]
        spans = [normalize_request(decode_request(b.body, PROTOBUF)).spans for b in batches]
        intake_table = table == "span_intake"
        columns = intake.COLUMNS if intake_table else search.COLUMNS
        make = intake.intake_rows if intake_table else search.rows
        data = [make(project, each) for each in spans]
        cpu, wall = engine_cpu_ms(args.engine_pid), time.perf_counter()
        for first in range(0, len(data), group):
            store._insert(
                table, [row for part in data[first : first + group] for row in part], columns
            )
        cpu_ms = (engine_cpu_ms(args.engine_pid) - cpu) / len(data)
        wall_ms = (time.perf_counter() - wall) * 1000 / len(data)
        print(
            f"{label:<28} {group} export(s) an insert: engine CPU {cpu_ms:6.1f} ms,"
            f" wall {wall_ms:6.1f} ms an export",
            flush=True,
        )

    run("span_intake (warm-up)", "span_intake", 1)
    for _ in range(args.rounds):
        for table in ("span_intake", search.TABLE):
            for group in args.group:
                run(table, table, group)
    views = [
        name
        for (name,) in store._rows(
            # Every view on the intake is named so (migrations 0010-0020, model_usage.py).
            "SELECT name FROM system.tables WHERE database = currentDatabase()"
            " AND engine = 'MaterializedView' AND name LIKE '%from_intake'"
        )
    ]
    for view in views:
        store._ch.command(f"DETACH TABLE {view}")
    try:
        run(f"span_intake, {len(views)} views off", "span_intake", 1)
    finally:
        for view in views:
            store._ch.command(f"ATTACH TABLE {view}")
    store.close()


if __name__ == "__main__":
    main()
