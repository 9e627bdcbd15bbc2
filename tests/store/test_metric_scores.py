"""The score sums per hour SQLite keeps on write (migration 0028, ``metric_scores``, in
fixed point since 0032), after a random history of spans arriving late and early, scores
written before and after their targets, replaced, renamed and deleted, traces and
sessions deleted: each rollup's hour is its target's, each hour's sums are those its
rollups add up to from scratch (to the last unit, whatever the history), and the
dashboard reads them, as the rollups joined to their targets would give them."""

from __future__ import annotations

import random
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from tests.store.query_plans import statement_plans
from tests.store.test_contract import score
from tests.store.test_metric_aggregates import HOUR, T0, random_span
from threadline.server.model import METRIC_NAMES, MetricsQuery, SpanRecord, ns_to_datetime
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
                check_types=False,  # names of two types, as before the rule
            )
        if rng.random() < 0.15:
            store.delete_score(project, f"s{rng.randrange(40)}")
        if rng.random() < 0.08:
            store.delete_traces(project, [f"{rng.randrange(30):032x}"])
        if rng.random() < 0.04:
            store.delete_sessions(project, [rng.choice("abcd")])


def kept(conn: sqlite3.Connection) -> list[tuple]:
    return conn.execute(
        "SELECT project_id, hour, name, value_count, value_whole, value_nanos FROM metric_scores"
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
                "SELECT project_id, target_hour, name, SUM(value_count),"
                f" SUM({metric_scores.UNITS_SQL[0]}), SUM({metric_scores.UNITS_SQL[1]})"
                " FROM score_rollups WHERE value_count > 0 AND target_hour IS NOT NULL"
                " GROUP BY project_id, target_hour, name ORDER BY project_id, target_hour, name"
            ).fetchall()
            assert summed and kept(conn) == summed
            # The dashboard's unfiltered read, against the rollups joined to their targets.
            span = rules.bucket_range(WINDOW)
            read = metric_scores.read(conn, project, span)
            sql = sqlite_metrics._Sql(conn, project, WINDOW, span)
            joined = sqlite_metrics._read_rollups(conn, sql).scores
        names = list(METRIC_NAMES)
        from_sums = rules.build(WINDOW, span, rules.MetricsRows(scores=read), names)
        from_join = rules.build(WINDOW, span, rules.MetricsRows(scores=joined), names)
        series = {s.metric: s.values for s in from_join.series if s.metric.startswith("score:")}
        assert series
        # Both add the same fixed-point sums, hour by hour: the same to the last digit.
        assert {
            s.metric: s.values for s in from_sums.series if s.metric.startswith("score:")
        } == series
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


@pytest.mark.parametrize(
    "value",
    [
        0.0,
        0.1,
        1 / 3,
        2 / 3,
        -0.1,
        -1 / 3,
        -2.5,
        2.5,
        0.49999999999999994,
        4.0000000005,
        -4.0000000005,
        1e-10,
        -1e-10,
        123456789.123456789,
        1e15 - 0.5,
        -1e15,
        2.0**52 + 0.5,
    ],
)
def test_a_sums_units_are_the_same_in_python_and_in_sql(value: float):
    """``units`` (every write) and ``UNITS_SQL`` (the migration) give the same integers:
    a sum the migration filled is taken back exactly by a later write."""
    whole, nanos = metric_scores.units(value)
    conn = sqlite3.connect(":memory:")
    got = conn.execute(
        f"SELECT {metric_scores.UNITS_SQL[0]}, {metric_scores.UNITS_SQL[1]}"
        " FROM (SELECT ? AS value_sum)",
        (value,),
    ).fetchone()
    assert got == (whole, nanos)
    # Within half a billionth (and the float's own rounding).
    assert abs(whole + nanos / 1e9 - value) <= 5e-10 + abs(value) * 2**-52


def test_0028_and_0032_fill_the_sums_of_a_store_made_before_them(tmp_path: Path):
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
        "BEGIN; DROP TABLE metric_scores; DROP INDEX score_rollups_waiting;"
        " ALTER TABLE score_rollups DROP COLUMN target_hour;"
        " DELETE FROM schema_migrations WHERE version IN (28, 32, 34); PRAGMA user_version = 27;"
        " COMMIT;"
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


def test_new_traces_are_looked_up_among_the_rollups_only_while_one_waits(tmp_path: Path):
    """A trace new to the store can only have rollups waiting for it: while none waits,
    the writer does not look its id up; once one waits, it does, and the score counts
    from the trace's start."""

    def alone(trace: int) -> SpanRecord:  # a trace of no session
        return replace(random_span(random.Random(trace), trace, 0), session_id=None)

    store = SQLiteStore(tmp_path / "t.db")
    try:
        project = store.create_project("p").id
        store.create_project("other")
        store.write_spans(project, [alone(1)])
        store.write_scores(project, [score("on-1", "q", 0.5, trace=1)])  # its target stored
        looked_up: list[str] = []

        def traced(sql: str) -> None:
            if "FROM score_rollups WHERE project_id = " in sql and "target_id IN" in sql:
                looked_up.append(sql)

        store._writer.set_trace_callback(traced)
        store.write_spans(project, [alone(2)])
        assert looked_up == []
        store.write_scores(project, [score("early", "q", 0.25, trace=3)])  # waits
        store.write_spans(project, [alone(3)])
        assert looked_up
        store._writer.set_trace_callback(None)
        with store._read() as conn:
            trace_id = f"{3:032x}"
            (hour,) = conn.execute(
                "SELECT target_hour FROM score_rollups WHERE target_id = ?", (trace_id,)
            ).fetchone()
            assert hour is not None
            assert hour == metric_scores.target_hours(conn, project, "trace", [trace_id])[trace_id]
            assert sum(row[3] for row in kept(conn)) == 2  # both scores count
    finally:
        store.close()
