"""A key the real server refuses, or a base URL where it has no receiver: the SDK says so
in its own words, naming the setting to fix, for spans (whose exporter, OpenTelemetry's,
names only the status) and for scores."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from threadline import Threadline, observe


@pytest.fixture
def fresh_sdk() -> Iterator[None]:
    Threadline._reset_for_tests()
    yield
    Threadline._reset_for_tests()


@observe()
def _turn(message: str) -> str:
    Threadline.set_trace_session_id("refused-key")
    return message.upper()


def _threadline_warnings(caplog: pytest.LogCaptureFixture, about: str) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "threadline" and about in record.getMessage()
    ]


def test_spans_refused_for_an_unknown_key_name_the_setting_once(
    server: Any, fresh_sdk: None, caplog: pytest.LogCaptureFixture
) -> None:
    Threadline.initialize(
        project_api_key="tl_" + "x" * 43, base_url=server.base_url, instrument=False
    )
    with caplog.at_level(logging.WARNING):
        for batch in range(3):
            _turn(f"hello {batch}")
            Threadline.flush()
    said = _threadline_warnings(caplog, "spans not recorded")
    assert len(said) == 1, said  # once, not per batch
    message = said[0]
    assert f"{server.base_url}/v1/traces answered HTTP 401" in message
    assert "unknown or revoked API key" in message  # the server's own reason
    assert "$THREADLINE_API_KEY" in message and "project_api_key=" in message
    assert "threadline keys create --project NAME" in message


def test_spans_refused_for_a_scores_only_key_say_it_needs_another_key(
    server: Any, fresh_sdk: None, caplog: pytest.LogCaptureFixture
) -> None:
    Threadline.initialize(
        project_api_key=server.new_key("scores"), base_url=server.base_url, instrument=False
    )
    with caplog.at_level(logging.WARNING):
        _turn("hello")
        Threadline.flush()
    (message,) = _threadline_warnings(caplog, "spans not recorded")
    assert "HTTP 403" in message
    assert "this key can only send scores" in message
    assert "to a full key" in message and "$THREADLINE_API_KEY" in message


def test_a_good_key_says_nothing(
    server: Any, fresh_sdk: None, caplog: pytest.LogCaptureFixture
) -> None:
    Threadline.initialize(
        project_api_key=server.api_key, base_url=server.base_url, instrument=False
    )
    with caplog.at_level(logging.WARNING):
        _turn("hello")
        assert Threadline.flush() is True
    assert not _threadline_warnings(caplog, "not recorded")
    assert server.get("/api/v1/sessions/refused-key")["trace_count"] == 1


def test_scores_refused_for_an_unknown_key_name_the_setting(
    server: Any, fresh_sdk: None, caplog: pytest.LogCaptureFixture
) -> None:
    Threadline.initialize(
        project_api_key="tl_" + "x" * 43, base_url=server.base_url, instrument=False
    )
    with caplog.at_level(logging.WARNING):
        Threadline.score("resolved", True, session_id="refused-key")
        Threadline.flush()
    (message,) = _threadline_warnings(caplog, "scores (resolved) not recorded")
    assert "HTTP 401: unknown or revoked API key" in message
    assert "$THREADLINE_API_KEY" in message and "threadline keys create" in message


def test_a_base_url_with_a_path_the_server_lacks_names_the_setting(
    server: Any, fresh_sdk: None, caplog: pytest.LogCaptureFixture
) -> None:
    """The JSON API's prefix pasted as the base URL: spans go to /api/v1/v1/traces."""
    Threadline.initialize(
        project_api_key=server.api_key, base_url=server.base_url + "/api/v1", instrument=False
    )
    with caplog.at_level(logging.WARNING):
        _turn("hello")
        Threadline.score("resolved", True, session_id="refused-key")
        Threadline.flush()
    (spans,) = _threadline_warnings(caplog, "spans not recorded")
    assert f"{server.base_url}/api/v1/v1/traces answered HTTP 404" in spans
    (scores,) = _threadline_warnings(caplog, "scores (resolved) not recorded")
    for message in (spans, scores):
        assert "$THREADLINE_BASE_URL" in message and "base_url=" in message
        assert "http://127.0.0.1:8000" in message  # what an address looks like
