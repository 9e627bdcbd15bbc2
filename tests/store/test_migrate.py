"""``threadline migrate`` end to end: a SQLite server's data copied into ClickHouse (the
chDB endpoint); a server on the copy answers the API like the original did, and the
original's keys sign in there."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests import otlp
from tests.conftest import start_server, stop_server
from tests.store.chdb_http import own_database_url
from tests.store.test_clickhouse_servers import workload


def _threadline(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "threadline.server", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _api_view(base_url: str, key: str, trace_ids: list[str]) -> dict:
    with httpx.Client(
        base_url=base_url, timeout=30, headers={"Authorization": f"Bearer {key}"}
    ) as api:

        def get(path: str, **params: object) -> object:
            response = api.get(path, params=params)
            assert response.status_code == 200, response.text
            return response.json()

        sessions = get("/api/v1/sessions", limit=100, window="all")
        return {
            "sessions": sessions,
            "by_cost": get("/api/v1/sessions", limit=100, sort="cost", window="all"),
            "details": [get(f"/api/v1/sessions/{s['session_id']}") for s in sessions["items"]],
            "traces": [get(f"/api/v1/traces/{t}") for t in trace_ids],
            "users": get("/api/v1/users"),
            "scores": get("/api/v1/scores", limit=100),
            "score_configs": get("/api/v1/score-configs"),
            "notes": {
                s["session_id"]: get("/api/v1/notes", session_id=s["session_id"])
                for s in sessions["items"]
            },
            "by_score": get("/api/v1/sessions", score="quality>=0.3", window="all"),
            "unscored": get("/api/v1/traces", limit=100, missing_score="helpful", window="all"),
        }


def _annotate(base_url: str, key: str, trace_ids: list[str]) -> None:
    """Scores (one replaced, one deleted, one on a span), a score configuration and
    notes, through the API."""
    with httpx.Client(
        base_url=base_url, timeout=30, headers={"Authorization": f"Bearer {key}"}
    ) as api:

        def ok(response: httpx.Response) -> None:
            assert response.status_code < 300, response.text

        ok(
            api.put(
                "/api/v1/score-configs/quality",
                json={"name": "quality", "data_type": "numeric", "min_value": 0, "max_value": 1},
            )
        )
        root = api.get(f"/api/v1/traces/{trace_ids[0]}").json()["spans"][0]["span_id"]
        ok(
            api.post(
                "/api/v1/scores",
                json=[
                    {"id": "q0", "name": "quality", "value": 0.25, "session_id": "session-0"},
                    {"id": "q1", "name": "quality", "value": 0.5, "session_id": "session-1"},
                    {"name": "helpful", "value": True, "trace_id": trace_ids[0]},
                    {"name": "helpful", "value": False, "trace_id": trace_ids[0], "span_id": root},
                    {"name": "topic", "value": "billing", "trace_id": trace_ids[1]},
                    {"id": "gone", "name": "quality", "value": 1, "session_id": "session-2"},
                ],
            )
        )
        ok(
            api.post(
                "/api/v1/scores",
                json={
                    "id": "q0",
                    "name": "quality",
                    "value": 0.75,
                    "session_id": "session-0",
                    "comment": "second look",
                },
            )
        )
        ok(api.delete("/api/v1/scores/gone"))
        for body in ("resolved", "follow up with billing"):
            ok(api.post("/api/v1/notes", json={"session_id": "session-0", "body": body}))


@pytest.mark.clickhouse
@pytest.mark.slow
def test_migrate_sqlite_into_clickhouse(tmp_path: Path):
    original = start_server(tmp_path / "data", tmp_path / "sqlite.log", "--grpc-port", "0")
    try:
        key = original.new_key("migrated")
        requests, traces, _ = workload(random.Random(8))
        # A span with long payloads (the SQLite store keeps those compressed).
        long_trace = otlp.new_trace_id()
        prompt = "a prompt that is long enough to be stored compressed " * 40
        requests.append(
            [
                otlp.span(
                    long_trace,
                    otlp.new_span_id(),
                    attributes={
                        "threadline.session.id": "session-0",
                        "input.value": prompt,
                        "output.value": prompt.upper(),
                    },
                )
            ]
        )
        traces[long_trace] = {}
        for spans in requests:
            response = httpx.post(
                original.base_url + "/v1/traces",
                content=otlp.request(spans).SerializeToString(),
                headers={
                    "Authorization": f"Bearer {key}",
                    "Content-Type": "application/x-protobuf",
                },
            )
            assert response.status_code == 200
        _annotate(original.base_url, key, sorted(traces))
        evaluator = {
            "name": "resolved",
            "prompt": "Was it resolved?",
            "judge": {"base_url": "http://127.0.0.1:9/v1", "model": "gpt-4o-mini"},
            "score": {"name": "resolved", "data_type": "boolean"},
            "filter": {"tags": ["support"]},
            "online": False,
        }
        response = httpx.post(
            original.base_url + "/api/v1/evaluators",
            json=evaluator,
            headers={"Authorization": f"Bearer {key}"},
        )
        assert response.status_code == 201, response.text
        # Share links: one open, one revoked.
        auth = {"Authorization": f"Bearer {key}"}
        links = [
            httpx.post(
                original.base_url + "/api/v1/shares",
                json={"kind": "session", "target_id": "session-0", "hide_metadata": ["k"]},
                headers=auth,
            ).json()
            for _ in range(2)
        ]
        revoked = httpx.delete(original.base_url + f"/api/v1/shares/{links[1]['id']}", headers=auth)
        assert revoked.status_code == 200
        shares_before = httpx.get(original.base_url + "/api/v1/shares", headers=auth).json()
        # The project's data rules.
        rules = {"detectors": ["email"], "patterns": [{"name": "ticket", "regex": "TCK-\\d+"}]}
        for setting, value in (("retention", {"days": 36_500}), ("redaction", rules)):
            put = httpx.put(
                f"{original.base_url}/api/v1/settings/{setting}", json=value, headers=auth
            )
            assert put.status_code == 200, put.text
        settings_before = {
            s: httpx.get(f"{original.base_url}/api/v1/settings/{s}", headers=auth).json()
            for s in ("retention", "redaction")
        }
        shared_page = httpx.get(original.base_url + links[0]["path"]).text
        before = _api_view(original.base_url, key, sorted(traces))
    finally:
        stop_server(original)
    assert len(before["sessions"]["items"]) == 6
    assert len(before["scores"]["items"]) == 5 and len(before["notes"]["session-0"]["items"]) == 2
    assert [s["session_id"] for s in before["by_score"]["items"]] == ["session-1", "session-0"]
    assert len(before["unscored"]["items"]) == len(traces) - 1
    allowed = _threadline(
        "projects",
        "allow-origin",
        "--project",
        "migrated",
        "--data-dir",
        str(tmp_path / "data"),
        "https://app.example.com",
    )
    assert allowed.returncode == 0, allowed.stderr
    (long_span,) = next(t for t in before["traces"] if t["trace_id"] == long_trace)["spans"]
    assert long_span["input"] == prompt and long_span["output"] == prompt.upper()

    source = f"sqlite://{tmp_path / 'data' / 'threadline.db'}"
    target = own_database_url(tmp_path)
    copied = _threadline("migrate", "--from", source, "--to", target, "--batch-size", "7")
    assert copied.returncode == 0, copied.stderr
    spans = sum(len(r) for r in requests)
    assert f"and {spans} spans ({spans} new to the target), 5 scores," in copied.stdout
    assert "1 score configurations and 2 notes; 1 evaluators" in copied.stdout
    assert "; the data rules of 1 projects; 2 share links." in copied.stdout
    assert f"{spans}/{spans}" in copied.stderr  # the progress bar, complete

    again = _threadline("migrate", "--from", source, "--to", target)
    assert again.returncode == 0 and f"({0} new to the target)" in again.stdout

    moved = start_server(
        tmp_path / "unused", tmp_path / "clickhouse.log", "--store", target, "--grpc-port", "0"
    )
    try:
        assert _api_view(moved.base_url, key, sorted(traces)) == before
        shares = httpx.get(
            moved.base_url + "/api/v1/shares", headers={"Authorization": f"Bearer {key}"}
        )
        assert shares.json() == shares_before
        settings = {
            s: httpx.get(
                f"{moved.base_url}/api/v1/settings/{s}", headers={"Authorization": f"Bearer {key}"}
            ).json()
            for s in ("retention", "redaction")
        }
        assert settings == settings_before
        assert httpx.get(moved.base_url + links[0]["path"]).text == shared_page
        assert httpx.get(moved.base_url + links[1]["path"]).status_code == 404
        (copied_evaluator,) = httpx.get(
            moved.base_url + "/api/v1/evaluators", headers={"Authorization": f"Bearer {key}"}
        ).json()["items"]
        assert {k: copied_evaluator[k] for k in evaluator} == {
            **evaluator,
            "judge": {**evaluator["judge"], "api_key_env": None},
            "score": {
                **evaluator["score"],
                "min_value": None,
                "max_value": None,
                "labels": [],
                "description": None,
            },
            "filter": {"tags": ["support"], "metadata": {}, "user_id": None},
        }
    finally:
        stop_server(moved)
    origins = _threadline("projects", "origins", "--project", "migrated", "--store", target)
    assert origins.returncode == 0 and origins.stdout.split() == ["https://app.example.com"]


def test_migrate_refuses_a_missing_source(tmp_path: Path):
    result = _threadline(
        "migrate",
        "--from",
        f"sqlite://{tmp_path / 'nothing.db'}",
        "--to",
        own_database_url(tmp_path),
    )
    assert result.returncode != 0 and "no SQLite store at" in result.stderr
    assert not (tmp_path / "nothing.db").exists()
