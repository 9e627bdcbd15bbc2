"""``threadline evaluators list|create|delete`` and ``threadline evaluate`` against the
store of a running server, judged by the local fake judge."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

from tests.conftest import ProjectClient, new_project_key, start_server, stop_server
from tests.integrations.fake_judge import FakeJudge
from tests.server.test_evaluations import KEY_VARIABLE, runs, send_turn
from threadline.server.store.sqlite import SQLiteStore
from threadline.server.web.evaluators import NEW_EVALUATOR

pytestmark = pytest.mark.slow


def threadline(*args: str, data_dir) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "threadline.server", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, KEY_VARIABLE: "sk-cli"},
    )


def test_evaluators_are_managed_and_past_sessions_judged_from_the_command_line(tmp_path):
    data = tmp_path / "data"
    # This server judges nothing itself: the command line does.
    process = start_server(data, tmp_path / "server.log", "--evaluation-concurrency", "0")
    try:
        name = f"cli-{uuid.uuid4().hex[:6]}"
        project = ProjectClient(process.base_url, process.new_key(name), process)
        support = '["support"]'
        for i in range(4):
            send_turn(project, f"s{i}", "It broke", "Fixed, thanks", **{"threadline.tags": support})
        send_turn(project, "other", "hello", "hi")
        with FakeJudge() as judge:
            created = threadline(
                "evaluators", "create", "resolved", "--project", name,
                "--prompt", "Was the problem resolved?\n{{transcript}}",
                "--base-url", judge.base_url, "--model", "gpt-4o-mini",
                "--api-key-env", KEY_VARIABLE, "--offline",
                data_dir=data,
            )  # fmt: skip
            assert created.returncode == 0, created.stderr
            assert (
                "Evaluator 'resolved' (sessions, gpt-4o-mini) judges on demand." in created.stdout
            )
            again = threadline(
                "evaluators", "create", "resolved", "--project", name, "--prompt", "x",
                "--base-url", judge.base_url, "--model", "m", data_dir=data,
            )  # fmt: skip
            assert again.returncode == 1 and "exists" in again.stderr

            judged = threadline(
                "evaluate", "resolved", "--project", name, "--since", "1d",
                "--filter", "tag=support", data_dir=data,
            )  # fmt: skip
            assert judged.returncode == 0, judged.stderr
            assert "4 judged, 0 failed" in judged.stdout
            assert "4/4" in judged.stderr  # the progress bar's last state
            assert len(judge.answered()) == 4
            assert judge.answered()[0].headers["Authorization"] == "Bearer sk-cli"
            done = runs(project, evaluator="resolved")
            assert sorted(r["session_id"] for r in done) == ["s0", "s1", "s2", "s3"]
            assert {r["status"] for r in done} == {"done"}
            score = project.get(f"/api/v1/scores/{done[0]['score_id']}")
            assert score["source"] == "eval" and score["value"] is True

            # Nothing matches: it says what the sessions had to match, the usual cause.
            none = threadline(
                "evaluate", "resolved", "--project", name, "--since", "1d",
                "--filter", "tag=billing", "--filter", "user=nobody", data_dir=data,
            )  # fmt: skip
            assert none.returncode == 0, none.stderr
            assert "No session to judge since " in none.stdout
            assert none.stdout.rstrip().endswith(" UTC matching tag=billing user=nobody.")

            judge.mode = "reject"
            failed = threadline(
                "evaluate", "resolved", "--project", name, "--since", "1d",
                "--filter", "user=ann", "--filter", "tag=support", data_dir=data,
            )  # fmt: skip
            assert failed.returncode == 1
            assert "0 judged, 4 failed" in failed.stdout
            assert "4 × the judge answered HTTP 400" in failed.stdout

        listing = threadline("evaluators", "list", "--project", name, data_dir=data)
        assert listing.returncode == 0, listing.stderr
        header, line = listing.stdout.splitlines()
        assert header.split("\t")[4:7] == ["done", "failed", "waiting"]
        fields = line.split("\t")
        assert fields[:4] == ["resolved", "session", "on demand", "gpt-4o-mini"]
        assert fields[4:7] == ["4", "4", "0"]
        assert fields[8].startswith("$")

        bad = threadline(
            "evaluate", "resolved", "--project", name, "--filter", "colour=red", data_dir=data
        )
        assert bad.returncode == 1 and "use tag=..., user=... or metadata.KEY=..." in bad.stderr
        deleted = threadline("evaluators", "delete", "resolved", "--project", name, data_dir=data)
        assert deleted.returncode == 0 and "Deleted" in deleted.stdout
        gone = threadline("evaluators", "delete", "resolved", "--project", name, data_dir=data)
        assert gone.returncode == 1 and "no evaluator" in gone.stderr
    finally:
        stop_server(process)


def test_evaluators_create_can_judge_the_sessions_that_ended_already(tmp_path):
    """``--judge-existing-since``, as the API's ``judge_existing_since``: the ended
    sessions' runs are queued for the server; a judge URL with a password is refused."""
    data = tmp_path / "data"
    process = start_server(data, tmp_path / "server.log", "--evaluation-concurrency", "0")
    try:
        name = f"cli-{uuid.uuid4().hex[:6]}"
        project = ProjectClient(process.base_url, process.new_key(name), process)
        send_turn(project, "ended", "It broke", "Fixed", ago_s=600)
        send_turn(project, "ended-too", "It broke", "Fixed", ago_s=900)
        send_turn(project, "active", "It broke", "Looking")
        common = ("--project", name, "--prompt", "Resolved?", "--model", "m")
        with FakeJudge() as judge:
            secret = judge.base_url.replace("http://", "http://ann:pw@")
            refused = threadline(
                "evaluators", "create", "leaky", *common, "--base-url", secret, data_dir=data
            )
            assert refused.returncode == 1 and "password" in refused.stderr
            offline = threadline(
                "evaluators", "create", "off", *common, "--base-url", judge.base_url,
                "--offline", "--judge-existing-since", "1h", data_dir=data,
            )  # fmt: skip
            assert offline.returncode == 1 and "online evaluator" in offline.stderr
            assert "threadline evaluate NAME --since" in offline.stderr  # the CLI's way
            created = threadline(
                "evaluators", "create", "resolved", *common, "--base-url", judge.base_url,
                "--judge-existing-since", "1h", "--session-idle-seconds", "60", data_dir=data,
            )  # fmt: skip
            assert created.returncode == 0, created.stderr
            assert "2 runs queued for the sessions ended since" in created.stdout
        queued = runs(project, evaluator="resolved")
        assert sorted(r["session_id"] for r in queued) == ["ended", "ended-too"]
        assert {(r["status"], r["trigger"]) for r in queued} == {("pending", "online")}
        names = [e["name"] for e in project.get("/api/v1/evaluators")["items"]]
        assert names == ["resolved"]
    finally:
        stop_server(process)


