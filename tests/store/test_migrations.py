"""The migration runner applies every version a database lacks, not only those above the
highest it holds: branches merged their migrations out of number order (SQLite 0011
before 0009, 0012 before 0010; ClickHouse 0008 and 0010 before 0006), so a database made
in between holds a higher version and lacks a lower one."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest

from tests.store.chdb_http import own_database_url
from tests.store.test_contract import T0, record
from tests.store.test_metric_aggregates import HOUR, history
from threadline.server.model import METRIC_NAMES, MetricsQuery, SessionQuery, ns_to_datetime
from threadline.server.store import migrations, open_store
from threadline.server.store.clickhouse import ClickHouseStore
from threadline.server.store.sqlite import driver
from threadline.server.store.sqlite.driver import sqlite3
from threadline.server.store.sqlite.store import SQLiteStore

_SQLITE = "threadline.server.store.sqlite"
_CLICKHOUSE = "threadline.server.store.clickhouse"


def _spans() -> list:
    return [
        record(
            i,
            i,
            session=f"s{i % 2}",
            input=json.dumps([{"role": "user", "content": f"question {i} about kumquats"}]),
        )
        for i in range(1, 7)
    ]


def _old_database(path: Path, held: list[int], user_version: int) -> None:
    """A database as the runner before the ledger left it: the scripts of ``held``
    applied and ``user_version`` their highest."""
    conn = sqlite3.connect(path, isolation_level=None)
    for version, script in migrations.scripts(_SQLITE):
        if version in held:
            conn.executescript(script)
    conn.execute(f"PRAGMA user_version = {user_version}")
    conn.close()


@pytest.mark.parametrize(
    ("held", "user_version"),
    [
        # Made when 0011 was merged and 0009, 0010, 0012 were not.
        ([1, 2, 3, 4, 5, 6, 7, 8, 11], 11),
        # Made when 0012 was merged and 0010 was not.
        ([1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12], 12),
    ],
)
def test_sqlite_applies_the_middle_versions_an_older_database_lacks(
    tmp_path: Path, held: list[int], user_version: int
):
    path = tmp_path / "old.db"
    _old_database(path, held, user_version)
    store = SQLiteStore(path)
    try:
        project = store.create_project("p").id
        store.write_spans(project, _spans())
        # 0009's search index and 0010's dashboard aggregates are there and kept.
        found = store.list_sessions(project, SessionQuery(q="kumquats"))
        assert sorted(s.session_id for s in found.items) == ["s0", "s1"]
        start = ns_to_datetime(T0)
        metrics = store.metrics(
            project,
            MetricsQuery(start=start, end=start + timedelta(hours=1), bucket="hour"),
            ["traces"],
        )
        assert sum(v or 0 for v in metrics.series[0].values) == 6
    finally:
        store.close()
    conn = sqlite3.connect(path)
    try:
        ledger = [v for (v,) in conn.execute("SELECT version FROM schema_migrations ORDER BY 1")]
        # Every version but those needing a newer SQLite than the one linked (they wait).
        assert ledger == [
            version
            for version, script in migrations.scripts(_SQLITE)
            if driver.unmet_requirement(script) is None
        ]
        assert conn.execute("PRAGMA user_version").fetchone()[0] == ledger[-1]
    finally:
        conn.close()


def test_sqlite_applies_a_middle_version_missing_from_its_ledger(tmp_path: Path):
    path = tmp_path / "t.db"
    SQLiteStore(path).close()
    # As if 0008 had been merged after the database was made with the versions above it.
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript("DROP TABLE share_links; DELETE FROM schema_migrations WHERE version = 8;")
    conn.close()
    SQLiteStore(path).close()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT 1 FROM schema_migrations WHERE version = 8").fetchone()
        assert conn.execute("SELECT count(*) FROM share_links").fetchone() == (0,)
    finally:
        conn.close()


def test_sqlite_opens_a_current_database_without_applying_anything_again(tmp_path: Path):
    path = tmp_path / "t.db"
    SQLiteStore(path).close()
    conn = sqlite3.connect(path, isolation_level=None)
    # An older database's ledger is made from its schema once; at the latest version
    # every script is found applied.
    conn.execute("DROP TABLE schema_migrations")
    conn.close()
    for _ in range(2):
        SQLiteStore(path).close()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone() == (
            len(migrations.scripts(_SQLITE)),
        )
    finally:
        conn.close()


def _as_before_0017(path: Path) -> None:
    """Take a current database back to the shape 0017 found: each trace's usage by model
    in ``trace_model_usage`` (summed from the spans, as ingest kept it), the per-hour sums
    made from those rows, 0010's delete triggers, and the sessions' indexes as they were."""
    scripts = dict(migrations.scripts(_SQLITE))

    def statement(version: int, pattern: str) -> str:
        found = re.search(pattern, scripts[version], re.DOTALL)
        assert found, pattern
        return found.group(0) + "\n"

    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(
        "BEGIN;\n"
        + statement(10, r"CREATE TABLE trace_model_usage \(.*?WITHOUT ROWID;")
        + statement(10, r"INSERT INTO trace_model_usage\n.*?;")
        + "DELETE FROM metric_models;\n"
        + statement(10, r"INSERT INTO metric_models .*?FROM trace_model_usage .*?;")
        + "DROP TRIGGER metric_trace_and_usage_after_delete;\n"
        + statement(10, r"CREATE TRIGGER metric_trace_after_delete .*?\nEND;")
        + statement(10, r"CREATE TRIGGER metric_usage_after_delete .*?\nEND;")
        + "ALTER TABLE traces DROP COLUMN model_usage;\n"
        + "DROP INDEX sessions_by_activity;\nDROP INDEX sessions_by_duration;\n"
        + statement(1, r"CREATE INDEX sessions_by_activity .*?;")
        + statement(2, r"CREATE INDEX sessions_by_duration .*?;")
        + statement(7, r"CREATE INDEX sessions_for_metrics .*?;")
        + statement(10, r"CREATE INDEX sessions_by_duration_for_metrics.*?;")
        + "DELETE FROM schema_migrations WHERE version = 17;\n"
        + "PRAGMA user_version = 16;\nCOMMIT;"
    )
    conn.close()


def test_sqlite_0017_moves_the_usage_by_model_into_the_trace_rows_and_keeps_the_metrics(
    tmp_path: Path,
):
    path = tmp_path / "old.db"
    store = SQLiteStore(path)
    project = store.create_project("p").id
    history(store, project, 5)  # late spans, retries, moves, deletes; spans of no model
    # A tool's span and a model's that used nothing: the old shape had rows for them.
    store.write_spans(project, [record(9001, 1), record(9001, 2, 1, model="gpt")])
    start = ns_to_datetime(T0 - 3 * HOUR)
    window = {"start": start, "end": start + timedelta(days=4)}
    queries = [
        MetricsQuery(**window, bucket="hour"),  # the per-hour sums
        MetricsQuery(**window, bucket="day", group_by="tag"),  # the trace rows' usage
        MetricsQuery(**window, bucket="day", user_id="u1"),
    ]
    names = list(METRIC_NAMES)
    before = [store.metrics(project, q, names) for q in queries]
    assert any(s.model for s in before[1].series), "the history has usage by model"
    store.close()
    _as_before_0017(path)
    conn = sqlite3.connect(path)
    try:  # the old shape holds a row for spans that used nothing (tools' model '')
        assert conn.execute("SELECT count(*) FROM trace_model_usage").fetchone()[0] > 0
    finally:
        conn.close()

    store = SQLiteStore(path)
    try:
        assert [store.metrics(project, q, names) for q in queries] == before
        # The migrated rows' usage is taken back exactly when their traces go.
        with store._read() as conn:
            traces = [r[0] for r in conn.execute("SELECT trace_id FROM traces")]
        store.delete_traces(project, traces)
        with store._read() as conn:
            left = conn.execute(
                "SELECT count(*) FROM metric_models WHERE traces != 0 OR cost_pico != 0"
                " OR input_tokens != 0 OR output_tokens != 0 OR total_tokens != 0"
            ).fetchone()
            assert left == (0,)
            gone = conn.execute(
                "SELECT count(*) FROM sqlite_master WHERE name IN ('trace_model_usage',"
                " 'sessions_for_metrics', 'sessions_by_duration_for_metrics')"
            ).fetchone()
            assert gone == (0,)
    finally:
        store.close()


@pytest.mark.clickhouse
def test_clickhouse_applies_a_middle_version_it_lacks(tmp_path: Path):
    url = own_database_url(tmp_path)
    store = open_store(url)
    assert isinstance(store, ClickHouseStore)
    latest = store.schema_version
    # As a database made when 0008 and 0010 were merged and 0006 (search) was not.
    store._ch.command("DROP TABLE search_text")
    store._ch.command("TRUNCATE TABLE threadline_schema")
    store._ch.insert(
        "threadline_schema",
        [[v, 0] for v, _ in migrations.scripts(_CLICKHOUSE) if v != 6],
        column_names=["version", "applied_ns"],
    )
    store.close()
    reopened = open_store(url)
    try:
        assert reopened.schema_version == latest
        assert reopened._rows("SELECT count() FROM search_text") == [(0,)]
        project = reopened.create_project("p").id
        reopened.write_spans(project, _spans())
        found = reopened.list_sessions(project, SessionQuery(q="kumquats"))
        assert sorted(s.session_id for s in found.items) == ["s0", "s1"]
        versions = reopened._rows("SELECT version FROM threadline_schema ORDER BY version")
        assert [v for (v,) in versions] == [v for v, _ in migrations.scripts(_CLICKHOUSE)]
    finally:
        reopened.close()
