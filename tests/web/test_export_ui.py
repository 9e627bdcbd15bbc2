"""The lists' Export menu in a real browser: the download holds the rows the page's
filters select, all of them, in the format chosen."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from playwright.sync_api import expect

from .conftest import UI, Scenario


def test_export_menu_keeps_the_filters(ui: UI, server, scenario: Scenario) -> None:
    page = ui.go("/sessions?user_id=alice&range=all")
    expect(page.locator("tr.session-row")).to_have_count(2)
    menu = page.get_by_test_id("export-menu")
    menu.locator("summary").click()
    expect(page.get_by_test_id("export-csv")).to_be_visible()
    ui.shot("menu")
    with page.expect_download() as download:
        page.get_by_test_id("export-csv").click()
    assert download.value.suggested_filename == "sessions.csv"
    text = Path(download.value.path()).read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    listed = server.get("/api/v1/sessions", user_id="alice")["items"]
    assert [r["session_id"] for r in rows] == [s["session_id"] for s in listed]
    assert sorted(r["session_id"] for r in rows) == ["sess-alpha", "sess-old"]
    assert [int(r["trace_count"]) for r in rows] == [s["trace_count"] for s in listed]

    # The Traces tab's menu, JSON Lines with every span, for one session.
    page = ui.go("/traces?session_id=sess-alpha&range=all")
    page.get_by_test_id("export-menu").locator("summary").click()
    with page.expect_download() as download:
        page.get_by_test_id("export-spans").click()
    assert download.value.suggested_filename == "traces.jsonl"
    lines = [json.loads(x) for x in Path(download.value.path()).read_text().splitlines()]
    turns = scenario.sessions["sess-alpha"]
    assert sorted(t["trace_id"] for t in lines) == sorted(t.trace_id for t in turns)
    for trace in lines:
        assert trace == server.get(f"/api/v1/traces/{trace['trace_id']}")
