"""What each form of a page's read costs the ClickHouse engine, on a filled store.

    python tests/store/chdb_http.py --port 8124 --path DIR &   # the engine; note its pid
    python bench/clickhouse_page_reads.py --url http://127.0.0.1:8124 \\
        --database scale_10000000 --engine-pid PID [--layouts] [--rounds 3]

On a database filled by ``clickhouse_scale.py``, reads the 100 most recent traces (a
Sessions page's) and one trace, and 50 of their sessions, in the forms the store reads
them now, and prints, per form, the engine process's CPU time per statement (user +
system, from /proc: on a shared machine it moves far less than the wall time) and the
wall time, medians of ``--rounds`` rounds of 10 statements that alternate the forms:

- ``packed parts by id``: the traces' packed parts with their context use
  (``merged_traces.by_ids``: the details, the pages' traces);
- ``packed parts by id, bounded``: the same, limited to the traces' time span
  (``start_ns`` between their least start and greatest end), which prunes partitions
  and parts (not what the store reads: what bounding would save);
- ``SQL rule by id``: the traces merged in SQL from ``trace_parts_by_id`` with
  ``trace_context`` joined (``queries.latest_traces``: what search and the filters read);
- ``50 sessions: the page's traces``: a Sessions page's one statement for its traces,
  given the ids of those the pick saw (``picked_traces``);
- ``50 sessions: by their members``: the sessions' traces found through
  ``session_members`` in the same statement (``merged_traces.of_sessions``: a page of
  more traces, the session detail's merge);
- with ``--index-analysis``: each form's ``EXPLAIN indexes = 1``, which finds the parts
  and granules its condition may match and reads nothing: a read by ids probes the
  primary index of every part for each id, which the query condition cache spares a
  repeated read but not a first one (``--cold``), nor an ``EXPLAIN`` ever;
- with ``--layouts``: copies of ``trace_context`` in 8,192-row granules (as it is) and in
  64-row granules, each read by the 100 ids (its share of ``SQL rule by id``) and for a
  day's and a week's traces (what a filtered list joins). The copies are dropped at the
  end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import urllib.request

from threadline.server.store.clickhouse import merged_traces, picked_traces, queries

_TICKS = os.sysconf("SC_CLK_TCK")
# Each trace's context use, as queries.latest_traces joins it.
_CONTEXT = (
    "SELECT count(), sum(c_use) FROM (SELECT trace_id, toNullable(max(context_use)) AS c_use"
    " FROM {table} WHERE {where} GROUP BY trace_id)"
)


class Engine:
    def __init__(self, url: str, database: str, pid: int, cold: bool = False):
        self.url, self.database, self.pid = url.rstrip("/"), database, pid
        # A first read: the query condition cache (which a repeated read's condition on
        # the same ids hits) off.
        self.settings = "&use_query_condition_cache=0" if cold else ""

    def rows(self, sql: str) -> list[list[str]]:
        body = self._post(sql + " FORMAT TSV").decode()
        return [line.split("\t") for line in body.splitlines()]

    def _post(self, sql: str) -> bytes:
        request = urllib.request.Request(
            f"{self.url}/?database={self.database}{self.settings}", data=sql.encode()
        )
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


def _bound(sql: str, parameters: dict[str, str]) -> str:
    """``sql`` with its named parameters written in."""
    for name, value in parameters.items():
        sql = sql.replace(name, value)
    assert "%(" not in sql, sql
    return sql


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="http://host:port of the engine")
    parser.add_argument("--database", required=True)
    parser.add_argument("--engine-pid", type=int, required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--layouts", action="store_true", help="also trace_context in 8,192- and 64-row granules"
    )
    parser.add_argument(
        "--cold",
        action="store_true",
        help="each read as a page's first: the query condition cache off",
    )
    parser.add_argument(
        "--index-analysis",
        action="store_true",
        help="also each form's EXPLAIN indexes = 1 (its primary index search alone)",
    )
    args = parser.parse_args()
    engine = Engine(args.url, args.database, args.engine_pid, args.cold)
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
            f"SELECT min(start_ns), max(end_ns) FROM trace_parts_packed WHERE {where}"
        )[0]
        packed = merged_traces.merged_sql(where, False)
        forms[f"{label}: packed parts by id"] = packed
        read = f"FROM trace_parts_packed AS p WHERE {where}"
        assert read in packed, "the store reads its packed parts otherwise now"
        forms[f"{label}: packed parts by id, bounded"] = packed.replace(
            read, f"{read} AND start_ns BETWEEN {lo} AND {hi}"
        )
        forms[f"{label}: SQL rule by id"] = queries.latest_traces(where)
    session_ids = [row[0] for row in sessions]
    seen = [
        row[0]
        for row in engine.rows(
            f"SELECT DISTINCT trace_id FROM session_members WHERE project_id = {project}"
            f" AND session_id IN ({_quoted(session_ids)}) AND trace_id IN ({_quoted(ids)})"
        )
    ]
    # The months the page's traces are read from: from their earliest root's (as the pick
    # gives them, from the root spans it read).
    ((earliest,),) = engine.rows(
        f"SELECT min(root.2) FROM trace_activity WHERE project_id = {project}"
        f" AND trace_id IN ({_quoted(seen)}) AND root.1 = 0"
    )
    bound = {
        "%(project)s": project,
        "%(sessions)s": f"[{_quoted(session_ids)}]",
        "%(seen)s": f"[{_quoted(seen)}]",
        "%(rooted)s": f"[{_quoted(seen)}]",
        "%(since)s": str(int(earliest) - picked_traces.ROOT_SLACK_NS),
    }
    forms["50 sessions: the page's traces"] = _bound(picked_traces.PAGE_TRACES, bound)
    forms["50 sessions: by their members"] = _bound(merged_traces.of_sessions_sql(False), bound)
    tables = {"8192": 8192, "64": 64}
    if args.layouts:
        for name, granule in tables.items():
            table = f"context_granules_{name}"
            engine.rows(f"DROP TABLE IF EXISTS {table}")
            engine.rows(
                f"CREATE TABLE {table} AS trace_context ENGINE = AggregatingMergeTree"
                f" ORDER BY (project_id, trace_id) SETTINGS index_granularity = {granule}"
            )
            engine.rows(f"INSERT INTO {table} SELECT * FROM trace_context")
            engine.rows(f"OPTIMIZE TABLE {table} FINAL")
            where = f"project_id = {project} AND trace_id IN ({_quoted(ids)})"
            forms[f"context, {name}-row granules: 100 traces by id"] = _CONTEXT.format(
                table=table, where=where
            )
            for days in (1, 7):
                window = queries.trace_ids_near(
                    str(hour_ago - (days * 24 - 1) * 3600 * 10**9), None
                )
                forms[f"context, {name}-row granules: {days} day(s)' traces"] = _CONTEXT.format(
                    table=table,
                    where=f"project_id = {project} AND trace_id IN ({window})".replace(
                        "%(project)s", project
                    ),
                )
    if args.index_analysis:
        forms.update(
            {f"{form} (EXPLAIN)": f"EXPLAIN indexes = 1 {sql}" for form, sql in list(forms.items())}
        )
    forms["SELECT 1"] = "SELECT 1"
    samples: dict[str, list[tuple[float, float]]] = {form: [] for form in forms}
    for _ in range(args.rounds):
        for form, sql in forms.items():
            times = 3 if "day" in form else 10
            samples[form].append(engine.cost(sql, times))
    for form, taken in samples.items():
        cpu = statistics.median(t[0] for t in taken)
        wall = statistics.median(t[1] for t in taken)
        print(f"  {form:<50} engine CPU {cpu:7.1f} ms   wall {wall:7.1f} ms", flush=True)
    if args.layouts:
        for name in tables:
            engine.rows(f"DROP TABLE IF EXISTS context_granules_{name}")


if __name__ == "__main__":
    main()
