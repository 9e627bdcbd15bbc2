"""The dashboard narrowed by a user, tag or metadata filter on ClickHouse when the
traces that may meet it are few (``trace_labels.near`` named them by id).

``metrics.read`` adds the figures up in SQL, which for a filter means merging the
candidates' parts in each of its statements (the traces, the sessions, usage by
model): a few hundred traces merged by id cost 10-30 ms of the engine's CPU per column,
every time. Here they are merged once: one statement returns the rows of the traces the
filters' labels name (the candidates, and over all time the traces that keep a session
as the Sessions list keeps it: ``session_filters``), one more those of the kept
sessions' other traces if any (a session's figures are all its traces'), and the
figures are added up in Python by the rules ``metrics.read`` applies in SQL (the
bucket rules of ``store.metrics``), on a few hundred rows. Beside it, on other
connections, the candidates' usage by model and which score kinds exist; the score
rows only when there are some.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from threadline.server.model import MetricsQuery, TraceQuery
from threadline.server.store.clickhouse import (
    metric_sessions,
    metric_sources,
    model_usage,
    trace_labels,
)
from threadline.server.store.clickhouse.queries import Filters
from threadline.server.store.clickhouse.scores import latest_rollups
from threadline.server.store.metrics import MetricsRows, Range
from threadline.server.store.model_usage import picodollars

Rows = Callable[[str, dict[str, Any]], list[tuple[Any, ...]]]

# Past this many traces to add up (a user with a long history: the traces that keep a
# session are looked for over all time), the SQL statements add them up instead of
# this module, which would then read every row.
MAX_ROWS = 20_000


@dataclass(frozen=True)
class _Trace:
    trace_id: str
    start_ns: int
    end_ns: int
    failed: bool
    session_id: str | None
    user_id: str | None
    cost_usd: float | None
    input_tokens: int
    output_tokens: int
    total_tokens: int
    meets: bool  # a candidate meeting every filter
    halves: tuple[bool, bool]  # whether it meets each half of them (``_halves``)
    groups: tuple[str | None, ...]  # the groups it is in (one None when not grouped)


def _halves(f: Filters, query: MetricsQuery) -> list[tuple[str, str]]:
    """(the traces' labels, a condition on a merged trace row) for each half of the
    filters a session is kept by, as the Sessions list keeps it (``session_filters``):
    the user's, and the tag's with the metadata's."""
    halves: list[tuple[str, str]] = []
    if query.user_id:
        labels = trace_labels.labelled(f, query.user_id, None, {})
        assert labels is not None
        halves.append((labels, f"user_id = {f.param(query.user_id)}"))
    labels_or_none = trace_labels.labelled(f, None, query.tag, query.metadata)
    if labels_or_none is not None:
        carried = f.trace_conditions(TraceQuery(tag=query.tag, metadata=query.metadata))
        halves.append((labels_or_none, " AND ".join(carried)))
    return halves


def _merged_sql(f: Filters, query: MetricsQuery, by_id: str, among: str) -> str:
    """The statement merging the traces ``among`` (a condition on trace_id) selects: each
    one's figures, whether it is a candidate (``by_id``) meeting every filter, whether it
    meets each half of them (``_halves``; 1 for a half the query has not) and its
    groups."""
    # A tag, metadata or grouping needs the traces' merged labels too.
    lean = not (query.tag or query.metadata or query.group_by)
    merged = metric_sources.traces(f"project_id = %(project)s AND {among}", labelled=not lean)
    halves = [exact for _, exact in _halves(f, query)]
    meets = " AND ".join([by_id, *halves])
    halves += ["1"] * (2 - len(halves))
    return (
        "SELECT trace_id, start_ns, end_ns, status = 'error', session_id, user_id, cost_usd,"
        f" input_tokens, output_tokens, total_tokens, ({meets}), ({halves[0]}), ({halves[1]}),"
        f" {metric_sources.group_values(f, query)} FROM ({merged})"
    )


def _traces(found: list[tuple[Any, ...]]) -> list[_Trace]:
    return [
        _Trace(
            trace_id=r[0],
            start_ns=r[1],
            end_ns=r[2],
            failed=bool(r[3]),
            session_id=r[4],
            user_id=r[5],
            cost_usd=r[6],
            input_tokens=r[7],
            output_tokens=r[8],
            total_tokens=r[9],
            meets=bool(r[10]),
            halves=(bool(r[11]), bool(r[12])),
            groups=tuple(r[13]),
        )
        for r in found
    ]


def read(
    rows_of: Rows, f: Filters, query: MetricsQuery, span: Range, by_id: str
) -> MetricsRows | None:
    """``metrics.read``'s rows for ``query`` (filtered), whose candidate traces in the
    window are those ``by_id`` (a condition on trace_id) names; None when the traces
    to add up here are more than ``MAX_ROWS`` (the SQL statements then add them up)."""
    p = f.params
    usage_sql = model_usage.latest_where(by_id)
    kinds_sql = (
        "SELECT groupUniqArray(target_kind) FROM score_rollups WHERE project_id = %(project)s"
    )
    # Every trace either half's labels name, over all time (the window's candidates
    # among them): what keeps a session may have run before the window.
    among = " OR ".join(f"({labels})" for labels, _ in _halves(f, query))
    # Three statements side by side: the traces merged, the candidates' usage by model
    # (the dearest: read by id from a table partitioned by day) and the score kinds.
    # Once the sessions kept are known, their other traces, if any, are merged too.
    with ThreadPoolExecutor(max_workers=3) as pool:
        # Copies: more parameters are named while these run.
        usage = pool.submit(rows_of, usage_sql, dict(p))
        kinds = pool.submit(rows_of, kinds_sql, dict(p))
        found = rows_of(f"{_merged_sql(f, query, by_id, f'({among})')} LIMIT {MAX_ROWS + 1}", p)
        if len(found) > MAX_ROWS:
            return None
        traces = _traces(found)
        # A session is kept when each half is met by one of its traces (maybe not the
        # same one), whenever they ran.
        kept = set.intersection(
            *(
                {t.session_id for t in traces if t.halves[i] and t.session_id is not None}
                for i in range(2)
            )
        )
        others = _session_others(rows_of, f, query, by_id, among, sorted(kept))
        if others is None:
            return None
        traces += others
        usage_rows, ((kinds_found,),) = usage.result(), kinds.result()
    return _figures(rows_of, p, query, span, traces, kept, usage_rows, set(kinds_found))


def _session_others(
    rows_of: Rows, f: Filters, query: MetricsQuery, by_id: str, among: str, sessions: list[str]
) -> list[_Trace] | None:
    """The merged rows of the traces of ``sessions`` that ``among`` did not select: a
    session's figures are all its traces' (None: more than ``MAX_ROWS``)."""
    if not sessions:
        return []
    others = rows_of(
        "SELECT DISTINCT trace_id FROM session_members WHERE project_id = %(project)s"
        f" AND session_id IN {f.param(sessions)} AND NOT ({among}) LIMIT {MAX_ROWS + 1}",
        f.params,
    )
    if not others:
        return []
    if len(others) > MAX_ROWS:
        return None
    named = f"trace_id IN {f.param([t for (t,) in others])}"
    return _traces(rows_of(_merged_sql(f, query, by_id, named), f.params))


def _overlaps(span: Range, start: int, end: int) -> bool:
    return end >= span.origin and start <= span.last_instant


def _figures(
    rows_of: Rows,
    p: dict[str, Any],
    query: MetricsQuery,
    span: Range,
    traces: list[_Trace],
    kept_sessions: set[str],
    usage_rows: list[tuple[Any, ...]],
    kinds: set[str],
) -> MetricsRows:
    o, w = span.origin, span.width

    def overlaps(start: int, end: int) -> bool:
        return _overlaps(span, start, end)

    def first_of(start: int) -> int:
        return (max(start, o) - o + 999) // w

    def last_of(end: int) -> int:
        return (min(end, span.end - 1) - o) // w

    out = MetricsRows()
    # The traces the filter keeps: candidates meeting it, active in the range.
    kept = [t for t in traces if t.meets and overlaps(t.start_ns, t.end_ns)]
    started = [t for t in kept if t.start_ns + 999 >= o]
    for t in kept:
        first, last = first_of(t.start_ns), last_of(t.end_ns)
        cost = None if t.cost_usd is None else picodollars(t.cost_usd)
        amounts = (cost, t.input_tokens, t.output_tokens, t.total_tokens)
        began = t.start_ns + 999 >= o
        out.traces += [
            (g, t.user_id, first, last, began, 1, int(t.failed), *amounts) for g in t.groups
        ]
    # The sessions kept, with the figures of all their traces.
    members: dict[str, list[_Trace]] = defaultdict(list)
    for t in traces:
        if t.session_id is not None and t.session_id in kept_sessions:
            members[t.session_id].append(t)
    sessions = []
    for session_id, its in members.items():
        start, end = min(t.start_ns for t in its), max(t.end_ns for t in its)
        if overlaps(start, end):
            costs = [t.cost_usd for t in its if t.cost_usd is not None]
            errors = sum(t.failed for t in its)
            sessions.append(
                (session_id, start, end, len(its), errors, sum(costs) if costs else None)
            )
    grouped = query.group_by is not None
    metric_sessions.fill(out, sessions, span, series=not grouped)
    session_groups = {
        s: tuple(dict.fromkeys(g for t in its for g in t.groups)) for s, its in members.items()
    }
    if grouped:
        out.sessions = [
            (g, first_of(start), last_of(end), 1, int(errors > 0))
            for s, start, end, _, errors, _ in sessions
            for g in session_groups[s]
        ]
        # A trace in several groups counts once in its user's totals.
        totals: dict[str, list[Any]] = {}
        for t in started:
            if t.user_id is None:
                continue
            total = totals.setdefault(t.user_id, [0, 0, None])
            total[0] += 1
            total[1] += int(t.failed)
            if t.cost_usd is not None:
                cost = picodollars(t.cost_usd)
                total[2] = cost if total[2] is None else total[2] + cost
        out.user_totals = [(u, *total) for u, total in totals.items()]
    out.models = _models(started, usage_rows, first_of)
    if kinds:
        out.scores = _scores(rows_of, p, kinds, started, sessions, session_groups, first_of, o)
    return out


def _models(
    started: list[_Trace], usage_rows: list[tuple[Any, ...]], first_of: Callable[[int], int]
) -> list[tuple[Any, ...]]:
    """Usage by model of the started traces kept, per (group, model, start bucket)."""
    by_trace: dict[str, list[tuple[str, tuple[int, int, int, int, int]]]] = defaultdict(list)
    for trace_id, model, usage in usage_rows:
        by_trace[trace_id].append((model, tuple(usage)))
    cells: dict[tuple[str | None, str, int], list[int]] = {}
    for t in started:
        for model, usage in by_trace.get(t.trace_id, ()):
            for g in t.groups:
                cell = cells.setdefault((g, model, first_of(t.start_ns)), [0, 0, 0, 0, 0])
                cell[0] += usage[0] > 0
                for i in range(1, 5):
                    cell[i] += usage[i]
    return [
        (g, model, first, pico if cost_traces else None, i, o_, total)
        for (g, model, first), (cost_traces, pico, i, o_, total) in cells.items()
    ]


def _scores(
    rows_of: Rows,
    p: dict[str, Any],
    kinds: set[str],
    started: list[_Trace],
    sessions: list[tuple[Any, ...]],
    session_groups: dict[str, tuple[str | None, ...]],
    first_of: Callable[[int], int],
    o: int,
) -> list[tuple[Any, ...]]:
    """Score sums of the started traces and sessions kept, per (name, group, bucket)."""
    targets: dict[str, dict[str, tuple[int, tuple[str | None, ...]]]] = {
        "trace": {t.trace_id: (first_of(t.start_ns), t.groups) for t in started},
        "session": {
            s: (first_of(start), session_groups[s]) for s, start, *_ in sessions if start + 999 >= o
        },
    }
    found: list[tuple[Any, ...]] = []
    for kind, of_kind in targets.items():
        if kind not in kinds or not of_kind:
            continue
        params = {**p, "score_kind": kind, "score_targets": list(of_kind)}
        summaries = latest_rollups(
            "project_id = %(project)s AND target_kind = %(score_kind)s"
            " AND target_id IN %(score_targets)s"
        )
        for target, name, value_sum, value_count in rows_of(
            "SELECT target_id, name, tupleElement(row, 3), tupleElement(row, 2)"
            f" FROM ({summaries}) WHERE tupleElement(row, 2) > 0",
            params,
        ):
            first, groups = of_kind[target]
            found += [(name, g, first, value_sum, value_count) for g in groups]
    return found
