"""Totals converge to exact values when inserts are acknowledged before they are
visible, become visible out of order, and on each server's replica at its own time.

Three Threadline server processes write the same sessions (each trace's spans split
over requests sent to different servers, some requests delivered twice: to a second
server, or again to the same one), each through its own lagging replica of one chDB
engine (``delayed_inserts.py``). Once the replicas have caught up, every trace and
session read through any server shows exactly what was sent, before and after
ClickHouse merges the parts. A design that reads back after writing (and trusts what it
read) leaves totals short for good here: it reads a replica that has not caught up.
"""

from __future__ import annotations

import random
from pathlib import Path

import httpx
import pytest

from tests.conftest import ServerProcess
from tests.store.lagging_servers import lagging_servers
from tests.store.test_clickhouse_servers import send_to_servers, user_of, workload
from threadline.server.store import open_store

pytestmark = [pytest.mark.clickhouse, pytest.mark.slow]

SERVERS = 3


def test_totals_converge_with_lagging_replicas_and_duplicates(tmp_path: Path):
    with lagging_servers(tmp_path, SERVERS, delay_s=(1.0, 5.0)) as lagging:
        key, servers, replicas = lagging.key, lagging.servers, lagging.replicas
        requests, traces, sessions = workload(random.Random(11))

        def route(index: int) -> list[ServerProcess]:
            first = servers[index % SERVERS]
            targets = [first]
            if index % 3 == 0:  # the same export to a second server
                targets.append(servers[(index + 1) % SERVERS])
            if index % 5 == 0:  # a retry of an export that was stored
                targets.append(first)
            return targets

        statuses = send_to_servers(requests, key, route)
        assert set(statuses) == {200}, statuses
        for server in servers:
            health = httpx.get(server.base_url + "/healthz", params={"wait": 60}).json()
            assert health["queued_exports"] == 0
        # Acknowledged, not all visible yet: the lag is real.
        assert sum(replica.pending for replica in replicas) > 0

        for replica in replicas:
            replica.settle()
        for server in servers:
            _assert_exact(server.base_url, key, traces, sessions)

        # The same after ClickHouse merges every trace's parts into one row.
        merged = open_store(lagging.url)
        try:
            for table in ("trace_parts_by_id", "trace_parts_packed"):
                merged._ch.command(f"OPTIMIZE TABLE {table} FINAL")  # type: ignore[attr-defined]
                ((rows, distinct),) = merged._rows(  # type: ignore[attr-defined]
                    f"SELECT count(), uniqExact(trace_id) FROM {table}"
                )
                assert rows == distinct == len(traces)
        finally:
            merged.close()
        _assert_exact(servers[0].base_url, key, traces, sessions)


def _assert_exact(base_url: str, key: str, traces: dict, sessions: dict) -> None:
    with httpx.Client(
        base_url=base_url, timeout=30, headers={"Authorization": f"Bearer {key}"}
    ) as api:
        listed = api.get("/api/v1/sessions", params={"limit": 100, "window": "all"}).json()["items"]
        assert sorted(s["session_id"] for s in listed) == sorted(sessions)
        for session in listed:
            expected = sessions[session["session_id"]]
            assert {k: session[k] for k in expected} == expected, session["session_id"]
            detail = api.get(f"/api/v1/sessions/{session['session_id']}").json()
            assert {k: detail[k] for k in expected} == expected, session["session_id"]
        for trace_id, expected in traces.items():
            trace = api.get(f"/api/v1/traces/{trace_id}").json()
            assert {k: trace[k] for k in expected} == expected, trace_id
            assert len({s["span_id"] for s in trace["spans"]}) == len(trace["spans"])
        # Each user's sessions: their totals, whichever server took each part of a trace.
        users: dict[str, dict] = {}
        for session_id, totals in sessions.items():
            user = users.setdefault(
                user_of(session_id),
                {"session_count": 0, "trace_count": 0, "input_tokens": 0, "cost_usd": 0.0},
            )
            user["session_count"] += 1
            user["trace_count"] += totals["trace_count"]
            user["input_tokens"] += totals["input_tokens"]
            user["cost_usd"] += totals["cost_usd"]
        listed = api.get("/api/v1/users", params={"limit": 100, "window": "all"}).json()["items"]
        assert {u["user_id"]: {k: u[k] for k in users[u["user_id"]]} for u in listed} == users
