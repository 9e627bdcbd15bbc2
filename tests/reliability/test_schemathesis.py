"""Schemathesis against the OpenAPI document of the running server: every query API
operation, with generated (valid and invalid) parameters and a valid key, never
answers 5xx. Bounded to a fixed number of examples per operation, derandomized."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode

from tests.otlp import new_span_id, new_trace_id, request, span

pytestmark = pytest.mark.slow

EXAMPLES_PER_OPERATION_AND_MODE = 25


def _fill(server) -> None:
    """A little data, so that lists have items and next cursors."""
    spans = [
        span(
            new_trace_id(),
            new_span_id(),
            name=f"turn-{i}",
            attributes={
                "threadline.session.id": f"s-{i % 2}",
                "threadline.user.id": f"user-{i % 3}",
                "threadline.tags": '["vip"]',
                "threadline.metadata.plan": "pro",
                "threadline.span.input": '{"q": "hello"}',
            },
            error=i == 3,
        )
        for i in range(6)
    ]
    assert server.export(request(spans).SerializeToString()).status_code == 200


def test_query_api_never_answers_5xx(server):
    _fill(server)
    schema = schemathesis.openapi.from_url(server.base_url + "/openapi.json")
    operations = [
        result.ok()
        for result in schema.include(path_regex=r"^/api/v1/", method="GET").get_all_operations()
    ]
    # Every query route is in the document (a new one is picked up here automatically).
    assert {op.path for op in operations} >= {
        "/api/v1/sessions",
        "/api/v1/sessions/{session_id}",
        "/api/v1/traces",
        "/api/v1/traces/{trace_id}",
        "/api/v1/users",
        "/api/v1/metrics",
    }
    auth = {"Authorization": f"Bearer {server.api_key}"}
    calls: dict[str, int] = {}

    def run(operation, mode: GenerationMode) -> None:
        @settings(max_examples=EXAMPLES_PER_OPERATION_AND_MODE)
        @given(case=operation.as_strategy(generation_mode=mode))
        def check(case) -> None:
            response = case.call(base_url=server.base_url, headers=auth, timeout=10)
            case.validate_response(response, checks=[not_a_server_error], headers=auth)
            calls[operation.label] = calls.get(operation.label, 0) + 1

        check()

    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            run(operation, mode)
    print(f"schemathesis: {len(operations)} operations, {sum(calls.values())} calls", calls)
    assert len(calls) == len(operations)
    assert "Traceback" not in server.process.log()
