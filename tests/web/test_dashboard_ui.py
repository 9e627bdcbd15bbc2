"""The Dashboard tab in real Chromium: its bars carry the figures of
``GET /api/v1/metrics``, the range, bucket and grouping controls change them, and a bar
opens the list of what it counts."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Browser

from .conftest import UI, Scenario, sign_in


def bars(ui: UI, chart: str) -> list[float]:
    return [
        float(v)
        for v in ui.page.locator(f'[data-chart="{chart}"] rect').evaluate_all(
            "els => els.map(e => e.dataset.value)"
        )
    ]


def api_series(
    server: Any, page_url: str, metric: str, by: str = "group"
) -> dict[str | None, list[float | None]]:
    """The API's series for the page's own query (its JSON link), by group or model."""
    query = parse_qs(urlsplit(page_url).query)
    got = server.get("/api/v1/metrics", **query)
    return {s[by]: s["values"] for s in got["series"] if s["metric"] == metric}


def test_dashboard_charts_group_and_click_through(ui: UI, server: Any, scenario: Scenario):
    page = ui.go("/dashboard")
    assert page.locator('.tabs a[aria-selected="true"]').inner_text() == "Dashboard"
    # Last 7 days by day: the 6 traces of the scenario (3 + 2 + the old one + the lone).
    json_url = page.locator('a:text("JSON")').get_attribute("href")
    assert json_url
    expected = api_series(server, json_url, "traces")[None]
    assert sum(bars(ui, "traces")) == sum(v or 0 for v in expected) == 7
    assert sum(bars(ui, "sessions")) == 3  # alpha, beta, old: each on one day
    # The scenario's 20 minutes (from two hours ago: across midnight UTC just after it):
    # alpha's 3, beta's 2, the lone turn, on its one day or two.
    days = {
        datetime.fromtimestamp(scenario.base_ns / 1e9 + offset, UTC).strftime("%b %d")
        for offset in (0, 1300)
    }
    tooltips = page.locator('[data-chart="traces"] rect title').all_text_contents()
    per_day = dict(tip.rsplit(": ", 1) for tip in tooltips)
    assert sum(float(per_day[day].replace(",", "")) for day in days) == 6
    # Cost and tokens split by model: alpha's, the old and the lone turns are chats with
    # gpt-4o-mini; beta's spans name no model. Stacked, they add up to the totals.
    legend = page.locator('[data-chart="cost_by_model"] .legend').inner_text()
    assert "gpt-4o-mini" in legend and "(no model)" in legend
    assert sum(bars(ui, "cost_by_model")) == pytest.approx(sum(bars(ui, "cost")))
    assert sum(bars(ui, "tokens_by_model")) == sum(bars(ui, "tokens")) > 0
    by_model = api_series(server, json_url, "total_tokens_by_model", by="model")
    assert set(by_model) == {"gpt-4o-mini", ""}

    # Beta's second turn failed: of the sessions active on beta's day (alpha's too, unless
    # midnight UTC fell between them), it is the one with an error.
    def day_of(offset: float) -> str:
        return datetime.fromtimestamp(scenario.base_ns / 1e9 + offset, UTC).strftime("%b %d")

    shared = day_of(600) in {day_of(0), day_of(120)}
    assert max(bars(ui, "session_error_rate")) == pytest.approx(1 / 2 if shared else 1.0)
    ui.shot("7d")

    # Last 24 hours, bucket auto = hour: the old session drops out.
    page.select_option("#range", "24h")
    page.click("#filters button[type=submit]")
    page.wait_for_url(re.compile(r".*range=24h.*"))
    assert "auto (hour)" in page.locator("#bucket").inner_text()
    json_url = page.locator('a:text("JSON")').get_attribute("href")
    assert json_url and "bucket=hour" in json_url
    hourly = api_series(server, json_url, "sessions")[None]
    assert len(hourly) in (24, 25)
    # A session that crosses an hour counts in both hours (as the lists would show it).
    assert bars(ui, "sessions") == hourly and 2 <= sum(v or 0 for v in hourly) <= 4

    # Grouped by tag: alpha's turns are tagged vip, the rest are not.
    page.fill("#group_by", "tag")
    page.click("#filters button[type=submit]")
    page.wait_for_url(re.compile(r".*group_by=tag.*"))
    legend = page.locator('[data-chart="sessions"] .legend').inner_text()
    assert "vip" in legend and "(none)" in legend
    json_url = page.locator('a:text("JSON")').get_attribute("href")
    assert json_url
    by_tag = api_series(server, json_url, "traces")
    assert sum(v or 0 for v in by_tag["vip"]) == 3
    ui.shot("24h-by-tag")
    # The Users list cannot filter by tag: a grouped active-users bar opens the traces of
    # its bucket with its tag, whose users it counts.
    users_bar = page.locator(
        '[data-chart="active_users"] a.bar', has=page.locator("title", has_text="vip")
    ).first
    href = users_bar.get_attribute("href") or ""
    assert href.startswith("/traces?") and parse_qs(urlsplit(href).query)["tag"] == ["vip"]

    # A vip bar of the sessions chart opens the sessions of its hour with that tag.
    vip_bar = page.locator(
        '[data-chart="sessions"] a.bar', has=page.locator("title", has_text="vip")
    )
    vip_bar = vip_bar.filter(has=page.locator('rect:not([data-value="0.0"])')).first
    counted = float(vip_bar.locator("rect").get_attribute("data-value") or "0")
    assert counted == 1
    vip_bar.click()
    page.wait_for_url(re.compile(r".*/sessions\?.*"))
    params = parse_qs(urlsplit(page.url).query)
    assert params["range"] == ["custom"] and params["tag"] == ["vip"]
    assert "start" in params and "end" in params
    rows = page.locator("#sessions-table tbody tr[data-id]")
    assert rows.count() == counted
    assert rows.first.get_attribute("data-id") == "sess-alpha"
    ui.shot("clicked-through")


def test_dashboard_fits_a_phone(browser: Browser, server: Any, scenario: Scenario):
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    sign_in(page, server.base_url, server.api_key)
    page.goto(server.base_url + "/dashboard?range=24h&group_by=metadata:plan")
    assert page.locator('[data-chart="traces"] rect').count() > 0
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, width
    box = page.locator('[data-chart="traces"] svg').bounding_box()
    assert box and box["width"] > 300
    page.screenshot(path="test-artifacts/web/dashboard-phone.png", full_page=True)
    context.close()
