"""Scores from the SDK: checked on the caller's thread, sent in the background to the
real server, read back through its JSON API; and never an exception into the host.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import tests.conftest
from tests.conftest import free_port, new_project_key, start_server, stop_server
from threadline import Threadline, observe
from threadline.sdk import client, score_sender, state


@pytest.fixture
def fresh_sdk() -> Iterator[None]:
    Threadline._reset_for_tests()
    yield
    Threadline._reset_for_tests()


def _scores(server: Any, **filters: str) -> list[dict[str, Any]]:
    return server.get("/api/v1/scores", limit=500, **filters)["items"]


@observe()
def _lookup(city: str) -> tuple[str | None, str | None]:
    Threadline.score_current_span("tool_ok", 0.75, comment="found it")
    return Threadline.get_trace_id(), _current_span_id()


def _current_span_id() -> str:
    from opentelemetry import trace

    return trace.format_span_id(trace.get_current_span().get_span_context().span_id)


@observe()
def _turn(conversation: str, message: str) -> dict[str, Any]:
    Threadline.set_trace_session_id(conversation)
    _, span_id = _lookup("Paris")
    ids = {
        "trace": Threadline.get_trace_id(),
        "span": span_id,
        "helpful": Threadline.score_current_trace("helpful", True),
        "resolved": Threadline.score_current_session("resolved", "yes", comment="done"),
    }
    return ids


def test_scores_from_inside_observe_land_on_the_trace_and_session(sdk_to_server: Any) -> None:
    server = sdk_to_server
    conversation = f"conv-{uuid.uuid4().hex[:12]}"
    ids = _turn(conversation, "hello")
    later = Threadline.score("stars", 4, session_id=conversation)  # outside any span
    assert ids["helpful"] and ids["resolved"] and later
    assert Threadline.flush() is True

    trace_id = ids["trace"]
    by_name = {s["name"]: s for s in _scores(server, session_id=conversation)}
    assert set(by_name) == {"helpful", "resolved", "stars", "tool_ok"}
    assert all(s["source"] == "sdk" for s in by_name.values())
    helpful, resolved = by_name["helpful"], by_name["resolved"]
    assert helpful["id"] == ids["helpful"] and helpful["value"] is True
    assert helpful["trace_id"] == trace_id and helpful["span_id"] is None
    assert helpful["session_id"] == conversation  # the session set before the score
    assert resolved["trace_id"] is None and resolved["value"] == "yes"
    assert resolved["comment"] == "done" and resolved["data_type"] == "categorical"
    tool = by_name["tool_ok"]
    assert tool["trace_id"] == trace_id and tool["span_id"] == ids["span"]
    assert tool["value"] == 0.75 and tool["comment"] == "found it"
    assert by_name["stars"]["value"] == 4.0 and by_name["stars"]["data_type"] == "numeric"

    # Rolled up where they belong: trace and span scores on the trace, the others on
    # the session.
    session = server.get(f"/api/v1/sessions/{conversation}")
    assert session["scores"]["resolved"] == {"count": 1, "average": None, "label": "yes"}
    assert session["scores"]["stars"]["average"] == 4.0
    assert [t["trace_id"] for t in session["traces"]] == [trace_id]
    trace = server.get(f"/api/v1/traces/{trace_id}")
    assert trace["session_id"] == conversation
    assert trace["scores"]["helpful"] == {"count": 1, "average": 1.0, "label": None}
    assert trace["scores"]["tool_ok"]["average"] == 0.75


def test_flush_waits_for_every_score(sdk_to_server: Any) -> None:
    server = sdk_to_server
    session = f"s-{uuid.uuid4().hex[:8]}"
    count = 3 * score_sender.MAX_BATCH + 7  # several requests
    for n in range(count):
        assert Threadline.score("rating", n % 5, session_id=session)
    assert Threadline.flush() is True
    # No waiting or polling here: flush returned, so every score is stored.
    assert len(_scores(server, session_id=session)) == count


def test_scoring_again_with_the_id_replaces_the_score(sdk_to_server: Any) -> None:
    server = sdk_to_server
    session = f"s-{uuid.uuid4().hex[:8]}"
    vote = Threadline.score("thumbs", True, session_id=session)
    assert Threadline.score("thumbs", False, session_id=session, id=vote) == vote
    assert Threadline.flush() is True
    [stored] = _scores(server, session_id=session)
    assert stored["id"] == vote and stored["value"] is False


def test_a_bad_score_in_a_batch_loses_only_itself(
    sdk_to_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    server = sdk_to_server
    config = {"name": "stars", "data_type": "numeric", "min_value": 1, "max_value": 5}
    assert server.http.put("/api/v1/score-configs/stars", json=config).status_code == 200
    session = f"s-{uuid.uuid4().hex[:8]}"
    with caplog.at_level(logging.WARNING, logger="threadline"):
        for value in (4, 9, 2, 5, 1):  # 9 is above the configured maximum
            Threadline.score("stars", value, session_id=session)
        assert Threadline.flush() is True
    assert sorted(s["value"] for s in _scores(server, session_id=session)) == [1, 2, 4, 5]
    refused = [r.getMessage() for r in caplog.records if "not recorded" in r.getMessage()]
    assert len(refused) == 1 and "above its maximum" in refused[0], refused


def test_bad_arguments_warn_and_send_nothing(
    sdk_to_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    server = sdk_to_server
    session = f"s-{uuid.uuid4().hex[:8]}"
    with caplog.at_level(logging.WARNING, logger="threadline"):
        assert Threadline.score("x", 1) is None  # names nothing
        assert Threadline.score("x", float("nan"), session_id=session) is None
        assert Threadline.score("x", [1, 2], session_id=session) is None  # type: ignore[arg-type]
        assert Threadline.score("", 1, session_id=session) is None
        assert Threadline.score("x", 1, span_id="ab" * 8) is None  # a span without its trace
        assert Threadline.score("x", 1, trace_id="not-hex") is None
        # Outside a span, the current-context forms have nothing to score.
        assert Threadline.score_current_trace("x", 1) is None
        assert Threadline.score_current_span("x", 1) is None
        assert Threadline.score_current_session("x", 1) is None
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 9
    assert Threadline.flush() is True
    assert _scores(server, session_id=session) == []


def test_score_current_session_without_a_session_warns(
    sdk_to_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    @observe()
    def turn() -> str | None:
        return Threadline.score_current_session("resolved", True)

    with caplog.at_level(logging.WARNING, logger="threadline"):
        assert turn() is None
    assert "no session id" in caplog.text


def test_disabled_or_uninitialised_sends_nothing_and_starts_no_thread(
    fresh_sdk: None, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="threadline"):
        assert Threadline.score("x", 1, session_id="s") is None
    assert "initialize" in caplog.text
    Threadline.initialize(disabled=True, instrument=False)
    assert Threadline.score("x", 1, session_id="s") is None
    assert state.runtime.score_sender is None
    assert not any(t.name == "threadline-scores" for t in threading.enumerate())


def test_an_unreachable_server_never_raises_and_shutdown_is_bounded(
    monkeypatch: pytest.MonkeyPatch, fresh_sdk: None, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(client, "SHUTDOWN_SCORE_TIMEOUT_S", 0.5)
    Threadline.initialize(
        project_api_key="tl_x",
        base_url=f"http://127.0.0.1:{free_port()}",
        instrument=False,
        span_exporter=InMemorySpanExporter(),  # only the scores meet the missing server
    )

    @observe()
    def turn() -> str | None:
        Threadline.set_trace_session_id("conv")
        return Threadline.score_current_trace("helpful", 1)

    assert turn() is not None  # queued: the host goes on
    started = time.monotonic()
    assert Threadline.flush(timeout_millis=300) is False  # not sent within the timeout
    with caplog.at_level(logging.WARNING, logger="threadline"):
        Threadline.shutdown()
    assert time.monotonic() - started < 3
    assert "(helpful) not recorded: shut down while retrying" in caplog.text
    assert Threadline.score("x", 1, session_id="s") is None  # shut down: nothing more


def test_a_full_queue_drops_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, fresh_sdk: None, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(score_sender, "MAX_QUEUED", 5)
    monkeypatch.setattr(client, "SHUTDOWN_SCORE_TIMEOUT_S", 0.1)
    Threadline.initialize(base_url=f"http://127.0.0.1:{free_port()}", instrument=False)
    with caplog.at_level(logging.WARNING, logger="threadline"):
        results = [Threadline.score("x", n, session_id="s") for n in range(200)]
    dropped = results.count(None)
    assert dropped > 0 and state.runtime.score_sender is not None
    assert state.runtime.score_sender.dropped == dropped
    assert "dropped" in caplog.text


def test_retries_stop_when_their_time_is_up(
    monkeypatch: pytest.MonkeyPatch, fresh_sdk: None, caplog: pytest.LogCaptureFixture
) -> None:
    """An unreachable server is retried for ``RETRY_FOR_S``, not for ever: then the
    batch is given up with a warning, and flush returns."""
    monkeypatch.setattr(score_sender, "RETRY_FOR_S", 1.2)
    Threadline.initialize(
        project_api_key="tl_x", base_url=f"http://127.0.0.1:{free_port()}", instrument=False
    )
    with caplog.at_level(logging.WARNING, logger="threadline"):
        assert Threadline.score("thumbs", True, session_id="s") is not None
        started = time.monotonic()
        assert Threadline.flush(timeout_millis=20_000) is True
    took = time.monotonic() - started
    # a pause of 0.5 s, then one of 1.0 s would pass the 1.2 s: two attempts are made
    assert 0.4 < took < 10, took
    assert "(thumbs) not recorded: gave up after 2 attempts" in caplog.text


def test_a_bad_key_never_raises(server: Any, fresh_sdk: None, caplog: pytest.LogCaptureFixture):
    Threadline.initialize(
        project_api_key="tl_" + "x" * 43, base_url=server.base_url, instrument=False
    )
    with caplog.at_level(logging.WARNING, logger="threadline"):
        assert Threadline.score("x", 1, session_id="s") is not None
        assert Threadline.flush() is True  # answered (401): nothing left to send
    assert "401" in caplog.text and "not recorded" in caplog.text


@pytest.mark.slow
def test_scores_wait_for_a_server_that_is_not_up_yet(
    tmp_path: Path, fresh_sdk: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    key = new_project_key(f"sqlite://{data / 'threadline.db'}", "late")
    port = free_port()
    Threadline.initialize(
        project_api_key=key, base_url=f"http://127.0.0.1:{port}", instrument=False
    )
    vote = Threadline.score("thumbs", True, session_id="conv-late")
    time.sleep(0.3)  # the first attempt is refused: nothing listens yet
    ports = iter([port])
    monkeypatch.setattr(tests.conftest, "free_port", lambda: next(ports, None) or free_port())
    server = start_server(data, tmp_path / "log.txt")
    try:
        assert Threadline.flush(timeout_millis=20_000) is True
        import httpx

        stored = httpx.get(
            server.base_url + "/api/v1/scores",
            headers={"Authorization": f"Bearer {key}"},
        ).json()["items"]
        assert [s["id"] for s in stored] == [vote]
    finally:
        stop_server(server)


class _Overloaded(BaseHTTPRequestHandler):
    """Answers 429 (Retry-After: 0), then 503, then 200, recording each body. The real
    server only limits ingest, so an overloaded score route is played by this one."""

    answers: ClassVar[list[int]] = [429, 503, 200]
    bodies: ClassVar[list[list[dict[str, Any]]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).bodies.append(body)
        status = type(self).answers.pop(0) if type(self).answers else 200
        self.send_response(status)
        if status == 429:
            self.send_header("Retry-After", "0")
        payload = b'{"error": "busy"}' if status != 200 else b"{}"
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


def test_429_and_503_are_retried_with_the_same_ids(fresh_sdk: None) -> None:
    http = ThreadingHTTPServer(("127.0.0.1", 0), _Overloaded)
    worker = threading.Thread(target=http.serve_forever, daemon=True)
    worker.start()
    try:
        Threadline.initialize(
            project_api_key="tl_k",
            base_url=f"http://127.0.0.1:{http.server_address[1]}",
            instrument=False,
        )
        vote = Threadline.score("thumbs", True, session_id="s")
        assert Threadline.flush(timeout_millis=10_000) is True
    finally:
        http.shutdown()
        http.server_close()
    assert len(_Overloaded.bodies) == 3  # refused twice, then taken
    assert all(body == [_Overloaded.bodies[0][0]] for body in _Overloaded.bodies)
    assert _Overloaded.bodies[0][0]["id"] == vote and _Overloaded.bodies[0][0]["source"] == "sdk"


_PROGRAM = """
import os, sys
from threadline import Threadline
Threadline.initialize(project_api_key=sys.argv[1], base_url=sys.argv[2], instrument=False)
Threadline.score("parent", 1, session_id=sys.argv[3])
if sys.argv[4] == "fork":
    child = os.fork()
    if child == 0:  # the child has the parent's sender but not its thread
        Threadline.score("child", 2, session_id=sys.argv[3])
        os._exit(0 if Threadline.flush(timeout_millis=10_000) else 1)
    assert os.waitpid(child, 0)[1] == 0, "the child's flush timed out"
# No flush: the interpreter's exit sends what is queued.
"""


@pytest.mark.parametrize("mode", ["exit", "fork"])
def test_scores_are_sent_at_exit_and_from_a_forked_child(server: Any, mode: str) -> None:
    session = f"s-{uuid.uuid4().hex[:8]}"
    done = subprocess.run(
        [sys.executable, "-c", _PROGRAM, server.api_key, server.base_url, session, mode],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    names = sorted(s["name"] for s in _scores(server, session_id=session))
    assert names == (["child", "parent"] if mode == "fork" else ["parent"])
