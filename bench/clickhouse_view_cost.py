"""What one materialized view on the intake costs an export, on a filled ClickHouse store.

    python tests/store/chdb_http.py --port 8124 --path DIR &   # the engine; note its pid
    python bench/clickhouse_view_cost.py --url http://127.0.0.1:8124 \\
        --database scale_1000000 --engine-pid PID --view trace_parts_packed_from_intake

On a database filled by ``clickhouse_scale.py --fill``, makes exports of ``--spans``
spans (sessions of 2 traces of 5 spans, as the fill makes them, with new ids) inserted
into ``span_intake`` one at a time, ``--inserts`` per run, with ``--view`` attached and
detached in turn (``--rounds`` of each), and prints per run the engine's CPU per insert
(user + system of its process, from /proc) and the wall time per insert. The view is
attached again at the end, whatever happens; the inserted spans stay.
"""

from __future__ import annotations

import argparse
import time
import urllib.request

from clickhouse_scale import _span_select, engine_cpu_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="http://host:port of the engine")
    parser.add_argument("--database", required=True)
    parser.add_argument("--engine-pid", type=int, required=True)
    parser.add_argument("--view", required=True, help="the view detached in turn")
    parser.add_argument("--inserts", type=int, default=60)
    parser.add_argument("--spans", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    url = f"{args.url.rstrip('/')}/?database={args.database}"

    def post(sql: str) -> str:
        with urllib.request.urlopen(urllib.request.Request(url, data=sql.encode())) as answer:
            return str(answer.read().decode())

    project = int(post("SELECT id FROM projects WHERE name = 'scale'"))
    # New span numbers, past any fill's, so every export is new traces.
    next_span = [int(post("SELECT count() FROM spans")) * 10]

    def run() -> tuple[float, float]:
        cpu, wall = engine_cpu_ms(args.engine_pid), time.perf_counter()
        for _ in range(args.inserts):
            first = next_span[0]
            next_span[0] += args.spans
            select = _span_select(project, time.time_ns(), first // 10 + args.spans)
            post(
                "INSERT INTO span_intake SELECT *, [] AS tag_list, [] AS meta_entries,"
                " input AS input_preview, output AS output_preview FROM"
                f" (SELECT {select} FROM (SELECT number AS n FROM numbers({first}, {args.spans})))"
            )
        return (
            (engine_cpu_ms(args.engine_pid) - cpu) / args.inserts,
            (time.perf_counter() - wall) * 1000 / args.inserts,
        )

    for number in range(1, args.rounds + 1):
        for attached in (True, False):
            if not attached:
                post(f"DETACH TABLE {args.view}")
            try:
                cpu, wall = run()
            finally:
                if not attached:
                    post(f"ATTACH TABLE {args.view}")
            label = "with" if attached else "without"
            print(f"round {number} {label:<7} engine CPU {cpu:6.1f} ms  wall {wall:6.1f} ms")


if __name__ == "__main__":
    main()
