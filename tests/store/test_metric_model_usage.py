"""The filtered or grouped SQLite dashboard adds up each trace's usage by model (its
packed ``model_usage`` column) once a trace, in Python, rather than with SQL's
``json_each`` and a ``json_extract`` per figure of each model; the figures are exact."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.store.query_plans import statement_plans
from tests.store.test_metric_trace_scan import ALL, FEW, NARROWED, fill
from threadline.server.model import METRIC_NAMES, MetricsQuery
from threadline.server.store.sqlite.model_usage import by_group_and_bucket, pack
from threadline.server.store.sqlite.store import SQLiteStore


def test_usage_is_added_up_per_group_model_and_bucket():
    rows = [
        ("a", 0, pack({"gpt": [2, 3_000_000, 10, 5, 15], "": [0, 0, 1, 0, 1]})),
        ("a", 0, pack({"gpt": [1, 1, 1, 1, 2]})),
        ("b", 0, pack({"gpt": [0, 0, 4, 4, 8]})),
        ("a", 1, pack({"claude": [1, 10**15, 0, 0, 0]})),
    ]
    found = sorted(by_group_and_bucket(rows), key=lambda r: (r[0], r[1], r[2]))
    assert found == [
        # (group, model, bucket, picodollars (None where no span's cost is known), tokens)
        ("a", "", 0, None, 1, 0, 1),
        ("a", "claude", 1, 10**15, 0, 0, 0),
        ("a", "gpt", 0, 3_000_001, 11, 6, 17),
        ("b", "gpt", 0, None, 4, 4, 8),
    ]


@pytest.mark.parametrize("narrowed", NARROWED, ids=["tag", "metadata", "by tag", "by metadata"])
def test_no_statement_unfolds_the_usage_column(tmp_path: Path, narrowed: dict):
    store = SQLiteStore(tmp_path / "t.db")
    project = store.create_project("p").id
    try:
        fill(store, project)
        for window in (ALL, FEW):
            query = MetricsQuery(**window, **narrowed)
            got: list = []
            plans = statement_plans(
                store,
                lambda q=query, out=got: out.append(store.metrics(project, q, list(METRIC_NAMES))),
            )
            reads_usage = [sql for sql in plans if "model_usage" in sql]
            assert reads_usage, plans
            assert not [sql for sql in reads_usage if "json_each(traces.model_usage)" in sql]
            by_model = {
                (s.metric, s.group, s.model): s.values
                for s in got[0].series
                if s.metric == "input_tokens_by_model"
            }
            tokens = {s.group: s.values for s in got[0].series if s.metric == "input_tokens"}
            # Every span has the one model: its tokens by model are the tokens.
            assert {g: v for (_, g, _), v in by_model.items()} == tokens
    finally:
        store.close()
