"""Each judge key goes only to the base URLs ``judge_key_urls`` binds it to: an
evaluator naming a key for another URL is refused (API, form, CLI's check), and one
stored before the binding fails its runs without the key ever being sent."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import ProjectClient, start_server, stop_server
from tests.integrations.fake_judge import FakeJudge
from tests.server.test_evaluations import finished_runs, send_turn
from threadline.server.errors import ConfigurationError
from threadline.server.evaluation.key_urls import KeyUrls

KEY = "THREADLINE_JUDGE_TEST_KEY"
SECRET = "sk-judge-secret"


def test_a_bound_url_allows_its_server_and_the_paths_under_its_path():
    urls = KeyUrls.parse(
        f"{KEY}=https://api.openai.com/v1,http://127.0.0.1:8080 ; THREADLINE_JUDGE_B=https://b.example"
    )
    for allowed in (
        "https://api.openai.com/v1",
        "https://API.openai.com:443/v1/",
        "https://api.openai.com/v1/deployments/x",
        "http://127.0.0.1:8080/v1",
    ):
        assert urls.refusal(KEY, allowed) is None, allowed
    for refused in (
        "https://api.openai.com/v10",
        "https://api.openai.com",
        "http://api.openai.com/v1",
        "https://api.openai.com:8443/v1",
        "https://api.openai.com.evil.example/v1",
        "https://api.openai.com@evil.example/v1",
        "http://127.0.0.1:8081/v1",
        "https://b.example",
        # Dot segments a server decodes, then climbs out of /v1 by.
        "https://api.openai.com/v1/%2e%2e/admin",
        "https://api.openai.com/v1/.%2E/admin",
        "https://api.openai.com/v1/..%2fadmin",
        "https://api.openai.com/v1/%2e%2e%5cadmin",
        "https://api.openai.com/v1/%2e/x",
        "https://api.openai.com/v1/../admin",
        # Look-alikes: a trailing dot, another script's letter, userinfo tricks.
        "https://api.openai.com./v1",
        "https://аpi.openai.com/v1",
        "https://evil.example#@api.openai.com/v1",
        "https://evil.example?@api.openai.com/v1",
    ):
        reason = urls.refusal(KEY, refused)
        assert reason is not None and "may be sent only to" in reason, refused
    unbound = urls.refusal("THREADLINE_JUDGE_OTHER", "https://api.openai.com/v1")
    assert unbound is not None and "bound to no base URL" in unbound
    # Not configured: any key to any URL, as before the setting existed.
    assert KeyUrls.parse("").refusal(KEY, "https://evil.example") is None


@pytest.mark.parametrize(
    "text",
    [
        "https://api.openai.com/v1",
        "OPENAI_API_KEY=https://api.openai.com/v1",  # not a judge key variable
        f"{KEY}=",
        f"{KEY}=ftp://files.example",
        f"{KEY}=api.openai.com/v1",
        "THREADLINE_JUDGE_TIMEOUT_SECONDS=https://a.example",  # a setting, not a key
    ],
)
def test_a_binding_that_cannot_be_read_stops_the_start(text):
    with pytest.raises(ConfigurationError):
        KeyUrls.parse(text)


@pytest.fixture
def judges() -> Iterator[tuple[FakeJudge, FakeJudge]]:
    with FakeJudge() as trusted, FakeJudge() as other:
        yield trusted, other


def _evaluator(base_url: str, name: str = "resolved") -> dict:
    return {
        "name": name,
        "prompt": "Resolved?",
        "judge": {"base_url": base_url, "model": "gpt-4o-mini", "api_key_env": KEY},
        "score": {"name": name, "data_type": "boolean"},
        "online": False,
    }


def _send_session(project: ProjectClient, session_id: str) -> None:
    send_turn(project, session_id, "hello", "thanks")


def _judged(project: ProjectClient, name: str, session_id: str) -> dict:
    response = project.http.post(
        "/api/v1/evaluation-runs", json={"evaluator": name, "session_id": session_id}
    )
    assert response.status_code == 202, response.text
    (run,) = finished_runs(project, session_id, 1)
    return run


def test_a_key_is_sent_only_to_the_urls_it_is_bound_to(tmp_path, judges, monkeypatch):
    trusted, other = judges
    monkeypatch.setenv(KEY, SECRET)
    # Before the binding: an evaluator sending the key to another URL could be defined
    # (the server warns that keys are unbound).
    process = start_server(tmp_path / "data", tmp_path / "before.log")
    try:
        project = ProjectClient(process.base_url, process.new_key("keys"), process)
        early = project.http.post("/api/v1/evaluators", json=_evaluator(other.base_url, "early"))
        assert early.status_code == 201, early.text
    finally:
        stop_server(process)
    assert f"THREADLINE_JUDGE_KEY_URLS is not set: the judge keys {KEY}" in process.log()

    monkeypatch.setenv("THREADLINE_JUDGE_KEY_URLS", f"{KEY}={trusted.base_url}")
    process = start_server(tmp_path / "data", tmp_path / "after.log")
    try:
        project = ProjectClient(process.base_url, project.api_key, process)
        refused = project.http.post("/api/v1/evaluators", json=_evaluator(other.base_url))
        assert refused.status_code == 400, refused.text
        assert f"{KEY} may be sent only to {trusted.base_url}" in refused.text
        replaced = project.http.put(
            "/api/v1/evaluators/early", json=_evaluator(other.base_url, "early")
        )
        assert replaced.status_code == 400, replaced.text
        # The form refuses it too (with the page's cookie and an Origin of its own).
        form = "&".join(
            [
                "name=formed",
                "prompt=p",
                f"base_url={other.base_url}",
                "model=m",
                "score_type=boolean",
                f"api_key_env={KEY}",
            ]
        )
        page = httpx.post(
            process.base_url + "/evaluators",
            content=form.encode(),
            cookies={"threadline_session": project.api_key},
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Origin": process.base_url,
            },
        )
        assert page.status_code == 400 and "may be sent only to" in page.text, page.text
        assert project.http.get("/api/v1/evaluators/formed").status_code == 404
        # The bound URL works, the key sent with each call.
        created = project.http.post("/api/v1/evaluators", json=_evaluator(trusted.base_url))
        assert created.status_code == 201, created.text
        _send_session(project, "s1")
        assert _judged(project, "resolved", "s1")["status"] == "done"
        assert trusted.answered()[-1].headers["Authorization"] == f"Bearer {SECRET}"
        # The bound URL redirecting elsewhere: the call is not followed (nor the key).
        trusted.mode, trusted.redirect_to = "redirect", other.base_url
        _send_session(project, "s3")
        redirected = _judged(project, "resolved", "s3")
        assert redirected["status"] == "failed" and "307" in redirected["reason"], redirected
        trusted.mode = "ok"
        # The evaluator stored before the binding: its run fails, the key never sent.
        _send_session(project, "s2")
        run = _judged(project, "early", "s2")
        assert run["status"] == "failed" and run["attempts"] == 0, run
        assert f"{KEY} may be sent only to {trusted.base_url}" in run["reason"]
        assert other.calls == []
        assert "is not set" not in process.log()
    finally:
        stop_server(process)
