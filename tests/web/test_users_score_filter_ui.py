"""The Users tab filtered by a rare score in a real browser: a page reads a bounded
stretch of users, so when none of the most recent thousands match, the page says the
list goes on and *Next page* reads further back, to the user who matches."""

from __future__ import annotations

import time

from playwright.sync_api import expect

from tests.otlp import new_span_id, new_trace_id, span

from .conftest import UI

S = 10**9
# More recent users than a page's stretches read (200, 800, 1,000 and 1,000 for a page
# of 50): the one scored user comes after all of them.
RECENT_USERS = 3_050


def test_a_rare_score_filter_reads_on_past_a_page_of_no_match(ui: UI, server) -> None:
    now = time.time_ns() // S * S - 3600 * S
    scored_trace = new_trace_id()
    spans = [
        span(
            scored_trace,
            new_span_id(),
            name="turn",
            start_ns=now - 3600 * S,
            attributes={"threadline.user.id": "early-bird"},
        )
    ]
    spans += [
        span(
            new_trace_id(),
            new_span_id(),
            name="turn",
            start_ns=now + n * S,
            attributes={"threadline.user.id": f"user-{n:05d}"},
        )
        for n in range(RECENT_USERS)
    ]
    for i in range(0, len(spans), 1000):
        server.send(spans[i : i + 1000])
    response = server.http.post(
        "/api/v1/scores", json={"name": "escalated", "value": True, "trace_id": scored_trace}
    )
    assert response.status_code == 200, response.text

    api = server.get("/api/v1/users", score="escalated = true")
    assert api["items"] == [] and api["next_cursor"]
    page = ui.go("/users?score=escalated+%3D+true")
    expect(page.get_by_test_id("empty-stretch")).to_contain_text("The list goes on")
    expect(page.locator("#users-table")).to_have_count(0)
    ui.shot("no-match-yet")
    page.get_by_test_id("next-page").click()
    expect(page.locator("#users-table tbody tr")).to_have_count(1)
    expect(page.locator("#users-table tbody tr")).to_have_attribute("data-id", "early-bird")
    assert (
        server.get("/api/v1/users", score="escalated = true", cursor=api["next_cursor"])["items"][
            0
        ]["user_id"]
        == "early-bird"
    )
