"""GET /api/v1/metrics over the real server: spans sent over OTLP come back as the
dashboard's series, and bad input is a clear 4xx."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.conftest import ProjectClient, start_server, stop_server
from tests.otlp import new_span_id, new_trace_id, span


def test_metrics_count_what_was_sent(server: ProjectClient):
    now = time.time_ns()
    hour = 3600 * 10**9
    this_hour = now // hour * hour
    user = f"user-{uuid.uuid4().hex[:8]}"
    for session, version in (("s1", "1"), ("s1", "1"), ("s2", "2")):
        server.send_span(
            {
                "threadline.session.id": session,
                "threadline.user.id": user,
                "threadline.metadata.app_version": version,
            },
            name="turn",
            start_ns=this_hour + 60 * 10**9,
        )
    start = datetime.fromtimestamp(this_hour / 1e9, tz=UTC) - timedelta(hours=1)
    got = server.get(
        "/api/v1/metrics",
        start=start.isoformat(),
        end=(start + timedelta(hours=2)).isoformat(),
        bucket="hour",
        metric=["sessions", "traces", "active_users"],
    )
    assert got["bucket"] == "hour" and len(got["buckets"]) == 2
    values = {s["metric"]: s["values"] for s in got["series"]}
    assert values == {"sessions": [0, 2], "traces": [0, 3], "active_users": [0, 1]}
    grouped = server.get(
        "/api/v1/metrics",
        start=start.isoformat(),
        end=(start + timedelta(hours=2)).isoformat(),
        bucket="hour",
        metric="traces",
        group_by="metadata:app_version",
    )
    assert grouped["group_by"] == "metadata:app_version"
    assert {s["group"]: s["values"] for s in grouped["series"]} == {"1": [0, 2], "2": [0, 1]}
    # The defaults: the last 7 days by day, every metric.
    default = server.get("/api/v1/metrics", user_id=user)
    assert default["bucket"] == "day" and len(default["buckets"]) in (7, 8)
    traces = next(s for s in default["series"] if s["metric"] == "traces")
    assert traces["values"][-1] == 3 and sum(traces["values"]) == 3


@pytest.mark.parametrize(
    ("params", "status", "says"),
    [
        ({"metric": "nope"}, 400, "unknown metric 'nope'"),
        ({"group_by": "user"}, 400, "group_by 'user'"),
        ({"group_by": "metadata:"}, 400, "group_by"),
        ({"bucket": "month"}, 422, "bucket"),
        (
            {"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"},
            400,
            "end must be after",
        ),
        (
            {"start": "2020-01-01T00:00:00Z", "end": "2026-01-01T00:00:00Z", "bucket": "hour"},
            400,
            "at most 1000",
        ),
        ({"metadata": "novalue"}, 400, "not key=value"),
        ({"metric": "score:resolved"}, 400, "comes in every answer"),
        ({"window": "all"}, 422, "window"),
        ({"start": "yesterday"}, 422, "start"),
    ],
)
def test_bad_metrics_requests_say_what_is_wrong(
    server: ProjectClient, params: dict, status: int, says: str
):
    response = server.http.get("/api/v1/metrics", params=params)
    assert response.status_code == status, response.text
    assert says in response.json()["error"]


def test_metrics_need_a_reading_key(server: ProjectClient):
    response = server.http.get("/api/v1/metrics", headers={"Authorization": "Bearer tl_nope"})
    assert response.status_code == 401
    assert "/api/v1/metrics" in server.get("/openapi.json")["paths"]


def test_cost_and_tokens_by_model_over_the_api(server: ProjectClient):
    """Spans of two models in one trace, sent over OTLP: each model's tokens and cost
    come back as a series of its own, and they add up to the trace's."""
    hour = 3600 * 10**9
    this_hour = time.time_ns() // hour * hour
    user = f"user-{uuid.uuid4().hex[:8]}"
    trace_id, root = new_trace_id(), new_span_id()
    spans = [
        span(
            trace_id,
            root,
            name="turn",
            start_ns=this_hour + 10**9,
            attributes={"threadline.user.id": user},
        )
    ]
    for model, tokens, cost in (("gpt-4o-mini", 30, 0.25), ("claude-haiku", 12, 0.5)):
        spans.append(
            span(
                trace_id,
                new_span_id(),
                parent=root,
                name=f"chat {model}",
                start_ns=this_hour + 2 * 10**9,
                attributes={
                    "gen_ai.request.model": model,
                    "gen_ai.usage.input_tokens": tokens,
                    "gen_ai.usage.output_tokens": 1,
                    "gen_ai.usage.cost": cost,
                },
            )
        )
    server.send(spans)
    start = datetime.fromtimestamp(this_hour / 1e9, tz=UTC)
    got = server.get(
        "/api/v1/metrics",
        start=start.isoformat(),
        end=(start + timedelta(hours=1)).isoformat(),
        bucket="hour",
        user_id=user,
        metric=["cost_usd", "cost_usd_by_model", "input_tokens_by_model"],
    )
    by_model = {(s["metric"], s["model"]): s["values"] for s in got["series"]}
    assert by_model == {
        ("cost_usd", None): [0.75],
        ("cost_usd_by_model", "claude-haiku"): [0.5],
        ("cost_usd_by_model", "gpt-4o-mini"): [0.25],
        ("input_tokens_by_model", "gpt-4o-mini"): [30],
        ("input_tokens_by_model", "claude-haiku"): [12],
    }