def test_evaluators_create_without_a_prompt_takes_the_forms(tmp_path):
    """Without ``--prompt``, a boolean evaluator gets the prompt the Evaluators form
    starts from; a numeric or categorical one must be given its own (the default asks
    for true or false)."""
    data = tmp_path / "data"
    store_url = f"sqlite:///{data / 'threadline.db'}"
    data.mkdir()
    new_project_key(store_url, "p")
    common = ("--project", "p", "--base-url", "http://127.0.0.1:9/v1", "--model", "m")
    made = threadline("evaluators", "create", "resolved", *common, data_dir=data)
    assert made.returncode == 0, made.stderr
    for kind, more in (
        ("numeric", ("--min", "1", "--max", "5")),
        ("categorical", ("--labels", "a,b")),
    ):
        refused = threadline(
            "evaluators", "create", kind, *common, "--score-type", kind, *more, data_dir=data
        )
        assert (
            refused.returncode == 1
            and f"--prompt (or --prompt-file) for a {kind}" in refused.stderr
        )
    store = SQLiteStore(data / "threadline.db")
    try:
        (project,) = store.list_projects()
        evaluator = store.get_evaluator(project.id, "resolved")
        assert evaluator is not None and evaluator.prompt == NEW_EVALUATOR["prompt"]
        assert evaluator.score.data_type == "boolean"
        assert [e.name for e in store.list_evaluators(project.id)] == ["resolved"]
    finally:
        store.close()


