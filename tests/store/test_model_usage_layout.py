"""Usage by model on ClickHouse in 64-row granules (``model_usage.ensure``): a store
whose rows are still in the first table, ``trace_model_parts`` (8,192-row granules),
has them moved when it opens, and every write after lands in the new table alone; a
store whose view wrote a row for every span has the empty ones deleted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.store.clickhouse_statements import own_store
from tests.store.test_metrics_contract import model_span
from threadline.server.store.clickhouse import model_usage

pytestmark = pytest.mark.clickhouse


def usage(store: Any) -> list[tuple[Any, ...]]:
    rows = store._rows(model_usage.latest_where("1"), {"project": store.list_projects()[0].id})
    return sorted((trace, model, tuple(amounts)) for trace, model, amounts in rows)


def count(store: Any, table: str) -> int:
    return store._rows(f"SELECT count() FROM {table}")[0][0]


def names(store: Any) -> set[str]:
    return {
        name
        for (name,) in store._rows(
            "SELECT name FROM system.tables WHERE database = currentDatabase()"
        )
    }


@pytest.mark.parametrize("stopped_after_the_new_view", [False, True])
def test_a_store_with_the_first_table_has_its_rows_moved(
    tmp_path: Path, stopped_after_the_new_view: bool
):
    with own_store(tmp_path) as store:
        project = store.create_project("usage").id
        store.write_spans(
            project,
            [
                model_span(1, 0, 0, model=None),
                model_span(1, 1, 1, model="gpt", cost=1.0, tokens=(10, 5)),
                model_span(2, 1, 3, model="claude", cost=0.25, tokens=(3, 1)),
            ],
        )
        before = usage(store)
        # The store as the code before the move left it: its rows in the first table,
        # written by its view; the new table and view not yet made.
        first = model_usage._TABLE.replace(model_usage.TABLE, "trace_model_parts")
        store._ch.command(first.split("SETTINGS")[0])
        store._ch.command("INSERT INTO trace_model_parts SELECT * FROM trace_model_parts_by_id")
        store._ch.command(
            model_usage._VIEW.replace(
                model_usage._VIEW_NAME, "trace_model_parts_from_intake"
            ).replace(f"TO {model_usage.TABLE}", "TO trace_model_parts")
        )
        store._ch.command(f"DROP VIEW {model_usage._VIEW_NAME}")
        store._ch.command(f"DROP TABLE {model_usage.TABLE}")
        if stopped_after_the_new_view:
            # A server stopped after making the new table and view, before the copy.
            store._ch.command(model_usage._TABLE)
            store._ch.command(model_usage._VIEW)
        url = store.url
    with own_store(tmp_path) as store:
        assert store.url == url
        assert usage(store) == before
        assert "trace_model_parts_from_intake" not in names(store)
        assert count(store, "trace_model_parts") == 0
        # A write after the move lands once, in the new table.
        store.write_spans(project, [model_span(3, 1, 5, model="gpt", cost=0.5, tokens=(1, 1))])
        assert count(store, "trace_model_parts") == 0
        after = usage(store)
        assert after == sorted([*before, (f"{3:032x}", "gpt", (1, 500_000_000_000, 1, 1, 2))])
    # Opening it again moves nothing more.
    with own_store(tmp_path) as store:
        assert usage(store) == after


def test_a_backfill_stopped_after_the_view_is_made_runs_at_the_next_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    with own_store(tmp_path) as store:
        project = store.create_project("usage").id
        store.write_spans(
            project,
            [
                model_span(1, 1, 1, model="gpt", cost=1.0, tokens=(10, 5)),
                model_span(2, 1, 3, model="claude", cost=0.25, tokens=(3, 1)),
            ],
        )
        before = usage(store)
        # The store as the code before usage by model left it: spans, neither table.
        store._ch.command(f"DROP VIEW {model_usage._VIEW_NAME}")
        store._ch.command(f"DROP TABLE {model_usage.TABLE}")
    # A server stopped between making the view and the backfill.
    monkeypatch.setattr(model_usage, "_BACKFILL", "SELECT throwIf(1, 'stopped')")
    with pytest.raises(Exception, match="stopped"), own_store(tmp_path):
        pass
    monkeypatch.undo()
    with own_store(tmp_path) as store:
        assert model_usage._VIEW_NAME in names(store)
        assert usage(store) == before
        assert model_usage._BACKFILL_DUE not in names(store)
        store.write_spans(project, [model_span(3, 1, 5, model="gpt", cost=0.5, tokens=(1, 1))])
        after = usage(store)
        assert after == sorted([*before, (f"{3:032x}", "gpt", (1, 500_000_000_000, 1, 1, 2))])


# The view before (until 2026-12): a row for every span's trace and model, an empty one
# for every span that used nothing (roots, tools: half the rows).
EVERY_SPAN_VIEW = f"""
CREATE MATERIALIZED VIEW trace_model_parts_by_id_from_intake TO {model_usage.TABLE} AS
    SELECT project_id, trace_id, ifNull(model, '') AS model, min(start_ns) AS start_ns,
        max(end_ns) AS end_ns, groupUniqArrayIfState((span_id, toUnixTimestamp64Nano(now64(9)),
            coalesce(input_tokens, 0), coalesce(output_tokens, 0), coalesce(total_tokens, 0),
            cost_usd), {model_usage._HAS_AMOUNTS}) AS amounts
    FROM span_intake GROUP BY project_id, trace_id, model
"""


def empty_rows(store: Any) -> int:
    return store._rows(
        f"SELECT count() FROM {model_usage.TABLE} WHERE empty(finalizeAggregation(amounts))"
    )[0][0]


@pytest.mark.parametrize("stopped_after_the_new_view", [False, True])
def test_a_store_with_a_row_for_every_span_has_its_empty_rows_deleted(
    tmp_path: Path, stopped_after_the_new_view: bool
):
    with own_store(tmp_path) as store:
        project = store.create_project("usage").id
        # The store as the view before left it: written through that view alone.
        store._ch.command(f"DROP VIEW {model_usage._VIEW_NAME}")
        store._ch.command(EVERY_SPAN_VIEW)
        store.write_spans(
            project,
            [
                model_span(1, 0, 0, model=None),
                model_span(1, 1, 1, model="gpt", cost=1.0, tokens=(10, 5)),
                model_span(1, 2, 2, model="gpt"),  # a tool span naming a model
                model_span(2, 0, 3, model=None),
                model_span(2, 1, 3, model="claude", cost=0.25, tokens=(3, 1)),
            ],
        )
        assert empty_rows(store) == 2  # the roots' (the tool span's merged with gpt's)
        before = usage(store)
        if stopped_after_the_new_view:
            # A server stopped after making the new view, before deleting.
            store._ch.command(model_usage._VIEW)
    with own_store(tmp_path) as store:
        kept = [u for u in before if u[1] != ""]
        assert len(kept) == 2
        assert empty_rows(store) == 0
        assert usage(store) == kept
        assert "trace_model_parts_by_id_from_intake" not in names(store)
        # A write after lands once, and a span that used nothing makes no row.
        store.write_spans(
            project,
            [
                model_span(3, 0, 5, model=None),
                model_span(3, 1, 5, model="gpt", cost=0.5, tokens=(1, 1)),
            ],
        )
        assert empty_rows(store) == 0
        after = usage(store)
        assert after == sorted([*kept, (f"{3:032x}", "gpt", (1, 500_000_000_000, 1, 1, 2))])
    # Opening it again deletes nothing more.
    with own_store(tmp_path) as store:
        assert usage(store) == after
