"""The lists open on the last 7 days in a real browser: an older session is one choice
away (All time, which says what it may cost), the choice lives in the URL, and a
session's own Traces tab shows all its turns."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.otlp import new_trace_id

from .conftest import UI, Scenario, send
from .turns import Turn, turn_spans

DAY_NS = 86_400 * 10**9


def test_lists_open_on_the_last_seven_days(ui: UI, server, scenario: Scenario) -> None:
    ancient = Turn(
        new_trace_id(),
        "A month-old question",
        "An answer",
        scenario.base_ns - 10 * DAY_NS,
        400,
        10,
        2,
        0.0001,
    )
    send(server, turn_spans(ancient, "sess-ancient", "dora"))

    page = ui.go("/sessions")
    expect(page.locator("#range")).to_have_value("7d")
    expect(page.locator("tr.session-row", has_text="sess-alpha")).to_have_count(1)
    expect(page.locator("tr.session-row", has_text="sess-old")).to_have_count(1)  # 3 days
    expect(page.locator("tr.session-row", has_text="sess-ancient")).to_have_count(0)
    all_time = page.locator("#range option[value=all]")
    expect(all_time).to_contain_text("may be slow")
    expect(all_time).to_have_attribute("title", re.compile("large ClickHouse projects"))

    page.select_option("#range", "all")
    page.click("#filters button[type=submit]")
    page.wait_for_url(re.compile(r".*range=all.*"))
    expect(page.locator("tr.session-row", has_text="sess-ancient")).to_have_count(1)
    ui.shot("all-time")
    # The URL keeps the choice: opened again, it is all time still.
    page = ui.go(page.url.removeprefix(server.base_url))
    expect(page.locator("#range")).to_have_value("all")
    expect(page.locator("tr.session-row", has_text="sess-ancient")).to_have_count(1)

    # Traces and Users open on the window too.
    page = ui.go("/traces")
    expect(page.get_by_text("A month-old question")).to_have_count(0)
    page = ui.go("/users")
    expect(page.get_by_text("dora", exact=True)).to_have_count(0)
    page = ui.go("/users?range=all")
    expect(page.get_by_text("dora", exact=True)).not_to_have_count(0)
    # A session's Traces tab lists all its turns, whatever their age.
    page = ui.go("/traces?session_id=sess-ancient")
    expect(page.get_by_text("A month-old question")).not_to_have_count(0)
