"""The evaluation part of the storage contract, on every backend: evaluators, the run
queue (claims, leases, releases, finishes), totals, sweep marks and ended sessions."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from tests.store import test_contract
from tests.store.test_contract import MS, T0, record
from threadline.server.errors import Conflict
from threadline.server.evaluation import ondemand, online
from threadline.server.evaluation.key_urls import KeyUrls
from threadline.server.evaluation.model import (
    EvaluationRun,
    EvaluatorFilter,
    EvaluatorIn,
    RunOutcome,
    RunQuery,
    RunRecord,
)
from threadline.server.evaluation.saving import save_evaluator
from threadline.server.store import Store

SECOND = 1_000_000_000

# The contract suite's fixtures: every test here runs on every backend.
backend = test_contract.backend
store = test_contract.store


def definition(name: str = "resolved", **overrides) -> EvaluatorIn:
    body = {
        "name": name,
        "prompt": "Was the problem resolved?",
        "judge": {"base_url": "http://127.0.0.1:9/v1", "model": "gpt-4o-mini"},
        "score": {"name": name, "data_type": "boolean"},
    }
    body.update(overrides)
    return EvaluatorIn.model_validate(body)


def run(run_id: str, evaluator: str = "resolved", session: str = "s", created: int = 0):
    return RunRecord(
        id=run_id,
        evaluator=evaluator,
        target_kind="session",
        target_id=session,
        session_id=session,
        trigger="manual",
        created_ns=T0 + created,
    )


def test_evaluators_are_created_replaced_listed_and_deleted_per_project(store: Store):
    a, b = store.create_project("a").id, store.create_project("b").id
    made = store.put_evaluator(a, definition())
    assert made.name == "resolved" and made.online and made.totals.runs_done == 0
    store.put_evaluator(a, definition("another", online=False))
    replaced = store.put_evaluator(a, definition(prompt="Did it help?"))
    assert replaced.prompt == "Did it help?" and replaced.created_at == made.created_at
    assert [e.name for e in store.list_evaluators(a)] == ["another", "resolved"]
    assert store.list_evaluators(b) == [] and store.get_evaluator(b, "resolved") is None
    assert not store.delete_evaluator(b, "resolved")
    assert store.delete_evaluator(a, "resolved")
    assert store.get_evaluator(a, "resolved") is None
    assert [e.name for e in store.list_evaluators(a)] == ["another"]


def test_runs_are_queued_once_and_listed_newest_first(store: Store):
    p = store.create_project("p").id
    store.put_evaluator(p, definition())
    assert store.add_runs(p, [run("r1", created=1), run("r2", session="t", created=2)]) == 2
    assert store.add_runs(p, [run("r1", created=5)]) == 0
    page = store.list_runs(p, RunQuery(limit=1))
    assert [r.id for r in page.items] == ["r2"] and page.next_cursor
    rest = store.list_runs(p, RunQuery(limit=1, cursor=page.next_cursor))
    assert [r.id for r in rest.items] == ["r1"] and rest.next_cursor is None
    assert [r.id for r in store.list_runs(p, RunQuery(session_id="t")).items] == ["r2"]
    assert store.list_runs(p, RunQuery(status="done")).items == []
    assert store.get_runs(p, ["r1", "nope"])["r1"].status == "pending"
    other = store.create_project("other").id
    assert store.list_runs(other, RunQuery()).items == [] and store.get_runs(other, ["r1"]) == {}


def test_claims_lease_release_and_finish(store: Store):
    p = store.create_project("p").id
    store.put_evaluator(p, definition())
    store.add_runs(p, [run("r1", created=1), run("r2", created=2), run("r3", created=3)])
    first = store.claim_runs(2, 60 * SECOND)
    assert [(r.id, r.project_id, r.status) for r in first] == [
        ("r1", p, "running"),
        ("r2", p, "running"),
    ]
    assert [r.id for r in store.claim_runs(5, 60 * SECOND)] == ["r3"]
    assert store.claim_runs(5, 60 * SECOND) == []
    store.release_runs([first[1]])
    assert store.get_runs(p, ["r2"])["r2"].status == "pending"
    assert [r.id for r in store.claim_runs(5, 1)] == ["r2"]  # a lease of 1 ns
    time.sleep(0.01)
    # The lease ran out (its runner died): the run is claimable again.
    assert [r.id for r in store.claim_runs(5, 60 * SECOND)] == ["r2"]
    done = RunOutcome("done", attempts=1, score_id="sc", input_tokens=10, output_tokens=2)
    done.cost_usd = 0.25
    assert store.finish_run(p, "r1", done)
    assert not store.finish_run(p, "r1", done)  # finished already: counted once
    failed = RunOutcome("failed", reason="the judge answered HTTP 500", attempts=3)
    failed.input_tokens = 5
    assert store.finish_run(p, "r2", failed)
    store.release_runs([first[0]])  # a release after the finish changes nothing
    runs = store.get_runs(p, ["r1", "r2"])
    assert (runs["r1"].status, runs["r1"].score_id, runs["r1"].attempts) == ("done", "sc", 1)
    assert runs["r1"].finished_at is not None and runs["r1"].cost_usd == 0.25
    assert (runs["r2"].status, runs["r2"].reason) == ("failed", "the judge answered HTTP 500")
    totals = store.get_evaluator(p, "resolved").totals
    assert (totals.runs_done, totals.runs_failed, totals.runs_pending) == (1, 1, 1)
    assert (totals.input_tokens, totals.output_tokens, totals.cost_usd) == (15, 2, 0.25)


def test_a_claim_can_choose_among_given_runs(store: Store):
    p, q = store.create_project("p").id, store.create_project("q").id
    store.put_evaluator(p, definition())
    store.put_evaluator(q, definition())
    store.add_runs(p, [run("r1", created=1), run("r2", created=2)])
    store.add_runs(q, [run("r3", created=0)])
    assert store.claim_runs(5, SECOND, (p, [])) == []
    assert [r.id for r in store.claim_runs(5, SECOND, (p, ["r2", "r3"]))] == ["r2"]
    assert [r.id for r in store.claim_runs(5, SECOND, (q, ["r1", "r3"]))] == ["r3"]
    assert [r.id for r in store.claim_runs(5, SECOND)] == ["r1"]


def test_deleting_an_evaluator_fails_its_waiting_runs(store: Store):
    p = store.create_project("p").id
    store.put_evaluator(p, definition())
    store.add_runs(p, [run("r1")])
    store.delete_evaluator(p, "resolved")
    gone = store.get_runs(p, ["r1"])["r1"]
    assert (gone.status, gone.reason) == ("failed", "evaluator deleted")
    assert store.claim_runs(5, SECOND) == []


def test_sweep_marks_start_when_an_evaluator_is_switched_on(store: Store):
    p = store.create_project("p").id
    store.put_evaluator(p, definition())
    store.put_evaluator(p, definition("offline", online=False))
    ((project, evaluator, mark),) = store.online_evaluators()
    assert (project, evaluator.name, mark) == (p, "resolved", None)
    store.add_runs(p, [], swept=("resolved", T0 + 5))
    store.add_runs(p, [], swept=("resolved", T0 + 9))
    assert store.online_evaluators()[0][2] == T0 + 9
    store.put_evaluator(p, definition(prompt="changed"))  # still online: mark kept
    assert store.online_evaluators()[0][2] == T0 + 9
    store.put_evaluator(p, definition(online=False))
    assert store.online_evaluators() == []
    store.put_evaluator(p, definition())  # on again: watches from now on
    assert store.online_evaluators()[0][2] is None


def test_ended_sessions_come_from_the_rollup_by_end_time(store: Store):
    p = store.create_project("p").id
    store.write_spans(
        p,
        [
            record(1, 1, start=0, length=10, session="early"),
            record(2, 2, start=100, length=10, session="middle"),
            record(3, 3, start=200, length=10, session="late"),
            record(4, 4, start=150, length=10),  # no session
        ],
    )
    found = store.ended_sessions(p, T0 + 10 * MS, T0 + 110 * MS, 10)
    assert found == [("middle", T0 + 110 * MS)]
    assert [s for s, _ in store.ended_sessions(p, 0, T0 + 1000 * MS, 2)] == ["early", "middle"]
    assert store.ended_sessions(store.create_project("q").id, 0, T0 + 10**12, 10) == []


def test_the_sweep_queues_each_ended_session_once_and_again_after_it_resumes(store: Store):
    p = store.create_project("p").id
    store.put_evaluator(p, definition())
    store.put_evaluator(p, definition("tagged", filter={"tags": ["vip"]}))
    idle = 100 * MS
    online.sweep(store, idle, now_ns=T0)  # first sweep: marks only
    assert store.list_runs(p, RunQuery()).items == []
    store.write_spans(p, [record(1, 1, start=10, length=10, session="s")])
    store.write_spans(p, [record(2, 2, start=10, length=10, session="v", tags=["vip"])])
    assert online.sweep(store, idle, now_ns=T0 + 50 * MS) == 0  # still active
    assert online.sweep(store, idle, now_ns=T0 + 200 * MS) == 3
    assert online.sweep(store, idle, now_ns=T0 + 300 * MS) == 0  # judged once
    queued = {(r.evaluator, r.session_id) for r in store.list_runs(p, RunQuery()).items}
    assert queued == {("resolved", "s"), ("resolved", "v"), ("tagged", "v")}
    # "s" resumes and goes idle again: a new run.
    store.write_spans(p, [record(3, 3, start=400, length=10, session="s")])
    assert online.sweep(store, idle, now_ns=T0 + 450 * MS) == 0
    assert online.sweep(store, idle, now_ns=T0 + 600 * MS) == 1
    runs = store.list_runs(p, RunQuery(session_id="s")).items
    assert len(runs) == 2 and all(r.trigger == "online" for r in runs)
    # Written after a sweep passed its end time (an exporter's delay): still judged...
    store.write_spans(p, [record(4, 4, start=440, length=10, session="late")])
    assert online.sweep(store, idle, now_ns=T0 + 700 * MS) == 1
    assert online.sweep(store, idle, now_ns=T0 + 800 * MS) == 0
    # ...unless it comes more than two minutes after it ended.
    assert online.sweep(store, idle, now_ns=T0 + 200 * SECOND) == 0
    store.write_spans(p, [record(5, 5, start=900, length=10, session="too-late")])
    assert online.sweep(store, idle, now_ns=T0 + 201 * SECOND) == 0
    assert store.list_runs(p, RunQuery(session_id="too-late")).items == []


def test_claims_share_the_queue_fairly_across_projects(store: Store):
    flood, quiet, third = (store.create_project(n).id for n in ("flood", "quiet", "third"))
    for project in (flood, quiet, third):
        store.put_evaluator(project, definition())
    store.add_runs(flood, [run(f"f{i:02}", created=i) for i in range(30)])
    # The flooding project takes every place while it is alone.
    assert [r.id for r in store.claim_runs(3, 60 * SECOND)] == ["f00", "f01", "f02"]
    store.add_runs(quiet, [run("q0", created=100), run("q1", created=101)])
    store.add_runs(third, [run("t0", created=200)])
    # Newer than 27 waiting runs, but their projects have none in flight: theirs first,
    # then one place each in turn, the project with fewer in flight first.
    assert [r.id for r in store.claim_runs(1, 60 * SECOND)] == ["q0"]
    assert [r.id for r in store.claim_runs(4, 60 * SECOND)] == ["t0", "q1", "f03", "f04"]
    # A run whose runner died (its lease ran out) waits as a pending one does.
    (lapsed,) = store.claim_runs(1, 1)
    assert lapsed.id == "f05"
    time.sleep(0.01)
    assert [r.id for r in store.claim_runs(2, 60 * SECOND)] == ["f05", "f06"]


def test_a_spare_claim_takes_only_projects_with_no_run_in_flight(store: Store):
    flood, quiet = store.create_project("flood").id, store.create_project("quiet").id
    for project in (flood, quiet):
        store.put_evaluator(project, definition())
    store.add_runs(flood, [run(f"f{i}", created=i) for i in range(5)])
    assert [r.id for r in store.claim_runs(2, 60 * SECOND)] == ["f0", "f1"]
    # Only the flooding project waits, and it has runs in flight: nothing for the spare.
    assert store.claim_runs(1, 60 * SECOND, None, True) == []
    store.add_runs(quiet, [run("q0", created=100), run("q1", created=101)])
    assert [r.id for r in store.claim_runs(2, 60 * SECOND, None, True)] == ["q0"]
    assert store.claim_runs(1, 60 * SECOND, None, True) == []  # quiet has one in flight now


def test_judging_ended_sessions_queues_a_bounded_amount(store: Store, monkeypatch):
    """An evaluator created to judge the sessions that ended already queues at most
    ``EXISTING_MAX_RUNS`` runs (a trace evaluator queues one a trace) found among the
    newest ``EXISTING_MAX_READ`` sessions, kept by its filter or not."""
    p = store.create_project("p").id
    store.write_spans(
        p,
        [
            record(
                10 * s + t,
                10 * s + t,
                start=100 * s + 10 * t,
                session=f"s{s}",
                metadata={"first": str(s == 1).lower()},
            )
            for s in range(1, 7)
            for t in range(3)
        ],
    )
    since, now, keys = _at(T0), _at(T0 + 3600 * SECOND), KeyUrls.parse("")

    def queued(evaluator: EvaluatorIn) -> list[EvaluationRun]:
        """The runs the API's judge_existing_since queues for ``evaluator``."""
        saved, count = save_evaluator(store, p, evaluator, keys, since, 0, now, 100_000)
        found = store.list_runs(p, RunQuery(evaluator=saved.name, limit=100)).items
        assert len(found) == count
        return found

    monkeypatch.setattr(ondemand, "EXISTING_MAX_RUNS", 5)
    per_trace = queued(definition("per-trace", target="trace"))
    assert len(per_trace) == 5  # of 18 traces
    assert {r.session_id for r in per_trace} == {"s6", "s5"}  # the newest first
    only_s1 = {"filter": {"metadata": {"first": "true"}}}
    assert [r.session_id for r in queued(definition("only-s1", **only_s1))] == ["s1"]
    monkeypatch.setattr(ondemand, "EXISTING_MAX_READ", 2)
    per_session = queued(definition("per-session"))
    assert sorted(r.session_id for r in per_session) == ["s5", "s6"]
    # Read, kept or not: a filter keeping the oldest session finds it not among them.
    assert queued(definition("only-s1-again", **only_s1)) == []


