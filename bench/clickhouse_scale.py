"""The ClickHouse store's lists and details on a large store, on chDB.

    python tests/store/chdb_http.py --port 8124 --path /tmp/chbench &   # the engine
    python bench/clickhouse_scale.py --url clickhouse://default:@127.0.0.1:8124 \\
        --spans 1000000 [--fill] [--repeat 30]

Fills a database named ``scale_<spans>`` (``--fill``, once) with sessions of 2 traces of
5 spans at a steady rate of 10,000 sessions (100,000 spans) a day, ending now: 100k
spans are one day, 1M ten days, 10M a hundred (``--months N``: the same sessions spread
evenly over N 30-day months ending now instead). The rows are made by ClickHouse itself
(``INSERT ... SELECT FROM numbers()``), in the schema of whichever store code is on the
path: the rollup parts of migration 0010, or, for the store before it, its spans and
the versioned trace and session rollups it would have written. Then it times, through
the store's own methods over HTTP, the Sessions list (first page of 50) for the last
hour, the last day, the last 7 days (the lists' default window) and all time, a
session's detail, a trace's detail and the Traces list for the last hour and the last 7
days, and prints p50 / p95 in milliseconds (``--cold``: each read as a page's first, the
query condition cache off). The schema of migration 0011 is filled the same way (its
materialized views make its tables from the same insert).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from threadline.server.model import SessionQuery, TraceQuery
from threadline.server.store import open_store

SESSIONS_PER_DAY = 10_000
SPANS_PER_TRACE = 5
TRACES_PER_SESSION = 2
SPANS_PER_SESSION = SPANS_PER_TRACE * TRACES_PER_SESSION
CHUNK = 1_000_000  # spans per INSERT ... SELECT
# Labels on each trace's root span (the dashboard benchmark's grouped and narrowed
# views): a tag of three by trace (a session's two traces may differ) and metadata
# ``app_version`` of four by session. Off: no tags, no metadata.
LABELS = False

# Column expressions over n, the span number (common to both schemas).
_SPAN = {
    "s": f"intDiv(n, {SPANS_PER_SESSION})",
    "t": f"intDiv(n, {SPANS_PER_TRACE})",
    "i": f"n % {SPANS_PER_TRACE}",
}


def _span_select(project: int, now_ns: int, sessions: int, months: int | None = None) -> str:
    """The span columns over ``n``: sessions at 10,000 a day ending now, or with
    ``months`` spread evenly over that many 30-day months ending now."""
    if months is None:
        step = 86_400 * 10**9 // SESSIONS_PER_DAY
    else:
        step = months * 30 * 86_400 * 10**9 // sessions
    s, t, i = _SPAN["s"], _SPAN["t"], _SPAN["i"]
    tag = f"concat('tier-', toString({t} % 3))"
    version = f"concat('1.', toString({s} % 4))"
    if LABELS:
        labels = f"""
        if({i} = 0, concat('{{"app_version": "', {version}, '"}}'), '{{}}') AS metadata,
        if({i} = 0, concat('["', {tag}, '"]'), '[]') AS tags,"""
    else:
        labels = """
        '{}' AS metadata, '[]' AS tags,"""
    trace_start = f"({now_ns} - ({sessions} - {s}) * {step} + ({t} % 2) * 60000000000)"
    return f"""
        {project} AS project_id,
        lower(hex(toFixedString(concat(reinterpretAsString(cityHash64({t})),
            reinterpretAsString(cityHash64({t} + 1))), 16))) AS trace_id,
        leftPad(lower(hex(n)), 16, '0') AS span_id,
        if({i} = 0, NULL, leftPad(lower(hex(n - {i})), 16, '0')) AS parent_span_id,
        toInt64({trace_start} + {i} * 500000000) AS start_ns,
        toInt64(if({i} = 0, {trace_start} + 5000000000,
            {trace_start} + {i} * 500000000 + 400000000)) AS end_ns,
        if(n % 97 = 0, 'error', 'ok') AS status,
        if({i} = 0, NULL, toInt64(100 + {i})) AS input_tokens,
        if({i} = 0, NULL, toInt64(20)) AS output_tokens,
        if({i} = 0, NULL, toInt64(120 + {i})) AS total_tokens,
        if({i} = 0, NULL, 0.001) AS cost_usd,
        concat('session-', toString({s})) AS session_id,
        concat('user-', toString({s} % 1000)) AS user_id,{labels}
        if({i} = 0, 'chat turn', 'llm call') AS name,
        'internal' AS kind, if({i} = 0, 'chain', 'llm') AS span_type,
        if({i} = 0, NULL, 'gpt-x') AS model, NULL AS scope, NULL AS status_message,
        NULL AS input_source, NULL AS output_source,
        if({i} = 0, concat('"question ', toString({t}), '"'), NULL) AS input,
        if({i} = 0, concat('"answer ', toString({t}), '"'), NULL) AS output,
        '{{}}' AS resource, '[]' AS events, '{{}}' AS attributes"""


def _label_lists() -> str:
    """The tag list and metadata entries of ``_span_select``'s row, as the writer makes
    them (intake.py)."""
    if not LABELS:
        return "[] AS tag_list, [] AS meta_entries"
    return (
        "if(tags = '[]', [], [JSONExtractString(tags, 1)]) AS tag_list,"
        " if(metadata = '{}', [], [('app_version',"
        " concat('\"', JSONExtractString(metadata, 'app_version'), '\"'),"
        " JSONExtractString(metadata, 'app_version'))])"
        " :: Array(Tuple(String, String, Nullable(String))) AS meta_entries"
    )


def fill(store: Any, spans: int, months: int | None = None, context_use: bool = False) -> int:
    project = store.create_project("scale").id
    now_ns = time.time_ns()
    sessions = spans // SPANS_PER_SESSION
    new_schema = bool(store._rows("EXISTS TABLE trace_parts")[0][0])
    for first in range(0, spans, CHUNK):
        count = min(CHUNK, spans - first)
        numbers = f"(SELECT number AS n FROM numbers({first}, {count}))"
        select = _span_select(project, now_ns, sessions, months)
        if new_schema:
            store._ch.command(
                f"INSERT INTO span_intake SELECT *, {_label_lists()},"
                f" input AS input_preview, output AS output_preview FROM"
                f" (SELECT {select} FROM {numbers})",
                # A chunk of a fill over months holds more days than a live export would
                # (some views' tables are partitioned by day).
                settings={"max_partitions_per_insert_block": 0},
            )
        else:
            _fill_versioned(store, select, numbers)
        print(f"  filled {first + count:,} spans", flush=True)
    if context_use:
        # What the server writes for a model whose context window it knows (the fill's
        # spans bypass it): each trace's fullest share of the window, by end (context.py).
        store._ch.command(
            "INSERT INTO trace_context (project_id, trace_id, context_use, end_ns)"
            " SELECT project_id, trace_id, (cityHash64(trace_id) % 100) / 100, max(end_ns)"
            f" FROM trace_activity WHERE project_id = {project} GROUP BY project_id, trace_id"
        )
    return project


def _fill_versioned(store: Any, select: str, numbers: str) -> None:
    """The rows the store before migration 0010 writes: spans, one trace rollup per
    trace, one session rollup per session (each at its final version)."""
    store._ch.command(
        "INSERT INTO spans (project_id, trace_id, span_id, parent_span_id, start_ns, end_ns,"
        " status, input_tokens, output_tokens, total_tokens, cost_usd, session_id, user_id,"
        " metadata, tags, name, kind, span_type, model, scope, status_message, input_source,"
        " output_source, input, output, resource, events, attributes)"
        f" SELECT {select} FROM {numbers}"
    )
    traces = (
        "SELECT project_id AS t_project, trace_id AS t_trace, any(session_id) AS t_session,"
        " any(user_id) AS t_user, argMin(name, start_ns) AS t_name, min(start_ns) AS t_start,"
        " max(end_ns) AS t_end, count() AS t_spans, countIf(status = 'error') AS t_errors,"
        " sum(coalesce(input_tokens, 0)) AS t_input, sum(coalesce(output_tokens, 0)) AS t_output,"
        " sum(coalesce(total_tokens, 0)) AS t_total, sum(cost_usd) AS t_cost,"
        " argMinIf(input, start_ns, isNotNull(input)) AS t_in,"
        " argMinIf(output, start_ns, isNotNull(output)) AS t_out"
        f" FROM (SELECT {select} FROM {numbers}) GROUP BY project_id, trace_id"
    )
    store._ch.command(
        "INSERT INTO traces (project_id, trace_id, session_id, user_id, name, start_ns, end_ns,"
        " span_count, error_count, input_tokens, output_tokens, total_tokens, cost_usd,"
        " status, tags, metadata, metadata_text, input_preview, output_preview)"
        " SELECT t_project, t_trace, t_session, t_user, t_name, t_start, t_end, t_spans,"
        " t_errors, t_input, t_output, t_total, t_cost, if(t_errors > 0, 'error', 'ok'), [],"
        f" '{{}}', map(), t_in, t_out FROM ({traces})"
    )
    store._ch.command(
        "INSERT INTO sessions (project_id, session_id, version, trace_count, span_count,"
        " start_ns, end_ns, input_tokens, output_tokens, total_tokens, cost_usd, error_count,"
        " user_ids, first_input, last_output)"
        " SELECT t_project, t_session, sum(t_spans), count(), sum(t_spans), min(t_start),"
        " max(t_end), sum(t_input), sum(t_output), sum(t_total), sum(t_cost),"
        " countIf(t_errors > 0), toJSONString([any(t_user)]), argMin(t_in, t_start),"
        f" argMax(t_out, t_start) FROM ({traces}) GROUP BY t_project, t_session"
    )
    store._ch.command(
        f"INSERT INTO trace_sessions SELECT t_project, t_session, t_trace, t_end FROM ({traces})"
    )


def engine_cpu_ms(pid: int | None) -> float:
    """The engine process's CPU time so far (user + system), 0 without a pid."""
    if pid is None:
        return 0.0
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def timed(label: str, call: Callable[[], Any], repeat: int, engine_pid: int | None = None) -> None:
    """Prints p50 / p95 wall ms of ``call``, and with an engine pid the median and mean
    engine CPU ms per call (a shared machine moves it far less than the wall time)."""
    call()  # warm
    samples = []
    cpu = []
    for _ in range(repeat):
        cpu_before = engine_cpu_ms(engine_pid)
        began = time.perf_counter()
        call()
        samples.append((time.perf_counter() - began) * 1000)
        cpu.append(engine_cpu_ms(engine_pid) - cpu_before)
    samples.sort()
    p95 = samples[min(len(samples) - 1, int(len(samples) * 0.95))]
    # The CPU in clock ticks (10 ms): the mean tells apart what the median's ticks cannot.
    engine = (
        f"   engine CPU {statistics.median(cpu):6.1f} ms (mean {statistics.fmean(cpu):5.1f})"
        if engine_pid
        else ""
    )
    print(f"  {label:<34} p50 {statistics.median(samples):8.1f} ms   p95 {p95:8.1f} ms{engine}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="clickhouse://user:pw@host:port (no db)")
    parser.add_argument("--spans", type=int, default=100_000)
    parser.add_argument("--fill", action="store_true", help="fill the database first")
    parser.add_argument(
        "--months",
        type=int,
        help="with --fill: spread the sessions evenly over this many 30-day months ending"
        " now (default: 10,000 sessions a day). A first read grows with the monthly parts"
        " kept, not with the spans, so a small fill over many months measures it cheaply",
    )
    parser.add_argument(
        "--context-use",
        action="store_true",
        help="with --fill: give every trace a context use, as the server does for a model"
        " whose context window it knows (default: none, the fill's model is unknown)",
    )
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--database", help="default: scale_<spans>")
    parser.add_argument("--engine-pid", type=int, help="also print the engine's CPU per call")
    parser.add_argument(
        "--cold",
        action="store_true",
        help="read with ClickHouse's query condition cache off: every call costs what a"
        " page's first read does (repeated, the cache skips the granules a condition on"
        " the same ids found empty)",
    )
    parser.add_argument("--only", help="time only the reads whose label holds this text")
    args = parser.parse_args()

    def time_read(label: str, call: Callable[[], Any], repeat: int, pid: int | None) -> None:
        if not args.only or args.only in label:
            timed(label, call, repeat, pid)

    database = args.database or f"scale_{args.spans}"
    settings = "?use_query_condition_cache=0" if args.cold else ""
    store = open_store(f"{args.url.rstrip('/')}/{database}{settings}")
    if args.fill:
        began = time.perf_counter()
        fill(store, args.spans, args.months, args.context_use)
        print(f"filled in {time.perf_counter() - began:.0f} s")
    project = next(p.id for p in store.list_projects() if p.name == "scale")
    now = datetime.now(UTC)
    sessions = store.list_sessions(project, SessionQuery(start=now - timedelta(days=1), limit=50))
    session_id = sessions.items[0].session_id
    detail = store.get_session(project, session_id)
    assert detail is not None
    trace_id = detail.traces[0].trace_id
    cold = ", the query condition cache off" if args.cold else ""
    print(f"{args.spans:,} spans, session {session_id}, trace {trace_id}{cold}")
    windows = (
        ("last hour", timedelta(hours=1)),
        ("last day", timedelta(days=1)),
        ("last 7 days", timedelta(days=7)),  # the lists' default window
    )
    for label, start in windows:
        query = SessionQuery(start=now - start, limit=50)
        time_read(
            f"sessions list, {label}",
            partial(store.list_sessions, project, query),
            args.repeat,
            args.engine_pid,
        )
    time_read(
        "sessions list, all time",
        lambda: store.list_sessions(project, SessionQuery(limit=50)),
        max(3, args.repeat // 4),
        args.engine_pid,
    )
    time_read(
        "session detail",
        lambda: store.get_session(project, session_id),
        args.repeat,
        args.engine_pid,
    )
    time_read(
        "trace detail", lambda: store.get_trace(project, trace_id), args.repeat, args.engine_pid
    )
    hour = TraceQuery(start=now - timedelta(hours=1), limit=50)
    time_read(
        "traces list, last hour",
        lambda: store.list_traces(project, hour),
        args.repeat,
        args.engine_pid,
    )
    # Fewer traces than a page (about 28): the two minutes before the newest trace began.
    newest = store.list_traces(project, TraceQuery(limit=1)).items[0].start_time
    few = TraceQuery(start=newest - timedelta(minutes=2), limit=50)
    time_read(
        "traces list, fewer than a page",
        lambda: store.list_traces(project, few),
        args.repeat,
        args.engine_pid,
    )
    week = TraceQuery(start=now - timedelta(days=7), limit=50)
    time_read(
        "traces list, last 7 days",
        lambda: store.list_traces(project, week),
        max(3, args.repeat // 4),
        args.engine_pid,
    )
    store.close()


if __name__ == "__main__":
    main()
