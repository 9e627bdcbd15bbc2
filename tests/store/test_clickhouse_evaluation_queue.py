"""ClickHouse keeps the runs not finished in ``evaluation_queue`` (migration 0023), so
that a claim and a poll of an empty queue do not read every run ever queued: finished
runs leave it, a late claim of a run that left is put right, and the runs queued before
the migration are in it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.store.clickhouse_statements import own_store, recorded_sql
from tests.store.test_contract import record
from tests.store.test_evaluation_contract import definition, run
from threadline.server.evaluation.model import RunOutcome, RunQuery
from threadline.server.store.clickhouse import evaluations, schema
from threadline.server.store.clickhouse.evaluations import _RUN_INSERT, _run_row
from threadline.server.store.clickhouse.store import ClickHouseStore

pytestmark = pytest.mark.clickhouse

LEASE = 60 * 1_000_000_000


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ClickHouseStore]:
    with own_store(tmp_path) as opened:
        yield opened


def _queued(store: ClickHouseStore) -> list[str]:
    """The ids of the runs with a row in the queue, once its deletions are done."""
    deadline = time.monotonic() + 120
    while store._rows(
        "SELECT count() FROM system.mutations WHERE database = currentDatabase()"
        " AND table = 'evaluation_queue' AND NOT is_done"
    )[0][0]:
        assert time.monotonic() < deadline, "the queue's deletions did not finish"
        time.sleep(0.1)
    return [i for (i,) in store._rows("SELECT DISTINCT id FROM evaluation_queue ORDER BY id")]


def _finish(store: ClickHouseStore, project: int, count: int) -> None:
    for claimed in store.claim_runs(count, LEASE):
        assert store.finish_run(project, claimed.id, RunOutcome("done", None, 1))


def test_finished_runs_leave_the_queue_and_the_waiting_stay(store, monkeypatch):
    monkeypatch.setattr(evaluations, "_FINISHED_KEPT", 3)
    project = store.create_project("p").id
    store.put_evaluator(project, definition())
    store.add_runs(project, [run(f"r{i}", created=i) for i in range(6)])
    _finish(store, project, 4)
    # This claim reads the 4 finished runs in the queue, and deletes them from it.
    assert [r.id for r in store.claim_runs(4, LEASE)] == ["r4", "r5"]
    assert _queued(store) == ["r4", "r5"]
    totals = store.list_evaluators(project)[0].totals
    assert (totals.runs_pending, totals.runs_done) == (2, 4)
    assert store.claim_runs(4, LEASE) == []


def test_a_claim_written_after_the_queue_forgot_a_run_does_not_bring_it_back(store, monkeypatch):
    monkeypatch.setattr(evaluations, "_FINISHED_KEPT", 1)
    project = store.create_project("p").id
    store.put_evaluator(project, definition())
    store.add_runs(project, [run("done")])
    (claimed,) = store.claim_runs(1, LEASE)
    store.finish_run(project, claimed.id, RunOutcome("done", None, 1))
    store.claim_runs(1, LEASE)
    assert _queued(store) == []
    # A slow process's claim of the run, its lease already over, written after all that.
    claimed.status, claimed.claimed_until_ns = "running", time.time_ns() - LEASE
    store._put("evaluation_runs", [_run_row(claimed, "slow", time.time_ns())], _RUN_INSERT)
    assert store.claim_runs(4, LEASE) == []
    assert store.claim_runs(4, LEASE) == []
    assert store.get_runs(project, ["done"])["done"].status == "done"
    assert store.list_evaluators(project)[0].totals.runs_pending == 0


def test_runs_queued_before_the_queue_existed_are_claimed_from_it(store):
    project = store.create_project("p").id
    store.put_evaluator(project, definition())
    store.add_runs(project, [run(f"r{i}", created=i) for i in range(3)])
    _finish(store, project, 1)
    (running,) = store.claim_runs(1, LEASE)
    for statement in (
        "DROP VIEW evaluation_queue_from_runs",
        "DROP TABLE evaluation_queue",
        "DELETE FROM threadline_schema WHERE version = 23 SETTINGS lightweight_deletes_sync = 2",
    ):
        store._command(statement)
    schema.migrate(store._ch)
    assert _queued(store) == ["r1", "r2"]
    assert [r.id for r in store.claim_runs(4, LEASE)] == ["r2"]  # r1's claim holds
    assert store.list_evaluators(project)[0].totals.runs_pending == 2
    store.release_runs([running])
    assert [r.id for r in store.claim_runs(4, LEASE)] == ["r1"]


def test_a_deleted_sessions_waiting_run_leaves_the_queue(store):
    project = store.create_project("p").id
    store.put_evaluator(project, definition())
    store.write_spans(project, [record(1, 1, session="s"), record(2, 1, session="kept")])
    store.add_runs(project, [run("gone", session="s"), run("stays", session="kept", created=1)])
    assert store.delete_sessions(project, ["s"]) == 1
    assert [r.id for r in store.claim_runs(4, LEASE)] == ["stays"]
    assert _queued(store) == ["stays"]


def _mutations(store: ClickHouseStore, where: str) -> int:
    return int(
        store._rows(
            "SELECT count() FROM system.mutations WHERE database = currentDatabase()"
            f" AND table = 'evaluation_queue' AND NOT is_done AND {where}"
        )[0][0]
    )


def _until(check, what: str) -> None:
    deadline = time.monotonic() + 120
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_a_failed_deletion_of_finished_runs_is_cancelled_and_made_again(store, monkeypatch):
    """A deletion from the queue that fails is retried for ever by ClickHouse: it is
    cancelled, and the finished runs are deleted by the next one, not left for good."""
    monkeypatch.setattr(evaluations, "_FINISHED_KEPT", 1)
    project = store.create_project("p").id
    store.put_evaluator(project, definition())
    store.add_runs(project, [run(f"r{i}", created=i) for i in range(4)])
    # A deletion of finished runs that fails (said as the store's own are).
    store._ch.command(
        "ALTER TABLE evaluation_queue DELETE WHERE throwIf(id != '', 'boom') = 1"
        " OR (project_id, id) IN ((0, ''))",
        settings={"mutations_sync": 0},
    )
    _until(lambda: _mutations(store, "latest_fail_reason != ''"), "the deletion never failed")
    _finish(store, project, 2)
    # This claim reads 2 finished runs: the failed deletion is cancelled...
    assert [r.id for r in store.claim_runs(1, LEASE)] == ["r2"]
    _until(lambda: not _mutations(store, "1"), "the failed deletion was not cancelled")
    # ...and the next claim deletes them.
    assert [r.id for r in store.claim_runs(1, LEASE)] == ["r3"]
    assert _queued(store) == ["r2", "r3"]


def test_a_release_reads_its_runs_at_once_and_waiting_runs_are_listed_from_the_queue(
    store, monkeypatch
):
    monkeypatch.setattr(evaluations, "_FINISHED_KEPT", 1)
    project = store.create_project("p").id
    store.put_evaluator(project, definition())
    store.add_runs(project, [run(f"r{i}", created=i) for i in range(6)])
    _finish(store, project, 2)
    other = store.create_project("other").id
    store.put_evaluator(other, definition())
    store.add_runs(other, [run("o0", created=10)])
    claimed = store.claim_runs(3, LEASE)  # deletes the finished runs from the queue
    assert {r.project_id for r in claimed} == {project, other}
    statements = recorded_sql(store)
    store.release_runs(claimed)
    assert len(statements) == 1  # one read of the runs' state, not one a run
    assert store.list_runs(other, RunQuery(status="pending")).items[0].id == "o0"
    statements.clear()
    statements.clear()
    pending = store.list_runs(project, RunQuery(status="pending"))
    assert [r.id for r in pending.items] == ["r5", "r4", "r3", "r2"]
    assert "evaluation_runs" not in statements[0] and "evaluation_queue" in statements[0]
    assert _queued(store) == ["o0", "r2", "r3", "r4", "r5"]
    done = store.list_runs(project, RunQuery(status="done"))  # from the record
    assert [r.id for r in done.items] == ["r1", "r0"]
    first = store.list_runs(project, RunQuery(status="pending", limit=2))
    rest = store.list_runs(project, RunQuery(status="pending", limit=2, cursor=first.next_cursor))
    assert [r.id for r in [*first.items, *rest.items]] == ["r5", "r4", "r3", "r2"]