def test_judging_the_sessions_since_a_time_can_be_bounded(store: Store):
    """What the API asks: at most so many runs, found among the newest sessions read."""
    p = store.create_project("p").id
    store.write_spans(
        p,
        [
            record(10 * s + t, 10 * s + t, start=100 * s + 10 * t, session=f"s{s}")
            for s in range(1, 5)
            for t in range(3)
        ],
    )
    since = datetime.fromtimestamp(T0 / SECOND, UTC)
    per_trace = store.put_evaluator(p, definition("per-trace", target="trace"))
    nothing = EvaluatorFilter()
    runs = ondemand.runs_since(store, p, per_trace, since, nothing, 1000, max_runs=4)
    assert len(runs) == 4 and {r.session_id for r in runs} == {"s4", "s3"}
    runs = ondemand.runs_since(store, p, per_trace, since, nothing, max_read=1)
    assert {r.session_id for r in runs} == {"s4"} and len(runs) == 3
    assert len(ondemand.runs_since(store, p, per_trace, since, nothing)) == 12


def _at(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / SECOND, UTC)


def test_an_evaluator_judges_each_session_ended_before_or_after_its_creation_once(store: Store):
    """What ended by the moment an evaluator is created (idle since) is judged on
    creation when asked (``judge_existing_since``); what ends after it is its sweep's,
    first sweep included, however late that comes: the two meet exactly."""
    p = store.create_project("p").id
    created = T0 + 10 * SECOND  # idle: 1 s, so ended by then means ended by T0 + 9 s
    store.write_spans(
        p,
        [
            record(1, 1, start=5000, session="before"),
            record(2, 2, start=8990, length=10, session="at"),  # ends at T0 + 9 s exactly
            record(3, 3, start=9000, length=5, session="gap"),  # just after: not ended
            record(4, 4, start=30_000, session="later"),
        ],
    )
    keys = KeyUrls.parse("")
    _, queued = save_evaluator(
        store, p, definition("asked"), keys, _at(T0), 1, _at(created), max_waiting=100
    )
    save_evaluator(store, p, definition("plain"), keys, None, 1, _at(created))
    assert queued == 2
    # The first sweep comes up to 15 s later: "gap" ended in between, and is judged.
    assert online.sweep(store, SECOND, now_ns=created + 15 * SECOND) == 2
    assert online.sweep(store, SECOND, now_ns=created + 40 * SECOND) == 2
    assert online.sweep(store, SECOND, now_ns=created + 60 * SECOND) == 0
    judged = sorted((r.evaluator, r.session_id) for r in store.list_runs(p, RunQuery()).items)
    assert judged == [
        ("asked", "at"),
        ("asked", "before"),
        ("asked", "gap"),
        ("asked", "later"),
        ("plain", "gap"),
        ("plain", "later"),
    ]


