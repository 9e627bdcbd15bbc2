"""The ClickHouse dashboard grouped by a tag or a metadata key, or narrowed by a tag and
metadata, read from the slices' labelled rows (``metric_labels_read``). These hold its
figures to those rolled up from the trace parts (``metrics.read``, the path before a
store's first refresh pass) for every label filter and grouping, on data with sessions
whose traces carry different labels, usage by model and scores; after a duplicated
delivery, a late label, a delete and retention; and check it merges no trace part."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tests.store.clickhouse_statements import own_store, recorded_sql
from tests.store.test_metric_candidates import fill_more
from tests.store.test_metrics_contract import H0, HOUR, MINUTE, query, refreshed, span
from threadline.server.model import METRIC_NAMES, MetricsQuery, ns_to_datetime
from threadline.server.retention import RetentionService
from threadline.server.store.clickhouse import ClickHouseStore, metric_labels_read

pytestmark = pytest.mark.clickhouse

FILTERS = [
    {},
    {"tag": "x"},
    {"tag": "y"},
    {"tag": "nothing"},
    {"metadata": {"app_version": "1"}},
    {"metadata": {"app_version": "2"}},
    {"tag": "x", "metadata": {"app_version": "1"}},
]
GROUPINGS = [{}, {"group_by": "tag"}, {"group_by": "metadata", "group_key": "app_version"}]


def queries() -> list[MetricsQuery]:
    found = []
    for filters in FILTERS:
        for grouping in GROUPINGS:
            if filters or grouping:
                found.append(query(**filters, **grouping))
    # A day's bucket, and a range starting after some sessions began (they run into it).
    found.append(query(group_by="tag").model_copy(update={"bucket": "day"}))
    found.append(
        MetricsQuery(
            start=ns_to_datetime(H0 + HOUR),
            end=ns_to_datetime(H0 + 3 * HOUR),
            bucket="hour",
            group_by="tag",
        )
    )
    found.append(
        MetricsQuery(
            start=ns_to_datetime(H0 + HOUR),
            end=ns_to_datetime(H0 + 3 * HOUR),
            bucket="hour",
            tag="x",
        )
    )
    return found


def answers(store: ClickHouseStore, project: int, monkeypatch, rolled_up: bool) -> dict:
    """Every query's figures, read from the slices or (``rolled_up``) from the parts."""
    with monkeypatch.context() as m:
        if rolled_up:
            m.setattr(metric_labels_read, "handles", lambda q: False)
        out = {}
        for q in queries():
            got = store.metrics(project, q, list(METRIC_NAMES)).model_dump()
            assert (got.pop("figures_up_to") is None) == rolled_up
            out[repr(q)] = got
    return out


def assert_same(store: ClickHouseStore, project: int, monkeypatch) -> dict:
    refreshed(store)
    slices = answers(store, project, monkeypatch, rolled_up=False)
    parts = answers(store, project, monkeypatch, rolled_up=True)
    assert slices.keys() == parts.keys()
    for key in slices:
        assert slices[key] == parts[key], key
    return slices


def test_labelled_slices_give_what_the_parts_roll_up_to(tmp_path: Path, monkeypatch):
    with own_store(tmp_path) as store:
        project = fill_more(refreshed(store))
        found = assert_same(store, project, monkeypatch)
    # The data reaches every part of the read: groups of several values, usage by
    # model, score averages, sessions in the top lists.
    by_tag = found[repr(query(group_by="tag"))]
    groups = {s["group"] for s in by_tag["series"] if s["metric"] == "sessions"}
    assert groups == {"x", "y", "z", None}
    assert {s.get("model") for s in by_tag["series"] if s["metric"] == "cost_usd_by_model"} >= {
        "gpt",
        "claude",
    }
    assert any(s["metric"].startswith("score") and any(s["values"]) for s in by_tag["series"])
    x = found[repr(query(tag="x"))]
    assert x["top_sessions_by_cost"] and x["distributions"]["turns_per_session"]["count"]


def test_labelled_slices_follow_duplicates_late_labels_deletes_and_retention(
    tmp_path: Path, monkeypatch
):
    with own_store(tmp_path) as store:
        project = fill_more(refreshed(store))
        refreshed(store)
        # The same spans delivered again count once; a span delivered late gives a
        # trace of session "a" a new tag (the session joins its group) and a new
        # trace a metadata value.
        again = [span(3, 50, 15, session="b", user="u2", tokens=(1, 1), tags=["x", "y"])]
        store.write_spans(project, again)
        store.write_spans(project, again)
        late = dataclasses.replace(span(2, 40, 3, tags=["late"]), span_id=f"{22:016x}")
        store.write_spans(project, [late])
        store.write_spans(project, [span(11, 150, 4, session="n", user="u9", version="9")])
        found = assert_same(store, project, monkeypatch)
        late = found[repr(query(group_by="tag"))]
        assert "late" in {s["group"] for s in late["series"]}
        store.delete_traces(project, [f"{2:032x}", f"{11:032x}"])
        found = assert_same(store, project, monkeypatch)
        assert "late" not in {s["group"] for s in found[repr(query(group_by="tag"))]["series"]}
        # One day of retention, a day and 16 minutes after H0: the traces ended before
        # go, and their slices by their last hour.
        RetentionService(store, 1, clock_ns=lambda: H0 + 24 * HOUR + 16 * MINUTE).run_pass()
        assert_same(store, project, monkeypatch)


def test_a_grouped_dashboard_merges_no_trace_part(tmp_path: Path):
    with own_store(tmp_path) as store:
        project = fill_more(refreshed(store))
        refreshed(store)
        for q in (query(group_by="tag"), query(tag="x", group_by="metadata", group_key="v")):
            statements = recorded_sql(store)
            store.metrics(project, q, list(METRIC_NAMES))
            assert statements and not any("trace_parts" in sql for sql in statements), statements
