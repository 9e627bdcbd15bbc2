"""The dashboard's session figures on every backend, exact: sessions crossing buckets,
the top lists past their length with ties, and distributions, from one known history
(each session's turns sent in separate exports, the later ones first, one sent twice)."""

from __future__ import annotations

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
