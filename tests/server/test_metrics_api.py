"""GET /api/v1/metrics over the real server: spans sent over OTLP come back as the
dashboard's series, and bad input is a clear 4xx."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import ProjectClient
from tests.otlp import new_span_id, new_trace_id, request, span


def _send(server: ProjectClient, start_ns: int, **attributes: object) -> str:
    trace_id = new_trace_id()
    body = request(
        [span(trace_id, new_span_id(), name="turn", start_ns=start_ns, attributes=attributes)]
    )
    assert server.export(body.SerializeToString()).status_code == 200
    return trace_id


def test_metrics_count_what_was_sent(server: ProjectClient):
    now = time.time_ns()
    hour = 3600 * 10**9
    this_hour = now // hour * hour
    user = f"user-{uuid.uuid4().hex[:8]}"
    for session, version in (("s1", "1"), ("s1", "1"), ("s2", "2")):
        _send(
            server,
            this_hour + 60 * 10**9,
            **{
                "threadline.session.id": session,
                "threadline.user.id": user,
                "threadline.metadata.app_version": version,
            },
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
