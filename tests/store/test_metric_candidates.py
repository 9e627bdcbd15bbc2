"""The filtered dashboard on ClickHouse when the traces a filter may match are few
(``metric_candidates``): merged once, the figures added up in Python. These hold its
figures to those the SQL statements add up (the path for many candidates, forced by
``FEW_TRACES = 0``) for every filter and grouping, with sessions holding traces the
filter does not keep, usage by model and scores; and count what it merges."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.store import test_contract as contract
from tests.store.clickhouse_statements import own_store, recorded_sql
from tests.store.test_metrics_contract import fill, model_span, query, refreshed, span
from threadline.server.model import METRIC_NAMES, MetricsQuery
from threadline.server.store.clickhouse import ClickHouseStore, metric_candidates, trace_labels

pytestmark = pytest.mark.clickhouse


def fill_more(store: ClickHouseStore) -> int:
    """``test_metrics_contract.fill``'s project, with a trace of another user in session
    "a" (which a filter by "u1" keeps for its other traces), and traces with usage by
    model, one of them in session "b" with a score."""
    project = fill(store)
    store.write_spans(
        project,
        [
            span(6, 100, 5, session="a", user="u2", cost=0.25, tags=["z"], version="3"),
            model_span(7, 0, 20, model=None, session="b", tags=["x"]),
            model_span(7, 1, 21, model="gpt", cost=1.0, tokens=(10, 5)),
            model_span(7, 2, 22, model="claude", cost=0.25, tokens=(3, 1)),
            model_span(8, 0, 80, model=None, session="m", tags=["y"]),
            model_span(8, 1, 81, model="claude", tokens=(4, 4)),  # cost unknown
        ],
    )
    store.write_scores(project, [contract.score("s9", "quality", 0.25, trace=7)])
    return project


FILTERS = [
    {"user_id": "u1"},
    {"user_id": "u2"},
    {"user_id": "mu"},
    {"tag": "x"},
    {"tag": "y"},
    {"metadata": {"app_version": "1"}},
    {"user_id": "u1", "tag": "x"},
    {"user_id": "u2", "tag": "y"},
    {"tag": "x", "metadata": {"app_version": "1"}},
    {"user_id": "nobody"},
]
GROUPINGS = [{}, {"group_by": "tag"}, {"group_by": "metadata", "group_key": "app_version"}]


def answers(store: ClickHouseStore, project: int) -> dict[str, dict]:
    out = {}
    for filters in FILTERS:
        for grouping in GROUPINGS:
            q: MetricsQuery = query(**filters, **grouping)
            got = store.metrics(project, q, list(METRIC_NAMES)).model_dump()
            out[repr((filters, grouping))] = got
    return out


def test_few_candidates_add_up_to_what_the_statements_do(tmp_path: Path, monkeypatch):
    with own_store(tmp_path) as store:
        project = fill_more(refreshed(store))
        refreshed(store)
        few = answers(store, project)
        # Too many rows to add up in Python: the statements add them up.
        monkeypatch.setattr(metric_candidates, "MAX_ROWS", 1)
        assert answers(store, project) == few
        monkeypatch.setattr(trace_labels, "FEW_TRACES", 0)
        many = answers(store, project)
    assert few.keys() == many.keys()
    for key in few:
        assert few[key] == many[key], key
    # The data reaches every part of the read: a session with a trace the filter does
    # not keep, usage by model, scores on traces and sessions.
    u1 = few[repr(({"user_id": "u1"}, {}))]
    assert {s["metric"] for s in u1["series"] if any(s["values"])} >= {
        "sessions",
        "traces",
        "cost_usd",
    }
    mu = few[repr(({"user_id": "mu"}, {}))]
    assert {s.get("model") for s in mu["series"] if s["metric"] == "cost_usd_by_model"} >= {
        "gpt",
        "claude",
    }
    assert any(s["metric"].startswith("score") and any(s["values"]) for s in u1["series"])


def test_a_filtered_dashboard_merges_its_traces_once(tmp_path: Path):
    with own_store(tmp_path) as store:
        project = fill(store)
        refreshed(store)
        statements = recorded_sql(store)
        store.metrics(project, query(user_id="u1"), list(METRIC_NAMES))
    # The candidates' parts are merged in one statement (their sessions hold no other
    # trace), not once per figure.
    assert sum("trace_parts_by_id" in sql for sql in statements) == 1, statements
    # The others: the candidates found, their usage by model, the score kinds, their
    # sessions' other traces (none), the trace and the session scores.
    assert len(statements) == 7, statements
