"""``threadline demo``: the settings the banner exports, real progress, honest failure."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import httpx
import pytest

from tests.conftest import ServerProcess, free_port

pytestmark = pytest.mark.slow


def _demo(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("THREADLINE_")}
    return subprocess.run(
        [sys.executable, "-m", "threadline.server", "demo", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**clean, **(env or {})},
    )


def _sessions(server: ServerProcess, key: str) -> list[dict]:
    answer = httpx.get(
        server.base_url + "/api/v1/sessions",
        params={"limit": 100},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["items"]


def test_demo_reads_the_environment_and_a_second_run_adds_new_sessions(threadline_process):
    key = threadline_process.new_key("demo-twice")
    env = {"THREADLINE_BASE_URL": threadline_process.base_url, "THREADLINE_API_KEY": key}
    first = _demo("--sessions", "3", env=env)
    assert first.returncode == 0, first.stderr
    assert "Sent 3 sessions" in first.stdout and "acknowledged" in first.stdout
    # The bar counts acknowledged exports: it ends at what the server has.
    assert "3/3" in first.stderr
    sessions = _sessions(threadline_process, key)
    assert len(sessions) == 3
    turns = sorted(s["trace_count"] for s in sessions)

    second = _demo("--sessions", "3", env=env)
    assert second.returncode == 0, second.stderr
    sessions = _sessions(threadline_process, key)
    # Three more conversations, not every conversation doubled.
    assert len(sessions) == 6
    assert sorted(s["trace_count"] for s in sessions) == sorted(turns * 2)


def test_demo_with_a_wrong_key_fails_and_says_so(threadline_process):
    result = _demo(
        "--sessions",
        "4",
        env={
            "THREADLINE_BASE_URL": threadline_process.base_url,
            "THREADLINE_API_KEY": "tl_" + "x" * 43,
        },
    )
    assert result.returncode != 0
    assert "refused the API key" in result.stderr and "--api-key" in result.stderr
    assert "Sent" not in result.stdout
    assert "4/4" not in result.stderr  # no progress claimed for what was not accepted
    assert "Traceback" not in result.stderr


def test_demo_with_a_wrong_port_fails_and_says_so():
    base_url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result = _demo("--base-url", base_url, "--api-key", "tl_" + "x" * 43, "--sessions", "2")
    assert result.returncode != 0
    assert re.search(r"cannot reach a server at http://127\.0\.0\.1:\d+/v1/traces", result.stderr)
    assert "THREADLINE_BASE_URL" in result.stderr
    assert "Sent" not in result.stdout and "Traceback" not in result.stderr


def test_demo_conversations_read_as_conversations(threadline_process):
    """Turns numbered from 1 as the pages number them, each reply answering its question,
    and the chat call sent the conversation so far, as chat apps send it: the session
    page's transcript shows each turn's own question, the context chart a growing input."""
    key = threadline_process.new_key("demo-chats")
    env = {"THREADLINE_BASE_URL": threadline_process.base_url, "THREADLINE_API_KEY": key}
    assert _demo("--sessions", "12", env=env).returncode == 0
    headers = {"Authorization": f"Bearer {key}"}
    longest = max(_sessions(threadline_process, key), key=lambda s: s["trace_count"])
    session = httpx.get(
        threadline_process.base_url + "/api/v1/sessions/" + longest["session_id"], headers=headers
    ).json()
    traces = session["traces"]
    assert [t["metadata"]["turn"] for t in traces] == list(range(1, len(traces) + 1))
    assert len(traces) >= 3
    asked: list[str] = []
    for trace in traces:
        detail = httpx.get(
            threadline_process.base_url + "/api/v1/traces/" + trace["trace_id"], headers=headers
        ).json()
        (chat,) = [s for s in detail["spans"] if s["name"].startswith("chat ")]
        sent = json.loads(chat["attributes"]["gen_ai.input.messages"])
        question = sent[-1]["content"]
        assert [m["content"] for m in sent if m["role"] == "user"] == [*asked, question]
        reply = json.loads(chat["attributes"]["gen_ai.output.messages"])[0]["content"]
        assert "Thanks for asking" not in reply
        asked.append(question)
    # Each turn's input holds the turns before it: it grows.
    tokens = [t["input_tokens"] for t in traces]
    assert tokens == sorted(set(tokens)), tokens
