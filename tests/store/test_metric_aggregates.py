"""The per-bucket aggregates SQLite keeps on write (migration 0010) against the same
figures computed from the rollups, after a random history of late spans, retries,
traces moving between sessions, re-rolls and deletes: they must agree exactly."""

from __future__ import annotations

import pickle
import random
from dataclasses import replace
from pathlib import Path

import pytest

from tests.spans import trace_member
from threadline.server.model import METRIC_NAMES, Metrics, MetricsQuery, SpanRecord, ns_to_datetime
from threadline.server.store import metrics as rules
from threadline.server.store.base import SpanBatch
from threadline.server.store.sqlite import SQLiteStore, metric_aggregates, metric_log
from threadline.server.store.sqlite import metrics as sqlite_metrics

MINUTE = 60 * 10**9
HOUR = 60 * MINUTE
T0 = 1_790_000_000_000_000_000 // HOUR * HOUR


def random_span(rng: random.Random, trace: int, span_no: int) -> SpanRecord:
    return trace_member(
        trace,
        span_no,
        T0 + rng.randrange(-2 * HOUR, 60 * HOUR),
        rng.choice([1, MINUTE, 3 * HOUR, 30 * HOUR]),
        name="s",
        status="error" if rng.random() < 0.2 else "ok",
        model=rng.choice([None, "gpt", "claude"]),
        input_tokens=rng.choice([None, rng.randrange(100)]),
        output_tokens=rng.choice([None, rng.randrange(100)]),
        total_tokens=rng.choice([None, rng.randrange(200)]),
        cost_usd=rng.choice([None, rng.randrange(1, 1000) / 1e4, 0.1, 0.2]),
        # Any span may carry a session or user: a late root moves its trace.
        session_id=rng.choice([None, "a", "b", "c", "d"]),
        user_id=rng.choice([None, "u1", "u2", "u3"]),
        tags=rng.choice([[], ["x"], ["x", "y"]]),
    )


def history(store: SQLiteStore, project: int, seed: int, grouped: bool = False) -> None:
    """A random history of writes and deletes; ``grouped``: its batches prepared apart
    and sent through pickle, as an ingest worker's are, and written 1 to 3 at a time in
    one transaction (the writer's group commit), where a trace's spans may be split
    between the batches of a group."""
    rng = random.Random(seed)
    written: list[SpanRecord] = []
    prepare = store.span_preparer(project)
    for _ in range(40):
        batch = [random_span(rng, rng.randrange(30), rng.randrange(6)) for _ in range(8)]
        if written and rng.random() < 0.3:
            batch += rng.sample(written, min(4, len(written)))  # retries among new spans
        if grouped:
            ways = rng.randrange(1, 4)
            parts = [batch[i::ways] for i in range(ways)]
            store.write_span_batches(
                [
                    SpanBatch(project, part, pickle.loads(pickle.dumps(prepare(project, part))))
                    for part in parts
                ]
            )
        else:
            store.write_spans(project, batch)
        written += batch
        if rng.random() < 0.1:
            store.delete_traces(project, [f"{rng.randrange(30):032x}"])
        if rng.random() < 0.05:
            store.delete_sessions(project, [rng.choice("abcd")])


def both(store: SQLiteStore, project: int, query: MetricsQuery) -> tuple[Metrics, Metrics]:
    """The figures from the aggregates, and from the rollups."""
    span = rules.bucket_range(query)
    names = list(METRIC_NAMES)
    with store._read() as conn:
        kept = metric_aggregates.read(conn, project, query, span)
        counted = sqlite_metrics._read_rollups(
            conn, sqlite_metrics._Sql(conn, project, query, span)
        )
    return rules.build(query, span, kept, names), rules.build(query, span, counted, names)


def comparable(metrics: Metrics) -> dict:
    return {
        "series": {
            (s.metric, s.model): [None if v is None else pytest.approx(v) for v in s.values]
            for s in metrics.series
        },
        "distributions": metrics.distributions,
        "users": sorted(
            (u.user_id, u.trace_count, u.error_count, pytest.approx(u.cost_usd))
            for u in metrics.top_users_by_cost + metrics.top_users_by_errors
        ),
    }


def assert_the_aggregates_equal_the_rollups(store: SQLiteStore, project: int) -> None:
    for bucket, start_h, end_h in (
        ("hour", 0, 48),
        ("hour", 5, 9),
        ("day", -24, 72),
        ("day", 24, 48),
        ("week", -24, 72),
    ):
        query = MetricsQuery(
            start=ns_to_datetime(T0 + start_h * HOUR),
            end=ns_to_datetime(T0 + end_h * HOUR),
            bucket=bucket,
        )
        kept, counted = both(store, project, query)
        assert comparable(kept) == comparable(counted), (bucket, start_h, end_h)


LOGS = ("metric_activity_log", "metric_user_day_log", "metric_model_log")


