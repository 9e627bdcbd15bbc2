"""Every link and form the lists and the dashboard make reads back: the pages now
refuse what they cannot read (a 400), so a link that carried a filter to a tab that
does not take it, or a score sort's order kept with a plain sort, would break. Walked in
headless Chromium from filtered, score-sorted states of each page."""

from __future__ import annotations

import re
import time
from urllib.parse import urljoin

import httpx
from playwright.sync_api import Page, expect

from tests.otlp import SpanSpec, new_trace_id
from threadline.server.web.auth import COOKIE

from .conftest import UI, Scenario, send

STATES = [
    "/sessions?sort=score%3Astars&order=asc&filter=turns%3E%3D1&context=0&status=ok&q=order",
    "/sessions?sort=cost&filter=errors%3D0&filter=turns%3E0&range=24h&tag=vip",
    "/traces?sort=score_label%3Atone&order=asc&filter=spans%3E%3D1&score=stars+%3E%3D+0"
    "&missing_score=other&session_id=sess-alpha&metadata=plan%3Dpro",
    "/traces?sort=relevance&q=order&filter=cost%3E0",
    "/users?range=30d&user_id=alice",
    "/dashboard?group_by=tag",
    "/dashboard?range=custom&start=2026-01-01T00%3A00%3A00Z&bucket=week&group_by=metadata%3Aplan",
]


def _score(server, **body) -> None:
    response = server.http.post("/api/v1/scores", json=body)
    assert response.status_code == 200, response.text


def _links(page: Page) -> list[str]:
    hrefs = page.locator("a[href]").evaluate_all("as => as.map(a => a.getAttribute('href'))")
    return sorted(
        {h for h in hrefs if h.startswith("/") and not h.startswith(("/api/", "/static/"))}
    )


def test_every_link_of_the_lists_and_the_dashboard_reads_back(
    ui: UI, server, scenario: Scenario
) -> None:
    _score(server, name="stars", value=2, session_id="sess-alpha")
    alpha = scenario.sessions["sess-alpha"]
    _score(server, name="tone", value="warm", trace_id=alpha[0].trace_id)
    walked: set[str] = set()
    cookies = {COOKIE: server.api_key}
    with httpx.Client(base_url=server.base_url, cookies=cookies, timeout=30) as web:
        for state in STATES:
            page = ui.go(state)
            assert page.get_by_test_id("error-page").count() == 0, state
            links = _links(page)
            assert any(h.startswith(("/sessions?", "/traces?", "/users")) for h in links), state
            for href in links:
                if href in walked:
                    continue
                walked.add(href)
                answer = web.get(href, headers={"Accept": "text/html"})
                assert answer.status_code < 400, (state, href, answer.text[-800:])
            # Live mode's stream: the list's filters and columns.
            live = page.locator("#live")
            if live.count():
                url = live.get_attribute("data-stream") or ""
                after = live.get_attribute("data-after") or ""
                stream = {"Accept": "text/event-stream"}
                params = {"after": after}
                with web.stream("GET", url, params=params, headers=stream) as answer:
                    assert answer.status_code == 200, (state, url, answer.read()[:500])
    # The tabs, a score column's header, the pager, export and every chart's bar.
    assert any("sort=score" in h for h in walked)
    assert any(h.startswith("/export/") for h in walked)
    assert any("range=custom" in h for h in walked)


def test_the_filter_bar_drops_a_score_sorts_order_with_another_sort(
    ui: UI, server, scenario: Scenario
) -> None:
    _score(server, name="stars", value=2, session_id="sess-alpha")
    for tab, other in (("sessions", "cost"), ("traces", "last_activity")):
        page = ui.go(f"/{tab}?sort=score%3Astars&order=asc&range=24h")
        page.locator("select[name=sort]").select_option(other)
        with page.expect_navigation() as navigation:
            page.locator("#filters button[type=submit]").click()
        response = navigation.value
        assert response is not None and response.status == 200, page.url
        assert "order=" not in page.url and "range=24h" in page.url
        # Back to the score sort: its order goes with it.
        page = ui.go(f"/{tab}?sort=score%3Astars&order=asc")
        with page.expect_navigation() as navigation:
            page.locator("#filters button[type=submit]").click()
        assert navigation.value is not None and navigation.value.status == 200
        assert re.search(r"order=asc", page.url), page.url


def test_a_tab_carries_only_the_filters_it_reads(ui: UI, server, scenario: Scenario) -> None:
    page = ui.go("/sessions?filter=turns%3E%3D2&filter=cost%3E0&context=10&user_id=alice")
    href = page.locator(".tabs a", has_text="Traces").get_attribute("href") or ""
    # turns and the context are the Sessions tab's; cost and the user are both tabs'.
    assert "turns" not in href and "context" not in href
    assert "cost%3E0" in href and "user_id=alice" in href
    page.locator(".tabs a", has_text="Traces").click()
    page.wait_for_url(re.compile(r".*/traces\?.*"))
    assert page.get_by_test_id("error-page").count() == 0
    page = ui.go("/traces?session_id=sess-alpha&filter=spans%3E%3D1&sort=relevance&q=order")
    href = page.locator(".tabs a", has_text="Sessions").get_attribute("href") or ""
    assert "session_id" not in href and "sort=relevance" in href
    assert urljoin(server.base_url, href).startswith(server.base_url + "/sessions?")
    page.locator(".tabs a", has_text="Sessions").click()
    page.wait_for_url(re.compile(r".*/sessions\?.*"))
    assert page.get_by_test_id("error-page").count() == 0


def test_the_next_page_keeps_its_filters_and_a_changed_filter_starts_over(ui: UI, server) -> None:
    now = time.time_ns()
    spans = [
        SpanSpec(
            f"turn {i}",
            now - (100 - i) * 10**9,
            now - (100 - i) * 10**9 + 10**6,
            trace_id=new_trace_id(),
            attributes={"session.id": f"paged-{i:03}", "user.id": "pager"},
        )
        for i in range(60)
    ]
    send(server, spans)
    page = ui.go("/sessions?user_id=pager&filter=turns%3E%3D1&sort=start")
    expect(page.locator("tr.session-row")).to_have_count(50)
    page.get_by_test_id("next-page").click()
    page.wait_for_url(re.compile(r".*cursor=.*"))
    assert page.get_by_test_id("error-page").count() == 0
    expect(page.locator("tr.session-row")).to_have_count(10)
    assert "user_id=pager" in page.url and "sort=start" in page.url
    # Live mode is for the first page only: no stream carries a cursor.
    expect(page.locator("#live")).to_have_count(0)
    # A filter changed from the bar starts the list over: the form sends no cursor.
    page.locator("input[name=filter]").first.fill("turns>=0")
    with page.expect_navigation() as navigation:
        page.locator("#filters button[type=submit]").click()
    assert navigation.value is not None and navigation.value.status == 200
    assert "cursor=" not in page.url
    expect(page.locator("tr.session-row")).to_have_count(50)
    # A cursor edited into another filter's address is the 400 page, not a page that
    # starts mid-list.
    page.get_by_test_id("next-page").click()
    page.wait_for_url(re.compile(r".*cursor=.*"))
    response = page.goto(page.url.replace("user_id=pager", "user_id=someone"))
    assert response is not None and response.status == 400
    expect(page.get_by_test_id("error-message")).to_contain_text("cursor")
    ui.errors.clear()  # the 400, which Chromium logs
