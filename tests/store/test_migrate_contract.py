"""``copy_store`` (``threadline migrate``) into every backend: what a store holds beyond
spans and scores comes across too: each project's data rules (its own retention,
redaction rules, session-inference choice), every evaluation run with its outcome (the
evaluators' totals with them) and the sessions it inferred; copying again adds
nothing. The end-to-end copy of a
server's store is tests/store/test_migrate.py."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

from tests.chat_turns import BASE, conversation, turn_spans
from tests.store import test_contract
from tests.store.test_deletion_contract import fill
from tests.store.test_deletion_leftovers import RUNS
from tests.store.test_evaluation_contract import definition
from tests.store.test_inference_contract import send as send_turn
from threadline.server.evaluation.model import RunOutcome, RunQuery
from threadline.server.migrate import copy_store
from threadline.server.model import SessionQuery, ns_to_datetime
from threadline.server.redaction import rules as redaction_rules
from threadline.server.store import Store

backend = test_contract.backend
store = test_contract.store

RULES = redaction_rules.parse(["email", "card"], [("ticket", r"TCK-\d+")])


def _source(tmp_path: Path) -> Store:
    folder = tmp_path / "source"
    folder.mkdir()
    source = test_contract._open("sqlite", folder)
    kept = source.create_project("kept").id
    plain = source.create_project("plain").id
    quiet = source.create_project("quiet").id
    fill(source, kept)
    source.set_retention_days(kept, 30)
    source.set_redaction_rules(kept, RULES)
    source.set_retention_days(quiet, 0)  # forever, whatever the server says
    source.set_session_inference(quiet, False)
    del plain  # a project with the defaults: nothing of it to copy but itself
    source.put_evaluator(kept, definition())
    source.put_evaluator(kept, definition("other", online=False))
    assert source.add_runs(kept, RUNS) == len(RUNS)
    done = RunOutcome("done", score_id="sc", input_tokens=10, output_tokens=2, cost_usd=0.01)
    failed = RunOutcome("failed", reason="the judge answered HTTP 500", attempts=2)
    assert source.finish_run(kept, "run-s1", done)
    assert source.finish_run(kept, "run-t1", failed)
    assert source.finish_run(kept, "run-s2", done)
    # One run in the hands of a runner of the source, one still waiting.
    (claimed,) = source.claim_runs(1, 60 * 10**9, only=(kept, ["run-t2"]))
    assert claimed.id == "run-t2"
    return source


def _runs(store: Store, project: int) -> list[dict]:
    items = store.list_runs(project, RunQuery(limit=100)).items
    return sorted((r.model_dump() for r in items), key=lambda r: r["id"])


def test_data_rules_and_evaluation_runs_are_copied(store: Store, tmp_path: Path) -> None:
    source = _source(tmp_path)
    try:
        ids = {p.name: p.id for p in source.list_projects()}
        copied = copy_store(source, store, batch_size=2, progress=False)
        assert (copied.runs, copied.data_rules, copied.evaluators) == (len(RUNS), 2, 2)
        there = {p.name: p.id for p in store.list_projects()}
        kept = there["kept"]
        overrides = store.retention_overrides()
        assert overrides.get(kept) == 30 and overrides.get(there["quiet"]) == 0
        assert there["plain"] not in overrides
        assert store.redaction_rules(kept) == RULES
        assert not store.redaction_rules(there["quiet"]).active
        assert store.session_inference(kept) and not store.session_inference(there["quiet"])
        # Every run as it was, but the one a runner of the source held: waiting again.
        expected = _runs(source, ids["kept"])
        for run in expected:
            if run["id"] == "run-t2":
                assert run["status"] == "running"
                run["status"] = "pending"
        assert _runs(store, kept) == expected
        totals = source.get_evaluator(ids["kept"], "resolved").totals
        assert (totals.runs_done, totals.runs_failed) == (2, 1)
        assert store.get_evaluator(kept, "resolved").totals == totals
        # The target's runner can take the waiting runs.
        waiting = store.claim_runs(10, 60 * 10**9, only=(kept, ["run-t2", "run-t4"]))
        assert sorted(r.id for r in waiting) == ["run-t2", "run-t4"]
        store.release_runs(waiting)
        # Again: nothing twice, totals included.
        copy_store(source, store, batch_size=3, progress=False)
        assert len(_runs(store, kept)) == len(RUNS)
        assert store.get_evaluator(kept, "resolved").totals == totals
    finally:
        source.close()


def _inferred(store: Store, project: int) -> set[frozenset[str]]:
    window = {
        "start": ns_to_datetime(BASE) - timedelta(days=1),
        "end": ns_to_datetime(BASE) + timedelta(days=1),
    }
    found = set()
    for item in store.list_sessions(project, SessionQuery(limit=50, **window)).items:
        if item.inferred:
            detail = store.get_session(project, item.session_id)
            found.add(frozenset(t.trace_id for t in detail.traces))
    return found


def test_inferred_sessions_are_inferred_again(store: Store, tmp_path: Path) -> None:
    folder = tmp_path / "source"
    folder.mkdir()
    source = test_contract._open("sqlite", folder)
    try:
        project = source.create_project("p").id
        rng = random.Random(3)
        chats = [conversation(name, BASE, rng=rng) for name in ("a", "b")]
        for turns in chats:
            for turn in turns:
                send_turn(source, project, turn_spans(turns, turn))
        expected = {frozenset(t.trace_id for t in turns) for turns in chats}
        assert _inferred(source, project) == expected
        copy_store(source, store, batch_size=3, progress=False)
        (copy,) = store.list_projects()
        assert _inferred(store, copy.id) == expected
    finally:
        source.close()


def test_runs_are_copied_out_of_every_backend(store: Store, tmp_path: Path) -> None:
    project = store.create_project("kept").id
    store.put_evaluator(project, definition())
    assert store.add_runs(project, RUNS) == len(RUNS)
    done = RunOutcome("done", score_id="sc", input_tokens=7, output_tokens=1, cost_usd=0.5)
    assert store.finish_run(project, "run-s1", done)
    folder = tmp_path / "target"
    folder.mkdir()
    target = test_contract._open("sqlite", folder)
    try:
        copied = copy_store(store, target, batch_size=2, progress=False)
        assert copied.runs == len(RUNS)
        (there,) = target.list_projects()
        assert _runs(target, there.id) == _runs(store, project)
        assert target.get_evaluator(there.id, "resolved").totals == (
            store.get_evaluator(project, "resolved").totals
        )
    finally:
        target.close()


def test_inferred_sessions_come_out_of_every_backend(store: Store, tmp_path: Path) -> None:
    """A ClickHouse store writes an inferred session's name on the spans; copied into
    SQLite the sessions must still be inferred ones, not explicit sessions of that name."""
    project = store.create_project("p").id
    rng = random.Random(5)
    chats = [conversation(name, BASE, rng=rng) for name in ("a", "b")]
    for turns in chats:
        for turn in turns:
            send_turn(store, project, turn_spans(turns, turn))
    expected = {frozenset(t.trace_id for t in turns) for turns in chats}
    assert _inferred(store, project) == expected
    folder = tmp_path / "target"
    folder.mkdir()
    target = test_contract._open("sqlite", folder)
    try:
        copy_store(store, target, batch_size=3, progress=False)
        (copy,) = target.list_projects()
        assert _inferred(target, copy.id) == expected
    finally:
        target.close()