@pytest.mark.parametrize("fold_rows", [3, metric_log.FOLD_ROWS], ids=["folded often", "rarely"])
@pytest.mark.parametrize("grouped", [False, True], ids=["in turn", "grouped"])
@pytest.mark.parametrize("seed", range(6))
def test_the_aggregates_equal_the_rollups_after_any_history(
    tmp_path: Path, seed: int, grouped: bool, fold_rows: int, monkeypatch: pytest.MonkeyPatch
):
    """Read with their logs' rows (folded after a few writes, or only by the deletes),
    then once the logs are folded."""
    monkeypatch.setattr(metric_log, "FOLD_ROWS", fold_rows)
    store = SQLiteStore(tmp_path / "t.db")
    try:
        project = store.create_project("p").id
        store.create_project("other")
        history(store, project, seed, grouped)
        # Left in the logs: traces of users new to their days beside known ones.
        late = [random_span(random.Random(seed), 40 + i, 0) for i in range(4)]
        store.write_spans(
            project, [replace(s, user_id=f"late-{i % 2}") for i, s in enumerate(late)]
        )
        with store._read() as conn:
            logged = sum(conn.execute(f"SELECT COUNT(*) FROM {log}").fetchone()[0] for log in LOGS)
        assert logged > 0
        assert_the_aggregates_equal_the_rollups(store, project)
        with store._transaction() as conn:
            metric_log.fold_all(conn)
        with store._read() as conn:
            for log in LOGS:
                assert conn.execute(f"SELECT COUNT(*) FROM {log}").fetchone() == (0,)
            counts = conn.execute(
                "SELECT day, users FROM metric_user_day_counts WHERE users != 0 ORDER BY day"
            ).fetchall()
            rows = conn.execute(
                "SELECT day, COUNT(*) FROM metric_user_days GROUP BY day ORDER BY day"
            ).fetchall()
            assert conn.execute(
                "SELECT COUNT(*) FROM metric_user_days WHERE traces_active <= 0"
            ).fetchone() == (0,)
        assert counts == rows
        assert_the_aggregates_equal_the_rollups(store, project)
    finally:
        store.close()


def test_nothing_is_left_once_everything_is_deleted(tmp_path: Path):
    store = SQLiteStore(tmp_path / "t.db")
    try:
        project = store.create_project("p").id
        history(store, project, 1)
        with store._read() as conn:
            traces = [r[0] for r in conn.execute("SELECT trace_id FROM traces")]
        store.delete_traces(project, traces)
        with store._read() as conn:
            for table, where in (
                ("metric_activity", "traces != 0 OR sessions != 0 OR cost_pico != 0"),
                ("metric_user_days", "1"),
                ("metric_user_day_counts", "users != 0"),
                ("metric_models", "traces != 0 OR cost_pico != 0 OR total_tokens != 0"),
            ):
                left = conn.execute(f"SELECT COUNT(*) FROM {table} WHERE {where}").fetchone()
                assert left == (0,), table
    finally:
        store.close()


def test_each_days_count_of_users_equals_its_user_days_after_large_batches(tmp_path: Path):
    """Batches of hundreds of users a day (written many rows a statement), users new to
    a day beside users it has, traces active over several days, a trace re-rolled and
    deletes: each day's count is the number of its user-day rows."""
    store = SQLiteStore(tmp_path / "t.db")
    day = 24 * HOUR
    try:
        project = store.create_project("p").id
        trace = 0
        for first_user, days in ((0, 3), (400, 5)):
            batch = []
            for user in range(first_user, first_user + 700):
                trace += 1
                # Every 50th trace is active for two more days.
                length = 2 * day if user % 50 == 0 else MINUTE
                batch.append(
                    trace_member(
                        trace,
                        0,
                        T0 + (user % days) * day + user * MINUTE % day,
                        length,
                        name="s",
                        user_id=f"user-{user}",
                        cost_usd=0.01,
                    )
                )
            store.write_spans(project, batch)
        # A late span moves trace 1 a day later; traces of both batches go.
        store.write_spans(
            project, [trace_member(1, 1, T0 + 30 * HOUR, MINUTE, name="s", user_id="user-0")]
        )
        store.delete_traces(project, [f"{t:032x}" for t in (2, 3, 701, 1400)])
        with store._read() as conn:
            counts = conn.execute(
                "SELECT day, users FROM metric_user_day_counts WHERE users != 0 ORDER BY day"
            ).fetchall()
            rows = conn.execute(
                "SELECT day, COUNT(*) FROM metric_user_days GROUP BY day ORDER BY day"
            ).fetchall()
        assert len(rows) >= 5
        assert counts == rows
        assert sum(n for _, n in rows) > 1000
    finally:
        store.close()


def test_a_users_day_the_log_takes_back_whole_is_no_longer_counted(tmp_path: Path):
    """A user's day stored (its log folded), then its one trace moved to another user
    by a late root: the log's take-back leaves the row no active trace, which the day's
    and the week's active users must not count, folded or not."""
    store = SQLiteStore(tmp_path / "t.db")
    try:
        project = store.create_project("p").id
        store.write_spans(project, [trace_member(1, 1, T0, MINUTE, user_id="moved")])
        store.write_spans(project, [trace_member(2, 0, T0, MINUTE, user_id="stays")])
        with store._transaction() as conn:
            metric_log.fold_all(conn)
        store.write_spans(project, [trace_member(1, 0, T0, MINUTE, user_id="root")])
        for folded in (False, True):
            if folded:
                with store._transaction() as conn:
                    metric_log.fold_all(conn)
            for bucket in ("day", "week"):
                query = MetricsQuery(
                    start=ns_to_datetime(T0 - 24 * HOUR),
                    end=ns_to_datetime(T0 + 24 * HOUR),
                    bucket=bucket,
                )
                kept, counted = both(store, project, query)
                assert comparable(kept) == comparable(counted), (bucket, folded)
                (active,) = [s for s in kept.series if s.metric == "active_users"]
                assert sum(active.values) == 2, bucket
    finally:
        store.close()
