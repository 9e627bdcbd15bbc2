"""What a page's lookup of traces by id costs in each table layout, on a filled store.

    python bench/clickhouse_layout.py --url clickhouse://default:@127.0.0.1:8124 \\
        --database scale_1000000 [--rounds 7]

Copies ``trace_parts_by_id`` (migration 0011) of a database filled by
``clickhouse_scale.py`` into tables that differ only in index granularity and
compressed block sizes (the layout of 0010, 512 rows in the default blocks, among
them), then reads the merged parts of the 100 most recent traces by id from each, as
a Sessions page does (``merged_traces.py``), in rounds that alternate the tables, and
prints each one's median in milliseconds. The copies are dropped at the end.
"""

from __future__ import annotations

import argparse
import statistics
import time

import clickhouse_connect

# name -> table settings
LAYOUTS = {
    "g512_default_blocks": "index_granularity = 512",
    "g512_small_blocks": "index_granularity = 512, min_compress_block_size = 2048,"
    " max_compress_block_size = 8192",
    "g64_default_blocks": "index_granularity = 64",
    "g64_small_blocks": "index_granularity = 64, min_compress_block_size = 4096,"
    " max_compress_block_size = 16384",
    "g16_small_blocks": "index_granularity = 16, min_compress_block_size = 2048,"
    " max_compress_block_size = 8192",
}
_MERGED = (
    "SELECT trace_id, min(start_ns), max(end_ns), length(groupUniqArrayArray(span_ids)),"
    " length(groupUniqArrayArray(error_span_ids)), min(root), min(first_session),"
    " min(first_user), min(first_input), min(last_output), groupUniqArrayArray(amounts)"
    " FROM {table} WHERE project_id = %(project)s AND trace_id IN %(ids)s GROUP BY trace_id"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="clickhouse://user:pw@host:port")
    parser.add_argument("--database", required=True)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    host_port = args.url.split("@")[-1].rstrip("/")
    host, port = host_port.split(":")
    client = clickhouse_connect.get_client(host=host, port=int(port), database=args.database)
    project = client.query("SELECT id FROM projects WHERE name = 'scale'").result_rows[0][0]
    ids = [
        row[0]
        for row in client.query(
            "SELECT trace_id FROM trace_activity WHERE project_id = %(p)s"
            " ORDER BY end_ns DESC LIMIT 100",
            parameters={"p": project},
        ).result_rows
    ]
    for name, settings in LAYOUTS.items():
        client.command(
            f"CREATE TABLE layout_{name} AS trace_parts_by_id ENGINE = AggregatingMergeTree"
            " PARTITION BY toYYYYMM(toDateTime(intDiv(start_ns, 1000000000)))"
            f" ORDER BY (project_id, trace_id) SETTINGS {settings}"
        )
        client.command(f"INSERT INTO layout_{name} SELECT * FROM trace_parts_by_id")
        client.command(f"OPTIMIZE TABLE layout_{name} FINAL")
    try:
        samples: dict[str, list[float]] = {name: [] for name in LAYOUTS}
        for _ in range(args.rounds):
            for name in LAYOUTS:
                began = time.perf_counter()
                rows = client.query(
                    _MERGED.format(table=f"layout_{name}"),
                    parameters={"project": project, "ids": ids},
                ).result_rows
                samples[name].append((time.perf_counter() - began) * 1000)
                assert len(rows) == len(ids)
        for name, times in samples.items():
            print(f"  {name:<22} median {statistics.median(times):7.1f} ms")
    finally:
        for name in LAYOUTS:
            client.command(f"DROP TABLE IF EXISTS layout_{name}")


if __name__ == "__main__":
    main()
