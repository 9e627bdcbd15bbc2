"""The ``threadline`` command: first start, keys, settings and the demo."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import start_server, stop_server
from threadline.server.settings import SETTINGS, Settings

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def _threadline(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "threadline.server", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def _sessions(base_url: str, key: str) -> httpx.Response:
    return httpx.get(base_url + "/api/v1/sessions", headers={"Authorization": f"Bearer {key}"})


def test_first_start_creates_default_project_and_demo_fills_it(tmp_path):
    server = start_server(tmp_path / "data", tmp_path / "log.txt")
    try:
        keys = re.findall(r"tl_[A-Za-z0-9_-]{40,}", server.log())
        assert len(set(keys)) == 1, server.log()
        key = keys[0]
        assert _sessions(server.base_url, key).json()["items"] == []
        output = _threadline(
            "demo", "--base-url", server.base_url, "--api-key", key, "--sessions", "4"
        )
        assert "Sent 4 sessions" in output
        sessions = _sessions(server.base_url, key).json()["items"]
        assert len(sessions) == 4
        assert all(s["trace_count"] >= 2 and s["cost_usd"] > 0 for s in sessions)
    finally:
        stop_server(server)
    # A second start shows no new key (the project exists), but says which store it
    # uses and exactly how to get another key, in case the first was lost.
    server = start_server(tmp_path / "data", tmp_path / "log2.txt")
    try:
        log = server.log()
        assert "tl_" not in log
        assert f"store: {(tmp_path / 'data' / 'threadline.db').resolve()}" in log
        command = re.search(r"threadline (keys create [^\n]+)", log)
        assert command is not None, log
        new_key = _threadline(*command.group(1).split()).strip().splitlines()[-1]
        assert _sessions(server.base_url, new_key).status_code == 200
    finally:
        stop_server(server)


def test_keys_create_list_revoke(tmp_path):
    data = str(tmp_path / "data")
    output = _threadline(
        "keys", "create", "--data-dir", data, "--create-store", "--project", "shop"
    )
    key = output.strip().splitlines()[-1]
    assert re.fullmatch(r"tl_[A-Za-z0-9_-]{40,}", key)
    listing = _threadline("keys", "list", "--data-dir", data)
    assert "shop" in listing and key not in listing and key[:10] in listing

    server = start_server(tmp_path / "data", tmp_path / "log.txt")
    try:
        assert _sessions(server.base_url, key).status_code == 200
        header, row = listing.splitlines()
        assert header.split("\t")[:2] == ["id", "project"]
        key_id = row.split("\t", 1)[0]
        _threadline("keys", "revoke", "--data-dir", data, key_id)
        assert _sessions(server.base_url, key).status_code == 401
    finally:
        stop_server(server)


def test_settings_flag_beats_environment_beats_default():
    env = {"THREADLINE_PORT": "9000", "THREADLINE_HOST": "0.0.0.0"}
    settings = Settings.resolve({"port": "7000", "host": None}, env)
    assert settings.port == 7000 and settings.host == "0.0.0.0"
    assert Settings.resolve({}, {}).port == 8000
    assert Settings.resolve({}, {}).store_url.startswith("sqlite:///")


def test_configuration_doc_lists_every_setting():
    doc = (ROOT / "docs" / "configuration.md").read_text()
    for setting in SETTINGS:
        assert setting.flag in doc and setting.env in doc, setting.name


def test_keys_rotate_and_ingest_only(tmp_path):
    data = str(tmp_path / "data")
    app_key = (
        _threadline(
            "keys",
            "create",
            "--data-dir",
            data,
            "--create-store",
            "--project",
            "shop",
            "--ingest-only",
        )
        .strip()
        .splitlines()[-1]
    )
    listing = _threadline("keys", "list", "--data-dir", data)
    assert "\tingest\t" in listing
    server = start_server(tmp_path / "data", tmp_path / "log.txt")
    try:
        response = httpx.post(
            server.base_url + "/v1/traces",
            content=b"",
            headers={
                "Authorization": f"Bearer {app_key}",
                "Content-Type": "application/x-protobuf",
            },
        )
        assert response.status_code == 200  # may write
        assert _sessions(server.base_url, app_key).status_code == 403  # may not read
        signed_in = httpx.post(
            server.base_url + "/login",
            content=f"key={app_key}",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert signed_in.status_code == 401 and "threadline_session" not in signed_in.cookies

        header, row = listing.splitlines()
        assert header.split("\t")[:2] == ["id", "project"]
        key_id = row.split("\t", 1)[0]
        successor = (
            _threadline("keys", "rotate", "--data-dir", data, key_id).strip().splitlines()[-1]
        )
        assert (
            httpx.post(
                server.base_url + "/v1/traces",
                content=b"",
                headers={
                    "Authorization": f"Bearer {app_key}",
                    "Content-Type": "application/x-protobuf",
                },
            ).status_code
            == 401
        )
        assert (
            httpx.post(
                server.base_url + "/v1/traces",
                content=b"",
                headers={
                    "Authorization": f"Bearer {successor}",
                    "Content-Type": "application/x-protobuf",
                },
            ).status_code
            == 200
        )
    finally:
        stop_server(server)


def test_refuses_to_listen_beyond_loopback_without_a_key(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "threadline.server",
            "serve",
            "--host",
            "0.0.0.0",
            "--data-dir",
            str(tmp_path / "data"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "no API key yet" in result.stderr and "keys create" in result.stderr


def _failing_threadline(*args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "threadline.server", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0, result.stdout
    return result


def test_scores_only_key_and_allowed_origins(tmp_path):
    data = str(tmp_path / "data")
    full_key = _threadline(
        "keys", "create", "--data-dir", data, "--create-store", "--project", "shop"
    )
    full_key = full_key.strip().splitlines()[-1]
    browser_key = (
        _threadline("keys", "create", "--data-dir", data, "--project", "shop", "--scores-only")
        .strip()
        .splitlines()[-1]
    )
    assert "\tscores\t" in _threadline("keys", "list", "--data-dir", data)
    assert _threadline("projects", "origins", "--data-dir", data, "--project", "shop") == ""
    allowed = _threadline(
        "projects",
        "allow-origin",
        "--data-dir",
        data,
        "--project",
        "shop",
        "https://App.Example.com/",
        "http://localhost:5173",
    )
    assert "https://app.example.com" in allowed
    listing = _threadline("projects", "origins", "--data-dir", data, "--project", "shop")
    assert listing.split() == ["http://localhost:5173", "https://app.example.com"]
    # Not an origin, or no such project: a clear error, nothing changed.
    bad = _failing_threadline(
        "projects", "allow-origin", "--data-dir", data, "--project", "shop", "https://x.com/app"
    )
    assert "not an origin" in bad.stderr
    missing = _failing_threadline(
        "projects", "allow-origin", "--data-dir", data, "--project", "nope", "https://x.com"
    )
    assert "no project named 'nope'" in missing.stderr
    both = _failing_threadline(
        "keys", "create", "--data-dir", data, "--ingest-only", "--scores-only"
    )
    assert "not allowed with" in both.stderr

    server = start_server(tmp_path / "data", tmp_path / "log.txt")
    try:

        def vote(origin: str) -> httpx.Response:
            return httpx.post(
                server.base_url + "/api/v1/scores",
                json={"name": "thumbs", "value": True, "session_id": "conv-1"},
                headers={"Authorization": f"Bearer {browser_key}", "Origin": origin},
            )

        answer = vote("https://app.example.com")
        assert answer.status_code == 200, answer.text
        assert answer.headers["access-control-allow-origin"] == "https://app.example.com"
        assert answer.json()["source"] == "end-user"
        assert vote("https://evil.example.com").status_code == 403
        assert _sessions(server.base_url, browser_key).status_code == 403  # cannot read

        _threadline(
            "projects",
            "disallow-origin",
            "--data-dir",
            data,
            "--project",
            "shop",
            "https://app.example.com",
        )
        assert vote("https://app.example.com").status_code == 403
        assert vote("http://localhost:5173").status_code == 200
        scores = httpx.get(
            server.base_url + "/api/v1/scores",
            headers={"Authorization": f"Bearer {full_key}"},
        ).json()["items"]
        assert len(scores) == 2 and {s["source"] for s in scores} == {"end-user"}
    finally:
        stop_server(server)


def test_keys_refuse_a_store_that_does_not_exist_and_say_which_they_use(tmp_path):
    # Run in another folder, `keys` once made a new empty store there and printed keys
    # the running server rejected.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for command in (["keys", "create", "--project", "shop"], ["keys", "list"]):
        result = subprocess.run(
            [sys.executable, "-m", "threadline.server", *command],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=elsewhere,
        )
        assert result.returncode != 0, result.stdout
        assert "tl_" not in result.stdout
        assert (
            f"no store at {(elsewhere / '.threadline' / 'threadline.db').resolve()}"
            in result.stderr
        )
        assert "--data-dir" in result.stderr
        assert not (elsewhere / ".threadline").exists()

    data = tmp_path / "data"
    server = start_server(data, tmp_path / "log.txt")
    try:
        made = subprocess.run(
            [sys.executable, "-m", "threadline.server", "keys", "create", "--data-dir", str(data)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert made.returncode == 0, made.stderr
        assert f"store {(data / 'threadline.db').resolve()}" in made.stderr
        assert _sessions(server.base_url, made.stdout.strip().splitlines()[-1]).status_code == 200
    finally:
        stop_server(server)


def test_a_store_url_that_cannot_work_ends_the_command_with_its_reason(tmp_path):
    # The store raises a typed error; the CLI alone turns it into a message and a status.
    result = subprocess.run(
        [sys.executable, "-m", "threadline.server", "keys", "list", "--store", "postgres://db"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert "\nthreadline: unsupported store URL 'postgres://db'" in result.stderr
    assert "Traceback" not in result.stderr
