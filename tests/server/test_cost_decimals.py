"""Costs are answered to the picodollar everywhere: a trace's cost is a sum of its spans'
(``0.1 + 0.2`` is 0.30000000000000004 in floats), and a span's own cost may carry the
same noise; the lists, the details, the Users list and every export write ``0.3``."""

from __future__ import annotations

import json
import time
import uuid

from tests.otlp import new_span_id, new_trace_id, span

NOISY = 0.1 + 0.2  # 0.30000000000000004


def _costly_session(server, tag: str) -> tuple[str, str]:
    """A session of one trace whose two spans cost 0.1 and 0.2, and a third span whose
    own cost is sent with the noise; (session id, trace id)."""
    session_id, user_id = f"{tag}-s", f"{tag}-u"
    base_ns = (time.time_ns() // 10**9 - 600) * 10**9
    trace_id, root = new_trace_id(), new_span_id()
    attributes = {
        "threadline.session.id": session_id,
        "threadline.user.id": user_id,
        "threadline.tags": json.dumps([tag]),
    }
    server.send(
        [
            span(trace_id, root, start_ns=base_ns, attributes=attributes),
            *(
                span(
                    trace_id,
                    new_span_id(),
                    parent=root,
                    start_ns=base_ns + (i + 1) * 10**6,
                    attributes={"gen_ai.usage.cost": cost},
                )
                for i, cost in enumerate((0.1, 0.2, NOISY))
            ),
        ]
    )
    return session_id, trace_id


def _costs(document: object) -> list[float]:
    """Every ``cost_usd`` number anywhere in a JSON document."""
    found: list[float] = []

    def walk(value: object) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                if key == "cost_usd" and isinstance(inner, float):
                    found.append(inner)
                else:
                    walk(inner)
        elif isinstance(value, list):
            for inner in value:
                walk(inner)

    walk(document)
    return found


def test_costs_are_answered_to_the_picodollar(server_on_each_store):
    server = server_on_each_store
    tag = f"c{uuid.uuid4().hex[:8]}"
    session_id, trace_id = _costly_session(server, tag)
    sum_of_spans = 0.1 + 0.2 + NOISY  # 0.6000000000000001 as floats add up

    trace = server.get(f"/api/v1/traces/{trace_id}")
    assert trace["cost_usd"] == 0.6
    assert sorted(s["cost_usd"] for s in trace["spans"] if s["cost_usd"] is not None) == [
        0.1,
        0.2,
        0.3,
    ]
    answers = {
        "traces": server.get("/api/v1/traces", tag=tag),
        "sessions": server.get("/api/v1/sessions", tag=tag),
        "session": server.get(f"/api/v1/sessions/{session_id}"),
        "users": server.get("/api/v1/users", q=f"{tag}-u"),
    }
    for name, answer in answers.items():
        costs = _costs(answer)
        assert costs, name
        assert all(cost in (0.6, 0.1, 0.2, 0.3) for cost in costs), (name, costs)
    assert 0.6 in _costs(answers["users"]) and sum_of_spans != 0.6

    # An export with spans: the trace's and the spans' costs alike.
    for kind in ("traces", "sessions"):
        response = server.http.get(
            f"/api/v1/export/{kind}", params={"format": "jsonl", "include": "spans", "tag": tag}
        )
        assert response.status_code == 200
        costs = _costs(json.loads(response.text))
        assert sorted(costs) == [0.1, 0.2, 0.3, 0.6] + ([0.6] if kind == "sessions" else []), (
            kind,
            costs,
        )
