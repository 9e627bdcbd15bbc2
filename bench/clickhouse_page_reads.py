"""What each form of a page's read costs the ClickHouse engine, on a filled store.

    python tests/store/chdb_http.py --port 8124 --path DIR &   # the engine; note its pid
    python bench/clickhouse_page_reads.py --url http://127.0.0.1:8124 \\
        --database scale_10000000 --engine-pid PID [--layouts] [--rounds 3]

On a database filled by ``clickhouse_scale.py``, reads the merged parts of the 100 most
recent traces (a Sessions page) and of one trace (a trace's page) in several forms, and
prints, per form, the engine process's CPU time per statement (user + system, from
/proc: on a shared machine it moves far less than the wall time) and the wall time,
medians of ``--rounds`` rounds of 10 statements that alternate the forms:

- ``join``: the traces' context use joined to the merge (before this change);
- ``map``: the same, with the context use read once as a map (``merged_traces.py``);
- ``two statements`` / ``has(array)``: a session page's trace ids found in
  ``session_members`` first, or in the same statement as an array;
- ``bounded``: the merge limited to the traces' time span (``start_ns`` between their
  least start and greatest end), which prunes partitions and parts;
- with ``--layouts``: copies of ``trace_parts_by_id`` in wide parts (as it is) and in
  compact parts, read by id and over a day's window (``queries.latest_traces``). The
  copies are dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import urllib.request

from threadline.server.store.clickhouse import merged_traces, queries

_TICKS = os.sysconf("SC_CLK_TCK")
_JOINED = (
    "SELECT m.*, c.c_use FROM (SELECT trace_id, min(p.start_ns), max(p.end_ns),"
    " length(groupUniqArrayArray(p.span_ids)), length(groupUniqArrayArray(p.error_span_ids)),"
    " min(p.root), min(p.first_session), min(p.first_user), min(p.first_input),"
    " min(p.last_output), groupUniqArrayArray(p.amounts), [], []"
    " FROM {table} AS p WHERE {where} GROUP BY trace_id) AS m LEFT JOIN (SELECT trace_id,"
    " toNullable(max(context_use)) AS c_use FROM trace_context WHERE {where}"
    " GROUP BY trace_id) AS c ON m.trace_id = c.trace_id"
)


class Engine:
    def __init__(self, url: str, database: str, pid: int):
        self.url, self.database, self.pid = url.rstrip("/"), database, pid

    def rows(self, sql: str) -> list[list[str]]:
        body = self._post(sql + " FORMAT TSV").decode()
        return [line.split("\t") for line in body.splitlines()]

    def _post(self, sql: str) -> bytes:
        request = urllib.request.Request(f"{self.url}/?database={self.database}", data=sql.encode())
        with urllib.request.urlopen(request) as answer:
            return bytes(answer.read())

    def cpu_ms(self) -> float:
        with open(f"/proc/{self.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) * 1000 / _TICKS

    def cost(self, sql: str, times: int = 10) -> tuple[float, float]:
        """(engine CPU ms, wall ms) per run of ``sql``, its rows discarded."""
        self._post(sql + " FORMAT Null")
        cpu, wall = self.cpu_ms(), time.perf_counter()
        for _ in range(times):
            self._post(sql + " FORMAT Null")
        return (self.cpu_ms() - cpu) / times, (time.perf_counter() - wall) * 1000 / times


def _quoted(ids: list[str]) -> str:
    return ", ".join("'" + i.replace("'", "\\'") + "'" for i in ids)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="http://host:port of the engine")
    parser.add_argument("--database", required=True)
    parser.add_argument("--engine-pid", type=int, required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--layouts", action="store_true", help="also wide vs compact copies")
    args = parser.parse_args()
    engine = Engine(args.url, args.database, args.engine_pid)
    project = engine.rows("SELECT id FROM projects WHERE name = 'scale'")[0][0]
    hour_ago = time.time_ns() - 3600 * 10**9
    recent = engine.rows(
        f"SELECT trace_id FROM trace_activity WHERE project_id = {project}"
        f" AND end_ns >= {hour_ago} ORDER BY end_ns DESC LIMIT 100"
    )
    ids = [row[0] for row in recent]
    sessions = engine.rows(
        f"SELECT DISTINCT session_id FROM session_members WHERE project_id = {project}"
        f" AND trace_id IN ({_quoted(ids)}) LIMIT 50"
    )
    forms: dict[str, str] = {}
    for label, some in (("100 traces", ids), ("1 trace", ids[:1])):
        where = f"project_id = {project} AND trace_id IN ({_quoted(some)})"
        lo, hi = engine.rows(
            f"SELECT min(start_ns), max(end_ns) FROM trace_parts_by_id WHERE {where}"
        )[0]
        forms[f"{label}: join"] = _JOINED.format(table="trace_parts_by_id", where=where)
        forms[f"{label}: map"] = merged_traces.merged_sql(where, False)
        bounded = merged_traces.merged_sql(where, False).replace(
            f"FROM trace_parts_by_id AS p WHERE {where}",
            f"FROM trace_parts_by_id AS p WHERE {where} AND start_ns BETWEEN {lo} AND {hi}",
        )
        forms[f"{label}: map, bounded"] = bounded
    members = (
        f"SELECT DISTINCT trace_id FROM session_members WHERE project_id = {project}"
        f" AND session_id IN ({_quoted([row[0] for row in sessions])})"
    )
    member_ids = [row[0] for row in engine.rows(members)]
    forms["50 sessions: two statements"] = members
    forms["50 sessions: two statements (2nd)"] = merged_traces.merged_sql(
        f"project_id = {project} AND trace_id IN ({_quoted(member_ids)})", False
    )
    session_traces = (
        "(SELECT groupUniqArray(trace_id) FROM session_members WHERE project_id ="
        f" {project} AND session_id IN ({_quoted([row[0] for row in sessions])}))"
        " AS session_traces"
    )
    forms["50 sessions: has(array)"] = merged_traces.merged_sql(
        f"project_id = {project} AND has(session_traces, trace_id)", False, [session_traces]
    )
    copies = {"wide": "", "compact": ", min_bytes_for_wide_part = 1000000000000"}
    if args.layouts:
        for name, extra in copies.items():
            table = f"layout_{name}"
            engine.rows(f"DROP TABLE IF EXISTS {table}")
            engine.rows(
                f"CREATE TABLE {table} AS trace_parts_by_id ENGINE = AggregatingMergeTree"
                " PARTITION BY toYYYYMM(toDateTime(intDiv(start_ns, 1000000000)))"
                " ORDER BY (project_id, trace_id) SETTINGS index_granularity = 64,"
                f" min_compress_block_size = 4096, max_compress_block_size = 16384{extra}"
            )
            engine.rows(f"INSERT INTO {table} SELECT * FROM trace_parts_by_id")
            where = f"project_id = {project} AND trace_id IN ({_quoted(ids)})"
            forms[f"{name} parts: 100 traces by id"] = _JOINED.format(table=table, where=where)
            day = (
                f"project_id = {project} AND trace_id IN (SELECT trace_id FROM trace_times"
                f" WHERE project_id = {project} AND start_ns >= {hour_ago - 23 * 3600 * 10**9})"
            )
            forms[f"{name} parts: a day's window merged"] = (
                "SELECT count(), sum(span_count) FROM ("
                + queries.latest_traces(day).replace("FROM trace_parts_by_id", f"FROM {table}")
                + ")"
            )
    samples: dict[str, list[tuple[float, float]]] = {form: [] for form in forms}
    for _ in range(args.rounds):
        for form, sql in forms.items():
            times = 3 if "window" in form else 10
            samples[form].append(engine.cost(sql, times))
    for form, taken in samples.items():
        cpu = statistics.median(t[0] for t in taken)
        wall = statistics.median(t[1] for t in taken)
        print(f"  {form:<42} engine CPU {cpu:7.1f} ms   wall {wall:7.1f} ms", flush=True)
    if args.layouts:
        for name in copies:
            engine.rows(f"DROP TABLE IF EXISTS layout_{name}")


if __name__ == "__main__":
    main()
