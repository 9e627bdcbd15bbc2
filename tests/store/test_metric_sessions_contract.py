"""The dashboard's session figures on every backend, exact: sessions crossing buckets,
the top lists past their length with ties, and distributions, from one known history
(each session's turns sent in separate exports, the later ones first, one sent twice)."""

from __future__ import annotations

import math
from datetime import timedelta

from tests.store import test_metrics_contract as metrics_contract
from threadline.server.model import METRIC_NAMES, TOP_ROWS, MetricsQuery, ns_to_datetime
from threadline.server.store import Store

backend = metrics_contract.backend
store = metrics_contract.store
span = metrics_contract.span
H0, HOUR, MINUTE = metrics_contract.H0, metrics_contract.HOUR, metrics_contract.MINUTE


def test_session_figures_across_buckets_and_top_lists_with_ties(store: Store):
    project = store.create_project("p").id
    # Twelve sessions of two turns each, 2 hours apart from the first at H0 + 30 min:
    # session k's first turn at 30 + 120 k minutes, its second 60 minutes later (so every
    # session spans two hour buckets); cost 1.0 for k < 6 (a tie), else k; sessions
    # k = 3, 7, 8 have an error on their second turn.
    exports = []
    for k in range(12):
        first = 30 + 120 * k
        cost = 1.0 if k < 6 else float(k)
        exports.append([span(2 * k + 1, first, 10, session=f"s{k:02d}", cost=cost / 2)])
        exports.append(
            [
                span(
                    2 * k + 2,
                    first + 60,
                    5,
                    session=f"s{k:02d}",
                    cost=cost / 2,
                    error=k in (3, 7, 8),
                )
            ]
        )
    for batch in reversed(exports):  # the later turns first
        store.write_spans(project, batch)
    store.write_spans(project, exports[5])  # a retried export
    start = ns_to_datetime(H0)
    got = store.metrics(
        project,
        MetricsQuery(bucket="hour", start=start, end=start + timedelta(hours=24)),
        METRIC_NAMES,
    )
    series = {s.metric: s.values for s in got.series if s.model is None}
    sessions = [0.0] * 24
    errors = [0.0] * 24
    for k in range(12):
        for hour in (2 * k, 2 * k + 1):
            sessions[hour] += 1
            errors[hour] += k in (3, 7, 8)
    assert series["sessions"] == sessions
    assert series["error_sessions"] == errors
    assert [(s.session_id, s.cost_usd) for s in got.top_sessions_by_cost] == [
        (f"s{k:02d}", float(k)) for k in range(11, 5, -1)
    ] + [(f"s{k:02d}", 1.0) for k in range(5, 5 - (TOP_ROWS - 6), -1)]
    assert [(s.session_id, s.error_count) for s in got.top_sessions_by_errors] == [
        ("s08", 1),
        ("s07", 1),
        ("s03", 1),
    ]
    turns = got.distributions["turns_per_session"]
    assert (turns.count, turns.p50, turns.max) == (12, 2, 2)
    duration = got.distributions["session_duration_ms"]
    assert (duration.p50, duration.max) == (65 * 60_000, 65 * 60_000)
    cost = got.distributions["session_cost_usd"]
    assert (cost.count, cost.p50, cost.p95, cost.max) == (12, 1.0, 11.0, 11.0)


def test_distributions_of_many_turns_and_costs_some_unknown(store: Store):
    """Nearest-rank percentiles over sessions of 1 to 7 turns, a third of them of no
    known cost (counted in the turns, left out of the cost) and one of cost 0, as a
    sorted list of the window's sessions has them; sessions outside the window, of more
    turns and cost than any inside, count in neither."""
    project = store.create_project("p").id
    spans, turns_of, costs = [], [], []
    trace = 0
    for k in range(21):
        turns = (k * 5) % 7 + 1
        cost = None if k % 3 == 0 else (k * 7) % 11  # a trace's; 0 for k = 11
        turns_of.append(turns)
        if cost is not None:
            costs.append(float(cost * turns))
        for t in range(turns):
            trace += 1
            spans.append(span(trace, 10 * k + t, 1, session=f"s{k:02d}", cost=cost))
    for k in range(2):  # two days later
        for t in range(9):
            trace += 1
            spans.append(span(trace, 48 * 60 + 10 * k + t, 1, session=f"late{k}", cost=100.0))
    store.write_spans(project, list(reversed(spans)))
    start = ns_to_datetime(H0)
    got = metrics_contract.refreshed(store).metrics(
        project,
        MetricsQuery(bucket="hour", start=start, end=start + timedelta(hours=24)),
        METRIC_NAMES,
    )

    def nearest_rank(values: list[float]) -> dict:
        ordered = sorted(values)
        n = len(ordered)
        return {
            "count": n,
            "p50": float(ordered[max(1, math.ceil(0.5 * n)) - 1]),
            "p95": float(ordered[max(1, math.ceil(0.95 * n)) - 1]),
            "max": float(ordered[-1]),
        }

    assert got.distributions["turns_per_session"].model_dump() == nearest_rank(turns_of)
    assert got.distributions["session_cost_usd"].model_dump() == nearest_rank(costs)
    assert nearest_rank(turns_of) == {"count": 21, "p50": 4.0, "p95": 7.0, "max": 7.0}
    assert nearest_rank(costs)["count"] == 14 and min(costs) == 0.0
