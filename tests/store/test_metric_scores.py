"""The score sums per hour SQLite keeps on write (migration 0028, ``metric_scores``),
after a random history of spans arriving late and early, scores written before and
after their targets, replaced, renamed and deleted, traces and sessions deleted: each
rollup's hour is its target's, each hour's sums are those its rollups add up to from
scratch (to the last bit, whatever the history), and the dashboard reads them, as the
rollups joined to their targets would give them."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest

from tests.store.query_plans import statement_plans
from tests.store.test_contract import score
from tests.store.test_metric_aggregates import HOUR, T0, random_span
from threadline.server.model import METRIC_NAMES, MetricsQuery, ns_to_datetime
from threadline.server.store import metrics as rules
from threadline.server.store.sqlite import SQLiteStore, metric_scores
from threadline.server.store.sqlite import metrics as sqlite_metrics

WINDOW = MetricsQuery(
    start=ns_to_datetime(T0 - 3 * HOUR), end=ns_to_datetime(T0 + 100 * HOUR), bucket="hour"
)


def scored_history(store: SQLiteStore, project: int, seed: int) -> None:
    rng = random.Random(seed)
    for step in range(60):
        store.write_spans(project, [random_span(rng, rng.randrange(30), rng.randrange(6))])
        for _ in range(rng.randrange(3)):
            target = (
                {"trace": rng.randrange(32)}
                if rng.random() < 0.6
                else {"session": rng.choice("abcde")}
            )
            value = rng.choice([rng.random() * 10, 0.1, 1 / 3, True, False, "label"])
            # Ids from a small set: a write often replaces a score, or renames it.
            store.write_scores(
                project,
                [score(f"s{rng.randrange(40)}", rng.choice(["q", "r"]), value, at=step, **target)],
            )
        if rng.random() < 0.15:
            store.delete_score(project, f"s{rng.randrange(40)}")
        if rng.random() < 0.08:
            store.delete_traces(project, [f"{rng.randrange(30):032x}"])
        if rng.random() < 0.04:
            store.delete_sessions(project, [rng.choice("abcd")])


def kept(conn: sqlite3.Connection) -> list[tuple]:
    return conn.execute(
        "SELECT project_id, hour, name, value_count, value_sum FROM metric_scores"
        " WHERE value_count > 0 ORDER BY project_id, hour, name"
    ).fetchall()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_sums_kept_are_those_of_the_rollups_from_scratch(tmp_path: Path, seed: int):
    store = SQLiteStore(tmp_path / "t.db")
    project = store.create_project("p").id
    try:
        scored_history(store, project, seed)
        with store._read() as conn:
            rollups = conn.execute(
                "SELECT target_kind, target_id, target_hour FROM score_rollups"
            ).fetchall()
            assert rollups, "the history leaves scores"
            for kind in ("trace", "session"):
                ids = [i for k, i, _ in rollups if k == kind]
                hours = metric_scores.target_hours(conn, project, kind, ids)
                assert {(i, h) for k, i, h in rollups if k == kind} == {
                    (i, hours.get(i)) for i in ids
                }
            summed = conn.execute(
                "SELECT project_id, target_hour, name, SUM(value_count), SUM(value_sum)"
                " FROM score_rollups INDEXED BY score_rollups_by_hour"
                " WHERE value_count > 0 AND target_hour IS NOT NULL"
                " GROUP BY project_id, target_hour, name ORDER BY project_id, target_hour, name"
            ).fetchall()
            assert summed and kept(conn) == summed
            # The dashboard's unfiltered read, against the rollups joined to their targets.
            span = rules.bucket_range(WINDOW)
            read = metric_scores.read(conn, project, span)
            joined = sqlite_metrics._scores(conn, sqlite_metrics._Sql(conn, project, WINDOW, span))
        names = list(METRIC_NAMES)
        from_sums = rules.build(WINDOW, span, rules.MetricsRows(scores=read), names)
        from_join = rules.build(WINDOW, span, rules.MetricsRows(scores=joined), names)
        series = {s.metric: s.values for s in from_join.series if s.metric.startswith("score:")}
        assert series
        assert {s.metric: s.values for s in from_sums.series if s.metric.startswith("score:")} == {
            m: [None if v is None else pytest.approx(v) for v in vs] for m, vs in series.items()
        }
    finally:
        store.close()


def test_the_unfiltered_dashboard_reads_no_score_rollup(tmp_path: Path):
    store = SQLiteStore(tmp_path / "t.db")
    project = store.create_project("p").id
    try:
        scored_history(store, project, 4)
        plans = statement_plans(store, lambda: store.metrics(project, WINDOW, list(METRIC_NAMES)))
        assert not [sql for sql in plans if "score_rollups" in sql], plans
        (read,) = [plan for sql, plan in plans.items() if "FROM metric_scores" in sql]
        assert read == [
            "SEARCH metric_scores USING PRIMARY KEY (project_id=? AND hour>? AND hour<?)"
        ]
    finally:
        store.close()


def test_0028_fills_the_sums_of_a_store_made_before_it(tmp_path: Path):
    path = tmp_path / "old.db"
    store = SQLiteStore(path)
    project = store.create_project("p").id
    scored_history(store, project, 5)
    with store._read() as conn:
        before = kept(conn)
        hours = conn.execute(
            "SELECT target_kind, target_id, name, target_hour FROM score_rollups ORDER BY 1, 2, 3"
        ).fetchall()
    assert before
    got = store.metrics(project, WINDOW, list(METRIC_NAMES))
    store.close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(
        "BEGIN; DROP TABLE metric_scores; DROP INDEX score_rollups_by_hour;"
        " ALTER TABLE score_rollups DROP COLUMN target_hour;"
        " DELETE FROM schema_migrations WHERE version = 28; PRAGMA user_version = 27; COMMIT;"
    )
    conn.close()
    store = SQLiteStore(path)
    try:
        with store._read() as conn:
            assert kept(conn) == before
            assert (
                conn.execute(
                    "SELECT target_kind, target_id, name, target_hour FROM score_rollups"
                    " ORDER BY 1, 2, 3"
                ).fetchall()
                == hours
            )
        assert store.metrics(project, WINDOW, list(METRIC_NAMES)) == got
    finally:
        store.close()
