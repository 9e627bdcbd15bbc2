"""What each statement of a trace's and a session's detail costs the ClickHouse engine.

    python tests/store/chdb_http.py --port 8124 --path DIR &   # the engine; note its pid
    python bench/clickhouse_detail_reads.py --url http://127.0.0.1:8124 \\
        --database before_10m --engine-pid PID [--traces 20] [--rounds 3]

On a database filled by ``clickhouse_scale.py``, takes ``--traces`` traces (half the
most recent, half spread over the data) and one session of each, and runs each form of
each read once per trace per round, the forms alternating. Prints per form the engine
process's CPU per statement (user + system from /proc, summed over all its runs: the
10 ms ticks of one run would round most of them to 0) and the wall time's median:

- ``trace: detail``: the detail's one statement (``trace_detail.py``: the three below,
  the spans and the scores as scalar subqueries of the merge);
- ``trace: merge``: the trace's packed parts merged, with its context use
  (``merged_traces.by_ids``);
- ``trace: spans``: its spans by the spans table's sort key, each span's last copy
  (the detail's subquery);
- ``trace: spans, bounded``: the same, also bounded by the trace's start and end,
  which prunes the partitions and parts that cannot hold them (not what the store
  reads: what bounding would save);
- ``trace: spans, narrow``: only three short columns (what the payloads cost);
- ``trace: scores``: its score summaries (``scores.latest_rollups``);
- ``session: detail``: the detail's one statement (``session_detail.py``: the merge
  below, with the session's and its traces' score summaries as scalar subqueries);
- ``session: merge``: the session's traces merged (``merged_traces.of_sessions``);
- ``session: scores``: the session's score summaries;
- ``session: members``: its trace ids, from ``session_members`` (the detail's array);
- ``session: merge, labels``: its traces merged with their tags and metadata (what the
  detail reads);
- ``session: trace scores``: its traces' score summaries, found through that array;
- ``session: both scores``: the session's and its traces' in one read (the detail's);
- ``a statement: SELECT 1``: what any statement costs the engine.

With ``--store URL`` (clickhouse://user:pw@host:port, no database) it times instead
the store's own ``get_trace`` and ``get_session`` for the same traces and sessions, and
counts their statements: run it with each store code on the path, alternately.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from clickhouse_page_reads import Engine, _quoted

from threadline.server.store import open_store
from threadline.server.store.clickhouse import merged_traces, scores, session_detail, trace_detail
from threadline.server.store.columns import SPAN_DETAIL

_SPANS = (
    "SELECT {columns} FROM spans WHERE project_id = {project} AND trace_id = '{trace}'{bounds}"
    " ORDER BY span_id, ingested_ns DESC LIMIT 1 BY span_id"
)


def forms(project: str) -> dict[str, Callable[[str, str, str, str], str]]:
    """Each form's statement for (trace id, its start, its end, its session)."""

    def spans(columns: str, bounded: bool) -> Callable[[str, str, str, str], str]:
        def sql(trace: str, start: str, end: str, session: str) -> str:
            bounds = f" AND start_ns BETWEEN {start} AND {end}" if bounded else ""
            return _SPANS.format(columns=columns, project=project, trace=trace, bounds=bounds)

        return sql

    def bound(sql: str, trace: str, session: str) -> str:
        for name, value in (
            ("%(project)s", project),
            ("%(trace)s", f"'{trace}'"),
            ("%(sessions)s", f"['{session}']"),
        ):
            sql = sql.replace(name, value)
        assert "%(" not in sql, sql
        return sql

    def of_session(trace: str, start: str, end: str, session: str) -> str:
        return bound(merged_traces.of_sessions_sql(False), trace, session)

    def rollups(kind: str, ids: str) -> str:
        return scores.latest_rollups(
            f"project_id = {project} AND target_kind = '{kind}' AND target_id IN ({ids})"
        )

    return {
        "trace: detail": lambda t, s, e, x: bound(trace_detail._DETAIL, t, x),
        "trace: merge": lambda t, s, e, x: merged_traces.merged_sql(
            f"project_id = {project} AND trace_id IN ('{t}')"
        ),
        "trace: spans": spans(SPAN_DETAIL.sql, False),
        "trace: spans, bounded": spans(SPAN_DETAIL.sql, True),
        "trace: spans, narrow": spans("span_id, start_ns, end_ns", False),
        "trace: scores": lambda t, s, e, x: rollups("trace", f"'{t}'"),
        "session: detail": lambda t, s, e, x: bound(session_detail._DETAIL, t, x),
        "session: merge": of_session,
        "session: scores": lambda t, s, e, x: rollups("session", f"'{x}'"),
        "session: members": lambda t, s, e, x: bound(
            f"SELECT {merged_traces.SESSION_TRACES}", t, x
        ),
        "session: merge, labels": lambda t, s, e, x: bound(
            merged_traces.of_sessions_sql(True), t, x
        ),
        "session: trace scores": lambda t, s, e, x: bound(
            f"WITH {merged_traces.SESSION_TRACES} "
            + scores.latest_rollups(
                f"project_id = {project} AND target_kind = 'trace'"
                " AND has(session_traces, target_id)"
            ),
            t,
            x,
        ),
        "session: both scores": lambda t, s, e, x: bound(
            f"WITH {merged_traces.SESSION_TRACES} SELECT {session_detail._SCORES}", t, x
        ),
        "a statement: SELECT 1": lambda t, s, e, x: "SELECT 1",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="http://host:port of the engine")
    parser.add_argument("--database", required=True)
    parser.add_argument("--engine-pid", type=int, required=True)
    parser.add_argument("--traces", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--store", help="time the store's details instead (its URL)")
    args = parser.parse_args()
    engine = Engine(args.url, args.database, args.engine_pid)
    project = engine.rows("SELECT id FROM projects WHERE name = 'scale'")[0][0]
    half = args.traces // 2
    picked = engine.rows(
        f"SELECT trace_id FROM trace_times WHERE project_id = {project}"
        f" ORDER BY end_ns DESC LIMIT {half}"
    ) + engine.rows(
        f"SELECT trace_id FROM trace_times WHERE project_id = {project}"
        f" ORDER BY cityHash64(trace_id) LIMIT {args.traces - half}"
    )
    ids = [row[0] for row in picked]
    found = engine.rows(
        "SELECT trace_id, minIf(start_ns, start_ns > 0), max(end_ns), max(session_id) FROM ("
        f" SELECT trace_id, start_ns, end_ns, '' AS session_id FROM trace_times"
        f" WHERE project_id = {project} AND trace_id IN ({_quoted(ids)}) UNION ALL"
        " SELECT trace_id, 0, 0, session_id FROM session_members"
        f" WHERE project_id = {project} AND trace_id IN ({_quoted(ids)}))"
        " GROUP BY trace_id HAVING max(start_ns) > 0 AND max(session_id) != ''"
    )
    traces = [(t, s, e, x) for t, s, e, x in found]
    if args.store:
        through_store(engine, f"{args.store.rstrip('/')}/{args.database}", traces, args.rounds)
        return
    made = forms(project)
    cpu: dict[str, float] = defaultdict(float)
    walls: dict[str, list[float]] = defaultdict(list)
    for _ in range(args.rounds):
        for trace in traces:
            for label, form in made.items():
                spent, wall = engine.cost(form(*trace), times=1)
                cpu[label] += spent
                walls[label].append(wall)
    runs = args.rounds * len(traces)
    print(f"{args.database}: {len(traces)} traces x {args.rounds} rounds")
    for label in made:
        print(
            f"  {label:<26} engine CPU {cpu[label] / runs:6.1f} ms"
            f"   wall p50 {statistics.median(walls[label]):6.1f} ms"
        )


def through_store(
    engine: Engine, url: str, traces: list[tuple[str, str, str, str]], rounds: int
) -> None:
    """The store's trace and session details: engine CPU per call (summed over all
    calls), wall p50 / p95, and statements per call."""
    store = open_store(url)
    project = next(p.id for p in store.list_projects() if p.name == "scale")
    statements = 0
    rows = store._rows  # type: ignore[attr-defined]

    def counting(sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        nonlocal statements
        statements += 1
        return rows(sql, params)

    store._rows = counting  # type: ignore[attr-defined]
    store._scores._rows = counting  # type: ignore[attr-defined]
    calls: dict[str, Callable[[str, str], Any]] = {
        "trace detail": lambda trace, session: store.get_trace(project, trace),
        "session detail": lambda trace, session: store.get_session(project, session),
    }
    for label, call in calls.items():
        for trace, _, _, session in traces:
            assert call(trace, session) is not None  # warm, and present
        statements, walls, cpu = 0, [], 0.0
        for _ in range(rounds):
            for trace, _, _, session in traces:
                began_cpu, began = engine.cpu_ms(), time.perf_counter()
                call(trace, session)
                walls.append((time.perf_counter() - began) * 1000)
                cpu += engine.cpu_ms() - began_cpu
        walls.sort()
        p95 = walls[min(len(walls) - 1, int(len(walls) * 0.95))]
        print(
            f"  {label:<16} engine CPU {cpu / len(walls):6.1f} ms   wall p50"
            f" {statistics.median(walls):6.1f} ms   p95 {p95:6.1f} ms"
            f"   statements {statements / len(walls):.0f}"
        )
    store.close()


if __name__ == "__main__":
    main()
