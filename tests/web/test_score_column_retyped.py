"""A list's score column follows its name's new type once the name's scores were
deleted and written again with another (the lists keep each name's type a while)."""

from __future__ import annotations

import re

import httpx

from .conftest import Scenario


def _column_kind(page: httpx.Client, name: str) -> str:
    html = page.get("/sessions", params={"range": "all"}).text
    head = re.search(
        rf'<th class="num score-col" data-col="score:{name}" title="Score “{name}”: ([^"]+)">', html
    )
    assert head is not None, html[-2000:]
    return head.group(1)


def test_a_rewritten_names_column_reads_its_new_type(server, scenario: Scenario) -> None:
    page = httpx.Client(base_url=server.base_url, cookies={"threadline_session": server.api_key})
    score = {"name": "verdict", "session_id": "sess-alpha", "value": True}
    first = server.http.post("/api/v1/scores", json=score)
    assert first.status_code == 200, first.text
    assert _column_kind(page, "verdict") == "share of good"

    # Deleted and written again as a number: the column is a number's at once.
    assert server.http.delete(f"/api/v1/scores/{first.json()['id']}").status_code == 204
    second = server.http.post("/api/v1/scores", json=score | {"value": 4.0})
    assert second.status_code == 200, second.text
    assert second.json()["data_type"] == "numeric"
    assert _column_kind(page, "verdict") == "average, or the latest label"
