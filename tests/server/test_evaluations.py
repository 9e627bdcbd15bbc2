"""Evaluators through the real server: online judging when a session goes idle,
re-judging when it resumes, on-demand runs, judge failures and retries, and a restart
with runs pending. The judge is a local fake (``tests/integrations/fake_judge.py``).
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import ProjectClient, ServerProcess, start_server, stop_server
from tests.integrations.fake_judge import FakeJudge
from tests.otlp import new_span_id, new_trace_id, request, span
from threadline.server.evaluation.model import DEFAULT_PROMPT

pytestmark = pytest.mark.slow  # servers of its own, idle times to wait out

KEY_VARIABLE = "THREADLINE_JUDGE_TEST_KEY"
IDLE_SECONDS = 1


@pytest.fixture(scope="module")
def judge() -> Iterator[FakeJudge]:
    with FakeJudge() as fake:
        yield fake


@pytest.fixture(autouse=True)
def judge_answers(judge: FakeJudge) -> None:
    judge.mode, judge.failures_left, judge.hang_seconds = "ok", None, 30.0
    judge.delay_seconds = 0.0


def _start(root, name: str, *extra: str) -> ServerProcess:
    os.environ[KEY_VARIABLE] = "sk-judge-test"
    return start_server(
        root / "data",
        root / f"{name}.log",
        "--session-idle-seconds",
        str(IDLE_SECONDS),
        "--judge-timeout-seconds",
        "2",
        "--judge-attempts",
        "2",
        *extra,
    )


@pytest.fixture(scope="module")
def evaluating(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("evaluating")
    process = _start(root, "server")
    yield process
    stop_server(process)


@pytest.fixture
def project(evaluating: ServerProcess) -> Iterator[ProjectClient]:
    client = ProjectClient(
        evaluating.base_url, evaluating.new_key(f"eval-{uuid.uuid4().hex[:8]}"), evaluating
    )
    yield client
    client.http.close()


def evaluator(judge: FakeJudge, name: str = "resolved", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": name,
        "prompt": "Did the assistant resolve the user's problem?\n\n{{transcript}}",
        "judge": {"base_url": judge.base_url, "model": "gpt-4o-mini", "api_key_env": KEY_VARIABLE},
        "score": {"name": name, "data_type": "boolean"},
    }
    body.update(overrides)
    return body


def create(project: ProjectClient, body: dict[str, Any]) -> dict[str, Any]:
    response = project.http.post("/api/v1/evaluators", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def send_turn(
    project: ProjectClient, session_id: str, said: str, replied: str, ago_s: int = 0, **attrs
) -> str:
    """One turn of a session, ending now or ``ago_s`` seconds ago (the server judges by
    its own clock)."""
    trace_id = new_trace_id()
    now = time.time_ns() - ago_s * 1_000_000_000
    body = request(
        [
            span(
                trace_id,
                new_span_id(),
                name="chat",
                start_ns=now - 50_000_000,
                end_ns=now,
                attributes={
                    "threadline.session.id": session_id,
                    "threadline.user.id": "ann",
                    "threadline.span.input": said,
                    "threadline.span.output": replied,
                    **attrs,
                },
            )
        ]
    )
    response = project.export(body.SerializeToString())
    assert response.status_code == 200, response.text
    return trace_id


def runs(project: ProjectClient, **params: Any) -> list[dict[str, Any]]:
    return project.get("/api/v1/evaluation-runs", **params)["items"]


def wait_for(check, timeout: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def finished_runs(project: ProjectClient, session_id: str, count: int) -> list[dict[str, Any]]:
    def check():
        found = runs(project, session_id=session_id)
        done = [r for r in found if r["status"] in ("done", "failed")]
        return done if len(done) >= count else None

    return wait_for(check, what=f"{count} finished runs of {session_id}")


# --- online ---------------------------------------------------------------------------


def test_an_online_evaluator_judges_a_session_once_it_goes_idle(project, judge):
    create(project, evaluator(judge))
    sid = f"online-{uuid.uuid4().hex[:8]}"
    send_turn(project, sid, "My printer is offline", "Restart the spooler service.")
    send_turn(project, sid, "That worked, thanks!", "Glad to help.")
    # Not judged while the session is active.
    assert runs(project, session_id=sid) == []
    (run,) = finished_runs(project, sid, 1)
    assert run["status"] == "done", run
    assert run["trigger"] == "online" and run["target_kind"] == "session"
    assert run["input_tokens"] > 0 and run["output_tokens"] > 0
    assert run["cost_usd"] is not None and run["cost_usd"] > 0
    score = project.get(f"/api/v1/scores/{run['score_id']}")
    assert score["source"] == "eval" and score["author"] == "resolved"
    assert score["value"] is True and score["session_id"] == sid
    assert score["comment"] == "2 turns; the user thanked"
    # The judge read the transcript, both turns, with the key from the environment.
    call = next(
        c
        for c in judge.answered()
        if "My printer is offline" in (prompt := c.request["messages"][1]["content"])
        and "That worked, thanks!" in prompt
    )
    assert call.headers["Authorization"] == "Bearer sk-judge-test"
    assert call.request["response_format"]["type"] == "json_schema"
    # It shows in the session's scores, and once: idle longer, no second run.
    session = project.get(f"/api/v1/sessions/{sid}")
    assert session["scores"]["resolved"] == {"count": 1, "average": 1.0, "label": None}
    time.sleep(IDLE_SECONDS * 2)
    assert len(runs(project, session_id=sid)) == 1
    # Totals per evaluator: the judge's tokens and cost.
    (listed,) = project.get("/api/v1/evaluators")["items"]
    totals = listed["totals"]
    assert totals["runs_done"] == 1 and totals["runs_failed"] == 0
    assert totals["input_tokens"] == run["input_tokens"]
    assert totals["cost_usd"] == pytest.approx(run["cost_usd"])


def test_a_session_that_resumes_is_judged_again_when_it_ends_again(project, judge):
    create(project, evaluator(judge))
    sid = f"resume-{uuid.uuid4().hex[:8]}"
    send_turn(project, sid, "My printer is offline", "Restart the spooler service.")
    (first,) = finished_runs(project, sid, 1)
    assert project.get(f"/api/v1/scores/{first['score_id']}")["value"] is False
    send_turn(project, sid, "Done, thanks", "You're welcome.")
    both = finished_runs(project, sid, 2)
    assert {r["status"] for r in both} == {"done"}
    # One score per evaluator and session: the later judgment replaces the earlier.
    assert both[0]["score_id"] == both[1]["score_id"]
    score = project.get(f"/api/v1/scores/{both[0]['score_id']}")
    assert score["value"] is True and score["comment"] == "2 turns; the user thanked"


def test_filters_and_sampling_pick_the_sessions_judged(project, judge):
    create(
        project,
        evaluator(judge, "support-only", filter={"tags": ["support"], "metadata": {"tier": "pro"}}),
    )
    create(project, evaluator(judge, "never", sampling_rate=0.0))
    kept, other = f"kept-{uuid.uuid4().hex[:8]}", f"other-{uuid.uuid4().hex[:8]}"
    send_turn(
        project,
        kept,
        "hi",
        "hello",
        **{"threadline.tags": '["support"]', "threadline.metadata.tier": "pro"},
    )
    send_turn(project, other, "hi", "hello", **{"threadline.tags": '["support"]'})
    (run,) = finished_runs(project, kept, 1)
    assert run["evaluator"] == "support-only"
    time.sleep(IDLE_SECONDS * 2)
    assert runs(project, session_id=other) == []
    assert [r["evaluator"] for r in runs(project, session_id=kept)] == ["support-only"]


def test_an_offline_evaluator_judges_only_on_demand(project, judge):
    create(project, evaluator(judge, online=False))
    sid = f"manual-{uuid.uuid4().hex[:8]}"
    send_turn(project, sid, "hello", "hi, thanks for asking")
    time.sleep(IDLE_SECONDS * 2.5)
    assert runs(project, session_id=sid) == []
    response = project.http.post(
        "/api/v1/evaluation-runs", json={"evaluator": "resolved", "session_id": sid}
    )
    assert response.status_code == 202, response.text
    (queued,) = response.json()["items"]
    assert queued["trigger"] == "manual" and queued["status"] in ("pending", "running", "done")
    (run,) = finished_runs(project, sid, 1)
    assert run["status"] == "done" and run["id"] == queued["id"]


def test_a_trace_evaluator_judges_each_turn_with_its_input_and_output(project, judge):
    create(
        project,
        evaluator(
            judge,
            "turn-length",
            target="trace",
            prompt="Rate the reply.\nQ: {{input}}\nA: {{output}}\n{{transcript}}",
            score={"name": "turn-length", "data_type": "numeric", "min_value": 0, "max_value": 5},
        ),
    )
    sid = f"traces-{uuid.uuid4().hex[:8]}"
    first = send_turn(project, sid, "question one", "answer one")
    second = send_turn(project, sid, "question two", "answer two")
    done = finished_runs(project, sid, 2)
    assert sorted(r["target_id"] for r in done) == sorted([first, second])
    for run in done:
        score = project.get(f"/api/v1/scores/{run['score_id']}")
        assert score["trace_id"] == run["target_id"] and score["value"] == 1.0
    prompts = [c.request["messages"][1]["content"] for c in judge.answered()]
    assert any("Q: question one\nA: answer one" in p for p in prompts)
    trace = project.get(f"/api/v1/traces/{first}")
    assert trace["scores"]["turn-length"]["average"] == 1.0


def test_a_boolean_evaluator_without_a_prompt_gets_the_forms_default(project, judge):
    body = evaluator(judge, "defaulted", online=False)
    del body["prompt"]
    made = create(project, body)
    assert made["prompt"] == DEFAULT_PROMPT
    replaced = project.http.put("/api/v1/evaluators/defaulted", json={**body, "sampling_rate": 0.5})
    assert replaced.status_code == 200 and replaced.json()["prompt"] == DEFAULT_PROMPT
    sid = f"default-prompt-{uuid.uuid4().hex[:8]}"
    send_turn(project, sid, "my invoice is wrong", "fixed it for you")
    assert _manual_run(project, sid, "defaulted")["status"] == "done"
    prompts = [c.request["messages"][1]["content"] for c in judge.answered()]
    assert any(
        p.startswith("Did the assistant resolve") and "my invoice is wrong" in p for p in prompts
    )


@pytest.mark.parametrize(
    "score",
    [
        {"name": "stars", "data_type": "numeric", "min_value": 1, "max_value": 5},
        {"name": "stars", "data_type": "categorical", "labels": ["good", "bad"]},
    ],
)
def test_an_evaluator_of_another_score_type_needs_its_own_prompt(project, judge, score):
    body = evaluator(judge, "stars", score=score)
    del body["prompt"]
    for response in (
        project.http.post("/api/v1/evaluators", json=body),
        project.http.put("/api/v1/evaluators/stars", json=body),
    ):
        assert response.status_code == 422, response.text
        assert f"give a prompt for a {score['data_type']} score" in response.json()["error"]
    assert project.http.get("/api/v1/evaluators/stars").status_code == 404


# --- failures -------------------------------------------------------------------------


def _manual_run(project: ProjectClient, sid: str, name: str = "resolved") -> dict[str, Any]:
    response = project.http.post(
        "/api/v1/evaluation-runs", json={"evaluator": name, "session_id": sid}
    )
    assert response.status_code == 202, response.text
    (run,) = finished_runs(project, sid, 1)
    return run


@pytest.mark.parametrize(
    ("mode", "reason", "attempts"),
    [
        (
            "fail",
            "the judge answered HTTP 500: the fake judge was told to fail (after 2 attempts)",
            2,
        ),
        ("reject", "the judge answered HTTP 400: the fake judge rejects this request", 1),
        ("garbage", "the judge's answer is not JSON: 'I think it went fine, maybe a 7?'", 1),
        ("hang", "the judge did not answer within 2 s (after 2 attempts)", 2),
        # A byte every 0.2 s: each read is quick, the call is not (it was read to its
        # end, 3 s later, and failed as "not a chat completion").
        ("drip", "the judge did not answer within 2 s (after 2 attempts)", 2),
        ("flood", "the judge's answer is larger than 1 MB", 1),
    ],
)
def test_a_judge_that_fails_marks_the_run_failed_with_the_reason(
    project, judge, mode, reason, attempts
):
    create(project, evaluator(judge, online=False))
    judge.mode, judge.hang_seconds = mode, 3.0
    sid = f"fail-{mode}-{uuid.uuid4().hex[:8]}"
    send_turn(project, sid, "hello", "hi")
    peak_before = _peak_rss_mb(project.process.process.pid)
    run = _manual_run(project, sid)
    assert run["status"] == "failed" and run["score_id"] is None
    assert run["reason"] == reason and run["attempts"] == attempts
    # A flood of 256 MB is not read past its first MB (it was read whole, then refused).
    assert _peak_rss_mb(project.process.process.pid) - peak_before < 64
    assert project.get("/api/v1/scores", session_id=sid)["items"] == []
    (listed,) = project.get("/api/v1/evaluators")["items"]
    assert listed["totals"]["runs_failed"] == 1 and listed["totals"]["runs_done"] == 0
    if mode == "garbage":  # an answer that did not parse was still paid for
        assert run["input_tokens"] > 0 and listed["totals"]["input_tokens"] > 0


def test_a_judges_score_of_another_type_than_its_names_fails_the_run(project, judge):
    create(project, evaluator(judge, online=False))  # writes "resolved" true or false
    elsewhere = f"rated-{uuid.uuid4().hex[:8]}"
    rated = {"name": "resolved", "value": 4, "session_id": elsewhere}
    assert project.http.post("/api/v1/scores", json=rated).status_code == 200
    sid = f"typed-{uuid.uuid4().hex[:8]}"
    send_turn(project, sid, "hello", "thanks, solved")
    run = _manual_run(project, sid)
    assert run["status"] == "failed" and run["score_id"] is None, run
    assert run["reason"].startswith("score not written: score 'resolved' holds numeric"), run
    assert "boolean" in run["reason"], run
    assert project.get("/api/v1/scores", session_id=sid)["items"] == []
    # Defined now, an evaluator of that name and type is refused at once.
    same_name = evaluator(judge, name="again", score={"name": "resolved", "data_type": "boolean"})
    response = project.http.post("/api/v1/evaluators", json=same_name)
    assert response.status_code == 409, response.text
    assert "'resolved' holds numeric" in response.json()["error"], response.text


def _peak_rss_mb(pid: int) -> int:
    """The process's peak resident memory so far (VmHWM), in MB."""
    with open(f"/proc/{pid}/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) // 1024


def test_a_judge_failing_once_is_retried_and_the_run_succeeds(project, judge):
    create(project, evaluator(judge, online=False))
    judge.mode, judge.failures_left = "fail", 1
    sid = f"retry-{uuid.uuid4().hex[:8]}"
    send_turn(project, sid, "hello", "thanks, solved")
    run = _manual_run(project, sid)
    assert run["status"] == "done" and run["attempts"] == 2, run


def test_a_missing_key_variable_fails_the_run_and_says_which(project, judge):
    body = evaluator(judge, online=False)
    body["judge"]["api_key_env"] = "THREADLINE_JUDGE_NO_SUCH_KEY"
    create(project, body)
    sid = f"nokey-{uuid.uuid4().hex[:8]}"
    send_turn(project, sid, "hello", "hi")
    run = _manual_run(project, sid)
    assert run["reason"] == (
        "the judge's key variable THREADLINE_JUDGE_NO_SUCH_KEY is not set on the server"
    )


def test_bad_evaluators_are_refused_with_the_reason(project, judge):
    cases = [
        (evaluator(judge, score={"name": "x", "data_type": "categorical"}), 400, "labels"),
        (evaluator(judge, sampling_rate=2), 422, "sampling_rate"),
        ({**evaluator(judge), "judge": {"base_url": "ftp://x", "model": "m"}}, 422, "base_url"),
        (evaluator(judge, name=""), 422, "name"),
        # The judge is called at base_url + "/chat/completions": nothing may follow the
        # path, and a password would be a secret stored in the definition.
        *(
            (
                {**evaluator(judge), "judge": {"base_url": url, "model": "m"}},
                400,
                word,
            )
            for url, word in (
                ("http://user:secret@127.0.0.1:9/v1", "password"),
                ("http://user@127.0.0.1:9/v1", "user"),
                ("http://127.0.0.1:9/v1?api-version=1", "query"),
                ("http://127.0.0.1:9/v1?", "query"),
                ("http://127.0.0.1:9/v1#chat", "fragment"),
            )
        ),
        # Only THREADLINE_JUDGE_* variables: not any secret of the server's environment.
        (
            {**evaluator(judge), "judge": {**evaluator(judge)["judge"], "api_key_env": "HOME"}},
            422,
            "api_key_env",
        ),
    ]
    for body, status, word in cases:
        response = project.http.post("/api/v1/evaluators", json=body)
        assert response.status_code == status, (body, response.text)
        assert word in response.json()["error"]
    create(project, evaluator(judge))
    again = project.http.post("/api/v1/evaluators", json=evaluator(judge))
    assert again.status_code == 409 and "exists" in again.json()["error"]
    missing = project.http.post(
        "/api/v1/evaluation-runs", json={"evaluator": "resolved", "session_id": "no-such"}
    )
    assert missing.status_code == 404 and "no-such" in missing.json()["error"]
    assert project.http.delete("/api/v1/evaluators/resolved").status_code == 204
    assert project.http.delete("/api/v1/evaluators/resolved").status_code == 404


# --- restarts -------------------------------------------------------------------------


def test_runs_pending_at_a_restart_are_judged_after_it(tmp_path, judge):
    process = _start(tmp_path, "first", "--evaluation-concurrency", "0")
    try:
        project = ProjectClient(process.base_url, process.new_key("restart"), process)
        create(project, evaluator(judge, online=False))
        sids = [f"restart-{i}" for i in range(3)]
        for sid in sids:
            send_turn(project, sid, "hello", "thanks")
            response = project.http.post(
                "/api/v1/evaluation-runs", json={"evaluator": "resolved", "session_id": sid}
            )
            assert response.status_code == 202
        # This server judges nothing (concurrency 0): the runs wait in the store.
        time.sleep(1)
        assert {r["status"] for r in runs(project)} == {"pending"}
    finally:
        stop_server(process)
    process = _start(tmp_path, "second")
    try:
        project = ProjectClient(process.base_url, project.api_key, process)
        for sid in sids:
            (run,) = finished_runs(project, sid, 1)
            assert run["status"] == "done", run
    finally:
        stop_server(process)


def test_a_run_whose_server_was_killed_is_judged_once_its_lease_ends(tmp_path, judge):
    quick = ("--judge-timeout-seconds", "1", "--judge-attempts", "1")  # a lease of 11 s
    process = _start(tmp_path, "first", *quick)
    project = ProjectClient(process.base_url, process.new_key("killed"), process)
    try:
        create(project, evaluator(judge, online=False))
        judge.mode, judge.hang_seconds = "hang", 5.0
        send_turn(project, "killed", "hello", "thanks")
        project.http.post(
            "/api/v1/evaluation-runs", json={"evaluator": "resolved", "session_id": "killed"}
        )
        wait_for(lambda: runs(project, status="running"), what="a running run")
    finally:
        process.process.kill()  # SIGKILL: no chance to put the run back
        process.process.wait()
    judge.mode = "ok"
    killed_at = time.monotonic()
    process = _start(tmp_path, "second", *quick)
    try:
        project = ProjectClient(process.base_url, project.api_key, process)
        # Still the dead runner's until its lease ends; on a loaded machine the restart
        # itself can outlast the lease, and then the run may already be judged.
        status = runs(project, session_id="killed")[0]["status"]
        assert status == "running" or time.monotonic() - killed_at >= 8, status
        (run,) = finished_runs(project, "killed", 1)
        assert run["status"] == "done", run
        # Not before the dead runner's lease ended: a live one's run is never taken.
        assert time.monotonic() - killed_at >= 8
    finally:
        stop_server(process)


def test_a_run_in_flight_at_shutdown_goes_back_in_the_queue(tmp_path, judge):
    process = _start(tmp_path, "first")
    project = ProjectClient(process.base_url, process.new_key("shutdown"), process)
    try:
        create(project, evaluator(judge, online=False))
        judge.mode, judge.hang_seconds = "hang", 1.5
        send_turn(project, "inflight", "hello", "thanks")
        project.http.post(
            "/api/v1/evaluation-runs", json={"evaluator": "resolved", "session_id": "inflight"}
        )
        wait_for(lambda: runs(project, status="running"), what="a running run")
    finally:
        stop_server(process)  # SIGTERM: the runner puts its run back
    judge.mode = "ok"
    process = _start(tmp_path, "second")
    try:
        project = ProjectClient(process.base_url, project.api_key, process)
        (run,) = finished_runs(project, "inflight", 1)
        assert run["status"] == "done", run
    finally:
        stop_server(process)


def test_the_projects_redaction_rules_apply_to_judges_comments_and_reasons(project, judge):
    # The judge's reasoning ("1 turns; ...") and a failure quoting its answer ("maybe a
    # 7?") are free text written beside the spans: the project's rules apply to them.
    rules = {
        "patterns": [{"name": "count", "regex": r"\d+ turns"}, {"name": "guess", "regex": r"a \d"}]
    }
    assert project.http.put("/api/v1/settings/redaction", json=rules).status_code == 200
    create(project, evaluator(judge, online=False))
    sid = f"redacted-{uuid.uuid4().hex[:8]}"
    send_turn(project, sid, "my order is late", "thanks for waiting, it ships today")
    run = _manual_run(project, sid)
    assert run["status"] == "done"
    (score,) = project.get("/api/v1/scores", session_id=sid)["items"]
    assert score["comment"] == "[count]; the user thanked"
    judge.mode = "garbage"
    sid = f"redacted-{uuid.uuid4().hex[:8]}"
    send_turn(project, sid, "hello", "hi")
    run = _manual_run(project, sid)
    assert run["reason"] == "the judge's answer is not JSON: 'I think it went fine, maybe [guess]?'"


def test_a_session_deleted_while_judged_gets_no_score(project, judge):
    # The judge answers after the session is gone: its verdict is not written (a score
    # would name a session that no longer exists), and the run went with the session.
    create(project, evaluator(judge, online=False))
    judge.delay_seconds = 1.5
    sid = f"deleted-{uuid.uuid4().hex[:8]}"
    send_turn(project, sid, "my order is late", "thanks, it ships today")
    answered = len(judge.answered())
    response = project.http.post(
        "/api/v1/evaluation-runs", json={"evaluator": "resolved", "session_id": sid}
    )
    assert response.status_code == 202, response.text
    wait_for(
        lambda: [r for r in runs(project, session_id=sid) if r["status"] == "running"],
        what="the run being judged",
    )
    assert project.http.delete(f"/api/v1/sessions/{sid}").status_code == 200
    wait_for(lambda: len(judge.answered()) > answered, what="the judge's answer")
    time.sleep(1.0)  # the runner's write, had it written one
    assert project.get("/api/v1/scores", session_id=sid)["items"] == []
    assert runs(project, session_id=sid) == []


def test_a_project_flooding_a_slow_judge_does_not_hold_up_another_projects_runs(tmp_path, judge):
    """One project queues 24 runs against a judge that answers only after 20 s, and
    takes both judging places; another project's run, queued after them, is judged at
    once in the runner's spare place (one place more, for a project with no run in
    flight), before any of the flood's runs ends."""
    process = _start(
        tmp_path,
        "fair",
        *("--evaluation-concurrency", "2", "--judge-timeout-seconds", "60"),
        *("--judge-attempts", "1"),
    )
    flood = ProjectClient(process.base_url, process.new_key("flood"), process)
    quiet = ProjectClient(process.base_url, process.new_key("quiet"), process)
    try:
        with FakeJudge() as slow:
            slow.mode, slow.hang_seconds = "hang", 20.0
            create(flood, evaluator(slow, online=False))
            create(quiet, evaluator(judge, online=False))
            send_turn(flood, "flooding", "hello", "hi")
            for _ in range(24):
                response = flood.http.post(
                    "/api/v1/evaluation-runs",
                    json={"evaluator": "resolved", "session_id": "flooding"},
                )
                assert response.status_code == 202, response.text
            wait_for(lambda: len(runs(flood, status="running")) == 2, what="both places taken")
            send_turn(quiet, "waiting", "hello", "thanks")
            response = quiet.http.post(
                "/api/v1/evaluation-runs", json={"evaluator": "resolved", "session_id": "waiting"}
            )
            assert response.status_code == 202, response.text
            # Oldest first it waited for all 24 (24 × 20 s / 2 places); fairly shared but
            # with no spare place, for the first of the flood's runs to end (20 s).
            (done,) = wait_for(lambda: runs(quiet, status="done"), timeout=15, what="judged")
            flooding = runs(flood, limit=100)
            assert [r for r in flooding if r["status"] in ("done", "failed")] == []
            # The spare place is one: the flood never has more than its two.
            assert len([r for r in flooding if r["status"] == "running"]) == 2
            assert done["status"] == "done"
    finally:
        stop_server(process)


# --- sessions that ended before an evaluator existed ----------------------------------


def test_a_new_online_evaluator_can_also_judge_the_sessions_that_ended_already(
    project, judge, evaluating
):
    support = {"threadline.tags": '["support"]'}
    # Another project's ended session, on the same server: never this evaluator's.
    other = ProjectClient(evaluating.base_url, evaluating.new_key("other-existing"), evaluating)
    send_turn(other, "ended-elsewhere", "hello", "thanks", ago_s=600, **support)
    other.http.close()
    send_turn(project, "ended-a", "hello", "thanks", ago_s=600, **support)
    send_turn(project, "ended-b", "hello", "bye", ago_s=1200, **support)
    send_turn(project, "ended-untagged", "hello", "thanks", ago_s=600)
    send_turn(project, "ended-long-ago", "hello", "thanks", ago_s=3 * 3600, **support)
    only_support = {"tags": ["support"]}
    # Off by default: an evaluator watches only the sessions that end from now on.
    create(project, evaluator(judge, "plain", filter=only_support))
    assert runs(project, evaluator="plain") == []
    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    body = evaluator(judge, "existing", filter=only_support, judge_existing_since=since)
    made = create(project, body)
    assert "judge_existing_since" not in made  # what to judge at once is not stored
    judged = wait_for(
        lambda: (
            (found := runs(project, evaluator="existing", status="done"))
            and len(found) == 2
            and found
        ),
        what="both ended sessions judged",
    )
    assert sorted(r["session_id"] for r in judged) == ["ended-a", "ended-b"]
    # Asked again (a PUT replacing it): the same runs, none queued twice.
    again = project.http.put("/api/v1/evaluators/existing", json=body)
    assert again.status_code == 200, again.text
    assert len(runs(project, evaluator="existing")) == 2
    # Refused, and nothing stored: an offline evaluator, a window past 30 days.
    for name, overrides in (
        ("offline", {"online": False, "judge_existing_since": since}),
        (
            "too-far",
            {"judge_existing_since": (datetime.now(UTC) - timedelta(days=31)).isoformat()},
        ),
    ):
        refused = project.http.post("/api/v1/evaluators", json=evaluator(judge, name, **overrides))
        assert refused.status_code == 400 and "judge_existing_since" in refused.text, refused.text
        assert project.http.get(f"/api/v1/evaluators/{name}").status_code == 404
    # The form offers it too, on a new evaluator.
    form = {
        "name": "formed",
        "prompt": "Resolved?",
        "base_url": judge.base_url,
        "model": "gpt-4o-mini",
        "api_key_env": KEY_VARIABLE,
        "score_type": "boolean",
        "tags": "support",
        "online": "on",
    }
    page = httpx.Client(
        base_url=project.process.base_url,
        cookies={"threadline_session": project.api_key},
        headers={"Origin": project.process.base_url},
    )
    with page:
        bad = page.post("/evaluators", data={**form, "judge_existing": "2d"})
        assert bad.status_code == 400 and "judge_existing" in bad.text
        made_by_form = page.post("/evaluators", data={**form, "judge_existing": "1h"})
        assert made_by_form.status_code == 303, made_by_form.text
    queued = runs(project, evaluator="formed")
    assert sorted(r["session_id"] for r in queued) == ["ended-a", "ended-b"]
    assert {r["trigger"] for r in queued} == {"online"}


def test_a_project_may_have_only_so_many_runs_waiting(tmp_path, judge):
    """With evaluation_max_waiting_runs at 3 (and nothing judged), a request that would
    queue more runs than there is room for is refused with 409, and nothing changes:
    an evaluator asked to judge the ended sessions, an on-demand run, the form."""
    process = _start(
        tmp_path, "bounded", "--evaluation-concurrency", "0", "--evaluation-max-waiting-runs", "3"
    )
    project = ProjectClient(process.base_url, process.new_key("bounded"), process)
    page = httpx.Client(
        base_url=process.base_url,
        cookies={"threadline_session": project.api_key},
        headers={"Origin": process.base_url},
    )
    try:
        for i in range(3):
            send_turn(project, f"ended-{i}", "hello", "thanks", ago_s=600)
        since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
        create(project, evaluator(judge, "first", judge_existing_since=since))
        assert len(runs(project, status="pending")) == 3
        refused = project.http.post(
            "/api/v1/evaluators", json=evaluator(judge, "second", judge_existing_since=since)
        )
        assert refused.status_code == 409, refused.text
        assert "evaluation_max_waiting_runs" in refused.json()["error"]
        assert project.http.get("/api/v1/evaluators/second").status_code == 404
        one = project.http.post(
            "/api/v1/evaluation-runs", json={"evaluator": "first", "session_id": "ended-0"}
        )
        assert one.status_code == 409, one.text
        form = {
            "name": "formed",
            "prompt": "Resolved?",
            "base_url": judge.base_url,
            "model": "gpt-4o-mini",
            "score_type": "boolean",
            "online": "on",
            "judge_existing": "1h",
        }
        by_form = page.post("/evaluators", data=form)
        assert by_form.status_code == 409 and "at most 3 may wait" in by_form.text
        assert len(runs(project, status="pending")) == 3
        # Its runs fail with it: room again.
        assert project.http.delete("/api/v1/evaluators/first").status_code == 204
        create(project, evaluator(judge, "second", judge_existing_since=since))
        assert len(runs(project, status="pending")) == 3
    finally:
        page.close()
        project.http.close()
        stop_server(process)


def test_requests_at_once_leave_no_more_runs_waiting_than_the_bound(tmp_path, judge):
    """Twelve Evaluate requests at once, each one run, with room for 3: three are
    queued, nine refused. Checked apart from the queueing, each request saw room for
    itself and more were queued (16 at once with room for 5 queued 11)."""
    process = _start(
        tmp_path, "raced", "--evaluation-concurrency", "0", "--evaluation-max-waiting-runs", "3"
    )
    project = ProjectClient(process.base_url, process.new_key("raced"), process)
    try:
        for i in range(12):
            send_turn(project, f"ended-{i}", "hello", "thanks", ago_s=600)
        create(project, evaluator(judge, "raced", online=False))
        start = threading.Barrier(12)

        def evaluate(i: int) -> int:
            with httpx.Client(base_url=process.base_url, headers=project.http.headers) as own:
                start.wait()
                body = {"evaluator": "raced", "session_id": f"ended-{i}"}
                return own.post("/api/v1/evaluation-runs", json=body, timeout=60).status_code

        with ThreadPoolExecutor(12) as pool:
            answers = sorted(pool.map(evaluate, range(12)))
        assert answers == [202] * 3 + [409] * 9, answers
        assert len(runs(project, status="pending")) == 3
    finally:
        project.http.close()
        stop_server(process)
