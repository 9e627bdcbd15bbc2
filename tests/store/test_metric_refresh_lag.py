"""The dashboard's figures, refreshed in the background by every server, converge to
exact values when the servers write through lagging replicas.

Two server processes, each on its own replica of one chDB engine that shows inserts 1 to
3 s after acknowledging them, out of order (``delayed_inserts.py``), refresh the
per-slice figures every second with a margin of 8 s. The same sessions are written
through both (each trace split over requests to either server, some sent to both): once
the replicas have caught up and a refresh has covered that moment, the dashboard as it
opens (no filter: the derived figures) reads exactly what was sent, through either
server.
"""

from __future__ import annotations

import random
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from tests import otlp
from tests.conftest import ServerProcess
from tests.store.lagging_servers import lagging_servers
from tests.store.test_clickhouse_servers import send_to_servers, workload
from threadline.server.model import ns_to_datetime

pytestmark = [pytest.mark.clickhouse, pytest.mark.slow]

MARGIN_S = 8
LAG_S = (1.0, 3.0)


def test_refreshed_figures_converge_with_lagging_replicas(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # The servers read their settings from the environment they inherit.
    monkeypatch.setenv("THREADLINE_METRICS_REFRESH_SECONDS", "1")
    monkeypatch.setenv("THREADLINE_METRICS_REFRESH_MARGIN_SECONDS", str(MARGIN_S))
    with lagging_servers(tmp_path, 2, delay_s=LAG_S) as lagging:
        key, servers, replicas = lagging.key, lagging.servers, lagging.replicas
        requests, traces, sessions = workload(random.Random(5))

        def route(index: int) -> list[ServerProcess]:
            first = servers[index % 2]
            return [first, servers[1 - index % 2]] if index % 4 == 0 else [first]

        statuses = send_to_servers(requests, key, route)
        assert set(statuses) == {200}, statuses
        assert sum(replica.pending for replica in replicas) > 0  # the lag is real
        for replica in replicas:
            replica.settle()
        settled = time.time_ns()
        expected = {
            "sessions": len(sessions),
            "traces": len(traces),
            "error_sessions": sum(s["error_count"] > 0 for s in sessions.values()),
            "error_traces": sum(t["error_count"] > 0 for t in traces.values()),
            "cost_usd": sum(t["cost_usd"] for t in traces.values()),
            "input_tokens": sum(t["input_tokens"] for t in traces.values()),
        }
        for server in servers:
            got = _figures_after(server.base_url, key, settled)
            assert got == expected, server.base_url


def _figures_after(base_url: str, key: str, settled_ns: int) -> dict[str, float]:
    """The range's totals, once the figures cover everything written before
    ``settled_ns`` (all sessions lie in one day's bucket)."""
    params = {
        "start": ns_to_datetime(otlp.BASE_NS).isoformat(),
        "end": ns_to_datetime(otlp.BASE_NS + 3600 * 10**9).isoformat(),
        "bucket": "day",
    }
    deadline = time.monotonic() + MARGIN_S + 60
    with httpx.Client(
        base_url=base_url, timeout=30, headers={"Authorization": f"Bearer {key}"}
    ) as api:
        while True:
            answer = api.get("/api/v1/metrics", params=params).json()
            up_to = answer.get("figures_up_to")
            if up_to and datetime.fromisoformat(up_to).timestamp() * 1e9 >= settled_ns:
                break
            assert time.monotonic() < deadline, f"figures still up to {up_to}"
            time.sleep(0.5)
        # A pass's record may show on a lagging replica before the slices it inserted
        # just before it: they show within the replica's lag.
        time.sleep(LAG_S[1])
        answer = api.get("/api/v1/metrics", params=params).json()
    return {
        s["metric"]: sum(v or 0 for v in s["values"])
        for s in answer["series"]
        if s["metric"]
        in ("sessions", "traces", "error_sessions", "error_traces", "cost_usd", "input_tokens")
    }
