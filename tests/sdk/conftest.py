"""Fixtures for SDK tests: a fresh Threadline per test, exporting to memory or to the
real server."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from threadline import Threadline


class Recorded:
    """The spans a test produced; ``force_flush`` rather than sleeping."""

    def __init__(self, exporter: InMemorySpanExporter) -> None:
        self.exporter = exporter

    def spans(self) -> list[ReadableSpan]:
        Threadline.flush()
        return list(self.exporter.get_finished_spans())

    def one(self, name: str) -> ReadableSpan:
        spans = self.spans()
        matches = [s for s in spans if s.name == name]
        assert len(matches) == 1, f"expected one span {name!r}, got {[s.name for s in spans]}"
        return matches[0]

    def named(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.spans() if s.name == name]


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorded]:
    monkeypatch.delenv("THREADLINE_DISABLED", raising=False)
    Threadline._reset_for_tests()
    exporter = InMemorySpanExporter()
    Threadline.initialize(span_exporter=exporter, instrument=False)
    yield Recorded(exporter)
    Threadline._reset_for_tests()


@pytest.fixture
def sdk_to_server(server: Any) -> Iterator[Any]:
    """The ``server`` fixture's project, with Threadline initialized to export to it."""
    Threadline._reset_for_tests()
    Threadline.initialize(
        project_api_key=server.api_key, base_url=server.base_url, instrument=False
    )
    yield server
    Threadline._reset_for_tests()


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run ``async def`` tests in a fresh event loop (no pytest-asyncio dependency)."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    asyncio.run(pyfuncitem.obj(**{name: pyfuncitem.funcargs[name] for name in names}))
    return True
