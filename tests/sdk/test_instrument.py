"""Instrumentors whose client library is absent are skipped quietly."""

from __future__ import annotations

import importlib.util
import logging

import pytest
from opentelemetry.sdk.trace import TracerProvider

from threadline.sdk.instrument import enable_instrumentors


def test_instrumentor_without_its_client_is_skipped_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Whether the instrumentation package is installed or not (the Anthropic one fails
    # to import without the client), nothing is enabled and nothing is logged as a problem.
    if importlib.util.find_spec("anthropic") is not None:
        pytest.skip("the anthropic client is installed here")
    with caplog.at_level(logging.INFO):
        assert enable_instrumentors(["anthropic"], TracerProvider()) == []
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_unknown_name_warns(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="threadline"):
        assert enable_instrumentors(["cobol"], TracerProvider()) == []
    assert "unknown instrumentation" in caplog.text
