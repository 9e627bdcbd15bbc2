"""Inferred sessions on ClickHouse converge when inserts become visible late, out of
order, and on each server's replica at its own time (``delayed_inserts.py``).

Three Threadline server processes, each through its own lagging replica of one chDB
engine, receive at once, in shuffled order, the turns of conversations sent without a
session id (each turn to some server, some turns twice: to a second server, or again):
chats that resend their history, and turns tied only by a framework's thread id. Once
the replicas have caught up, every server lists each conversation as one inferred
session of exactly its turns: no turn needed to see another to find its session.
(A Responses chain is not among them: its later turns read the session their
predecessor stored, which a lagging replica may not show yet; api.md says so.)
"""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests import otlp
from tests.chat_turns import BASE, conversation, turn_spans
from tests.store.lagging_servers import lagging_servers
from threadline.server.model import ns_to_datetime

pytestmark = [pytest.mark.clickhouse, pytest.mark.slow]

SERVERS = 3


def test_inferred_sessions_converge_with_lagging_replicas(tmp_path: Path):
    with lagging_servers(tmp_path, SERVERS, delay_s=(1.0, 4.0)) as lagging:
        key, servers, replicas = lagging.key, lagging.servers, lagging.replicas
        rng = random.Random(12)
        chats = [conversation(name, BASE, rng=rng) for name in ("red", "green", "blue", "grey")]
        threads = [conversation(name, BASE, rng=rng) for name in ("t-1", "t-2")]
        exports = [turn_spans(turns, turn) for turns in chats for turn in turns]
        exports += [
            turn_spans(
                turns,
                turn,
                history=[("system", "You are terse.")],
                **{"threadline.metadata.thread_id": turns[0].conversation},
            )
            for turns in threads
            for turn in turns
        ]
        jobs = list(enumerate(exports))
        rng.shuffle(jobs)
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/x-protobuf"}
        local = threading.local()
        barrier = threading.Barrier(6)

        def send(job: tuple[int, list]) -> list[int]:
            index, spans = job
            client = getattr(local, "client", None)
            if client is None:
                client = local.client = httpx.Client(timeout=60)
                barrier.wait()
            body = otlp.request(spans).SerializeToString()
            first = servers[index % SERVERS]
            targets = [first]
            if index % 3 == 0:  # the same export to a second server
                targets.append(servers[(index + 1) % SERVERS])
            if index % 5 == 0:  # a retry of an export that was stored
                targets.append(first)
            return [
                client.post(s.base_url + "/v1/traces", content=body, headers=headers).status_code
                for s in targets
            ]

        with ThreadPoolExecutor(max_workers=6) as pool:
            statuses = [code for codes in pool.map(send, jobs) for code in codes]
        assert set(statuses) == {200}, statuses
        for server in servers:
            health = httpx.get(server.base_url + "/healthz", params={"wait": 60}).json()
            assert health["queued_exports"] == 0
        assert sum(replica.pending for replica in replicas) > 0  # the lag is real

        for replica in replicas:
            replica.settle()
        want = {
            frozenset(t.trace_id for t in turns): signal
            for group, signal in ((chats, "history"), (threads, "thread_id"))
            for turns in group
        }
        for server in servers:
            assert _inferred(server.base_url, key) == want


def _inferred(base_url: str, key: str) -> dict[frozenset[str], str]:
    """Each session by the set of its traces, with the one signal that grouped it."""
    window = {
        "start": ns_to_datetime(BASE - 86_400 * 10**9).isoformat(),
        "end": ns_to_datetime(BASE + 86_400 * 10**9).isoformat(),
    }
    found = {}
    with httpx.Client(
        base_url=base_url, timeout=30, headers={"Authorization": f"Bearer {key}"}
    ) as api:
        listed = api.get("/api/v1/sessions", params={"limit": 100, **window}).json()["items"]
        for session in listed:
            detail = api.get(f"/api/v1/sessions/{session['session_id']}").json()
            traces = frozenset(t["trace_id"] for t in detail["traces"])
            assert session["trace_count"] == len(traces) and session["inferred"] is True
            (signal,) = session["inferred_by"]
            found[traces] = signal
    return found