def test_a_project_may_have_only_so_many_runs_waiting(store: Store):
    """Requests that queue runs are refused past the bound, changing nothing; the sweep
    passes over a project at its bound and judges its sessions once it has room."""
    p, q = store.create_project("p").id, store.create_project("q").id
    store.write_spans(p, [record(i, i, start=100 * i, session=f"s{i}") for i in range(1, 4)])
    store.add_runs(p, [run("manual-1"), run("manual-2", created=1)])
    assert (store.runs_waiting(p), store.runs_waiting(q)) == (2, 0)
    (claimed,) = store.claim_runs(1, 60 * SECOND)
    assert store.runs_waiting(p) == 2  # running counts as waiting
    now, keys = _at(T0 + 10 * SECOND), KeyUrls.parse("")
    with pytest.raises(Conflict, match="at most 4 may wait"):
        save_evaluator(store, p, definition(), keys, _at(T0), 1, now, max_waiting=4)
    assert store.get_evaluator(p, "resolved") is None and store.runs_waiting(p) == 2
    _, queued = save_evaluator(store, p, definition(), keys, _at(T0), 1, now, max_waiting=5)
    assert queued == 3 and store.runs_waiting(p) == 5
    ondemand.check_room(store, q, 5, 5)  # another project's room is its own
    with pytest.raises(Conflict):
        ondemand.check_room(store, p, 1, 5)
    # A session ends: the sweep passes over p, full, keeping its mark...
    store.write_spans(p, [record(9, 9, start=12_000, session="late")])
    assert online.sweep(store, SECOND, now_ns=T0 + 20 * SECOND, max_waiting=5) == 0
    assert store.list_runs(p, RunQuery(session_id="late")).items == []
    # ...and judges it once a run is finished, later than its idle time.
    store.finish_run(p, claimed.id, RunOutcome("failed", "judge down", 1))
    assert online.sweep(store, SECOND, now_ns=T0 + 300 * SECOND, max_waiting=5) == 1
    assert [r.session_id for r in store.list_runs(p, RunQuery(session_id="late")).items] == ["late"]
