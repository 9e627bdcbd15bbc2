"""Score averages are answered to 12 significant digits: an average is a sum divided (0.1
and 0.2 average 0.15000000000000002 in floats), and a client may send the noise itself
(0.30000000000000004). The lists, the details, the Users list, the dashboard's score
series and exports write the decimal a person would; each score's own value stays as
sent."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from tests.otlp import new_span_id, new_trace_id, span

NOISY = 0.1 + 0.2  # 0.30000000000000004


def _summaries(document: object, name: str) -> list[dict[str, Any]]:
    """Every summary of score ``name`` anywhere in a JSON document."""
    found: list[dict[str, Any]] = []

    def walk(value: object) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                if key == "scores" and isinstance(inner, dict) and name in inner:
                    found.append(inner[name])
                else:
                    walk(inner)
        elif isinstance(value, list):
            for inner in value:
                walk(inner)

    walk(document)
    return found


def test_score_averages_are_answered_without_float_noise(server_on_each_store):
    server = server_on_each_store
    tag = f"a{uuid.uuid4().hex[:8]}"
    session_id, user_id = f"{tag}-s", f"{tag}-u"
    trace_id = new_trace_id()
    server.send(
        [
            span(
                trace_id,
                new_span_id(),
                start_ns=(time.time_ns() // 10**9 - 600) * 10**9,
                attributes={
                    "threadline.session.id": session_id,
                    "threadline.user.id": user_id,
                    "threadline.tags": json.dumps([tag]),
                },
            )
        ]
    )
    scores = [
        {"name": "quality", "value": 0.1, "session_id": session_id},
        {"name": "quality", "value": 0.2, "session_id": session_id},
        {"name": "quality", "value": NOISY, "trace_id": trace_id},
    ]
    response = server.http.post("/api/v1/scores", json=scores)
    assert response.status_code in (200, 201), response.text
    # the score as written: the client's own value, noise and all
    written = server.get("/api/v1/scores", trace_id=trace_id)["items"]
    assert [s["value"] for s in written] == [NOISY]

    answers = {
        "session": server.get(f"/api/v1/sessions/{session_id}"),
        "sessions": server.get("/api/v1/sessions", tag=tag),
        "trace": server.get(f"/api/v1/traces/{trace_id}"),
        "traces": server.get("/api/v1/traces", tag=tag),
        "users": server.get("/api/v1/users", q=user_id),
    }
    expected = {
        "session": [0.15, 0.3],  # and its turn's
        "sessions": [0.15],
        "trace": [0.3],
        "traces": [0.3],
        # a user's summary: its sessions' and its traces' scores, merged
        "users": None,
    }
    for name, answer in answers.items():
        averages = [summary["average"] for summary in _summaries(answer, "quality")]
        assert averages, name
        if expected[name] is not None:
            assert averages == expected[name], (name, averages)
        assert all(float(f"{a:.12g}") == a for a in averages), (name, averages)

    # The dashboard's series: the average of 0.1, 0.2 and 0.30000000000000004.
    metrics = server.get("/api/v1/metrics", window="24h", bucket="day", user_id=user_id)
    (series,) = [s for s in metrics["series"] if s["metric"] == "score:quality"]
    assert [v for v in series["values"] if v is not None] == [0.2], series

    for kind in ("sessions", "traces"):
        response = server.http.get(f"/api/v1/export/{kind}", params={"format": "jsonl", "tag": tag})
        assert response.status_code == 200
        averages = [s["average"] for s in _summaries(json.loads(response.text), "quality")]
        assert averages == [0.15 if kind == "sessions" else 0.3], (kind, averages)