def test_a_window_gives_the_range_as_on_the_lists(server: ProjectClient):
    """``window=24h`` (as the lists take it) is the range back from ``end``; ``start``
    wins over it, as on the lists."""
    end = datetime(2026, 3, 10, 12, 30, tzinfo=UTC)
    got = server.get("/api/v1/metrics", window="24h", end=end.isoformat(), bucket="hour")
    assert got["start"] == "2026-03-09T12:00:00Z" and len(got["buckets"]) == 25
    week = server.get("/api/v1/metrics", window="30d", end=end.isoformat())
    assert week["start"] == "2026-02-08T00:00:00Z"
    started = server.get(
        "/api/v1/metrics", window="24h", start="2026-03-01T00:00:00Z", end=end.isoformat()
    )
    assert started["start"] == "2026-03-01T00:00:00Z"


def test_the_series_kept_are_the_servers_settings(tmp_path: Path) -> None:
    """--metrics-max-models 1 and --metrics-max-score-names 1: of three models the one
    using the most is a series and the other two are added up (model None); of two
    score names the one with the most values has a series."""
    process = start_server(
        tmp_path / "data",
        tmp_path / "log.txt",
        "--grpc-port",
        "0",
        "--metrics-max-models",
        "1",
        "--metrics-max-score-names",
        "1",
    )
    try:
        server = ProjectClient(process.base_url, process.new_key("settings"), process)
        hour = 3600 * 10**9
        this_hour = time.time_ns() // hour * hour
        trace_id, root = new_trace_id(), new_span_id()
        spans = [span(trace_id, root, name="turn", start_ns=this_hour + 10**9)]
        for model, tokens in (("big", 30), ("small", 12), ("tiny", 5)):
            attributes = {"gen_ai.request.model": model, "gen_ai.usage.input_tokens": tokens}
            spans.append(
                span(
                    trace_id,
                    new_span_id(),
                    parent=root,
                    name=f"chat {model}",
                    start_ns=this_hour + 2 * 10**9,
                    attributes=attributes,
                )
            )
        server.send(spans)
        for name, value in (("often", 1), ("often", 2), ("rare", 3)):
            body = {"name": name, "value": value, "trace_id": trace_id}
            assert server.http.post("/api/v1/scores", json=body).status_code == 200
        start = datetime.fromtimestamp(this_hour / 1e9, tz=UTC)
        got = server.get(
            "/api/v1/metrics",
            start=start.isoformat(),
            end=(start + timedelta(hours=1)).isoformat(),
            bucket="hour",
        )
        by_model = {
            s["model"]: s["values"] for s in got["series"] if s["metric"] == "input_tokens_by_model"
        }
        assert by_model == {"big": [30], None: [17]}
        scores = {s["metric"] for s in got["series"] if s["metric"].startswith("score:")}
        assert scores == {"score:often"}
        # The dashboard reads with the same settings.
        signed_in = {"threadline_session": server.api_key}
        page = httpx.get(process.base_url + "/dashboard", cookies=signed_in, timeout=30)
        assert page.status_code == 200, page.text
    finally:
        stop_server(process)
