"""``threadline demo``: the settings the banner exports, real progress, honest failure."""

from __future__ import annotations

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