def test_evaluate_refuses_when_the_server_lacks_the_judge_key(tmp_path, monkeypatch):
    """The key set only in the command's environment: a server on the same store would
    claim runs and fail them ("not set on the server"). The server says whether the
    variable is set (never its value), and ``evaluate`` refuses before queueing."""
    variable = "THREADLINE_JUDGE_COMMAND_ONLY_KEY"
    assert variable not in os.environ  # so the server, started from here, lacks it
    data = tmp_path / "data"
    process = start_server(data, tmp_path / "server.log")
    try:
        name = f"cli-{uuid.uuid4().hex[:6]}"
        key = process.new_key(name)
        project = ProjectClient(process.base_url, key, process)
        send_turn(project, "s0", "It broke", "Fixed, thanks")
        with FakeJudge() as judge:
            created = threadline(
                "evaluators", "create", "resolved", "--project", name, "--prompt", "{{transcript}}",
                "--base-url", judge.base_url, "--model", "m", "--api-key-env", variable,
                "--offline", data_dir=data,
            )  # fmt: skip
            assert created.returncode == 0, created.stderr
            assert "warning" not in created.stderr  # no client settings: no server asked
            shown = project.get("/api/v1/evaluators/resolved")
            assert shown["judge_key_set"] is False and "sk-" not in str(shown)
            # With the client settings, creating one asks the server, and warns.
            warned = subprocess.run(
                [sys.executable, "-m", "threadline.server", "evaluators", "create", "polite",
                 "--project", name, "--prompt", "{{transcript}}", "--base-url", judge.base_url,
                 "--model", "m", "--api-key-env", variable, "--data-dir", str(data)],
                capture_output=True, text=True, timeout=120, check=False,
                env={**os.environ, "THREADLINE_BASE_URL": process.base_url,
                     "THREADLINE_API_KEY": key},
            )  # fmt: skip
            assert warned.returncode == 0, warned.stderr
            assert (
                f"warning: the server at {process.base_url} does not have {variable} set: it"
                " fails each run of 'polite' it judges"
            ) in warned.stderr
            assert project.http.delete("/api/v1/evaluators/polite").status_code == 204

            def evaluate(**env: str) -> subprocess.CompletedProcess[str]:
                return subprocess.run(
                    [sys.executable, "-m", "threadline.server", "evaluate", "resolved",
                     "--project", name, "--since", "1d", "--data-dir", str(data)],
                    capture_output=True, text=True, timeout=120, check=False,
                    env={**os.environ, **env},
                )  # fmt: skip

            client = {"THREADLINE_BASE_URL": process.base_url, "THREADLINE_API_KEY": key}
            here_only = evaluate(**client, **{variable: "sk-here"})
            assert here_only.returncode == 1
            assert f"the server at {process.base_url} does not have {variable} set" in (
                here_only.stderr
            )
            nowhere = evaluate(**client)
            assert nowhere.returncode == 1
            assert f"{variable} is not set in this command's environment" in nowhere.stderr
            assert runs(project, evaluator="resolved") == []  # nothing queued, nothing failed
            assert judge.answered() == []

            # The key set on the server too: it says so, and the command judges.
            stop_server(process)
            monkeypatch.setenv(variable, "sk-here")
            process = start_server(data, tmp_path / "server-with-key.log")
            project = ProjectClient(process.base_url, key, process)
            assert project.get("/api/v1/evaluators/resolved")["judge_key_set"] is True
            client["THREADLINE_BASE_URL"] = process.base_url
            both = evaluate(**client)
            assert both.returncode == 0, both.stderr
            assert "1 judged, 0 failed" in both.stdout
    finally:
        stop_server(process)
