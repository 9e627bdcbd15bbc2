"""Sorting the lists by a score from its column's header (headless Chromium), and an
unconfigured thumbs score read alike on the Users tab and the dashboard."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from .conftest import UI, Scenario


def _ids(page: Page, row_class: str) -> list[str]:
    return page.locator(f"tr.{row_class}").evaluate_all("rs => rs.map(r => r.dataset.id)")


def _score(server, **body) -> None:
    response = server.http.post("/api/v1/scores", json=body)
    assert response.status_code == 200, response.text


def _api_ids(server, path: str, key: str, **params) -> list[str]:
    return [item[key] for item in server.get(path, **params)["items"]]


def test_a_score_column_header_sorts_the_list(ui: UI, server, scenario: Scenario) -> None:
    # sess-alpha and sess-beta are two hours old, sess-old days old; only two are rated.
    _score(server, name="stars", value=2, session_id="sess-alpha")
    _score(server, name="stars", value=4, session_id="sess-old")
    page = ui.go("/sessions")

    page.get_by_test_id("sort-by-score").filter(has_text="stars").click()
    page.wait_for_url(re.compile(r".*sort=score%3Astars.*"))
    assert "order=" not in page.url
    best_first = _api_ids(server, "/api/v1/sessions", "session_id", sort="score:stars")
    assert best_first[:2] == ["sess-old", "sess-alpha"]
    assert _ids(page, "session-row") == best_first
    expect(page.locator("#sessions-table th.score-col[aria-sort=descending]")).to_have_count(1)
    # The Sort by menu says the direction too (on a phone the header is off screen).
    expect(page.locator("select[name=sort] option:checked")).to_have_text("Score: stars ▼")

    # Again: the other way; the unrated stay last.
    page.get_by_test_id("sort-by-score").filter(has_text="stars").click()
    page.wait_for_url(re.compile(r".*order=asc.*"))
    worst_first = _api_ids(
        server, "/api/v1/sessions", "session_id", sort="score:stars", order="asc"
    )
    assert worst_first[:2] == ["sess-alpha", "sess-old"]
    assert _ids(page, "session-row") == worst_first
    expect(page.locator("#sessions-table th.score-col[aria-sort=ascending]")).to_have_count(1)
    expect(page.locator("select[name=sort] option:checked")).to_have_text("Score: stars ▲")

    # The sort survives a reload and a filter applied from the bar, with the window.
    page.reload()
    assert _ids(page, "session-row") == worst_first
    page.locator("#range").select_option("24h")
    page.locator("#filters button[type=submit]").click()
    page.wait_for_load_state("load")
    assert "sort=score%3Astars" in page.url and "order=asc" in page.url
    assert "range=24h" in page.url
    windowed = _api_ids(
        server, "/api/v1/sessions", "session_id", sort="score:stars", order="asc", window="24h"
    )
    assert "sess-old" not in windowed and windowed[0] == "sess-alpha"
    assert _ids(page, "session-row") == windowed
    ui.shot("sessions-sorted-by-score")

    # The Traces tab sorts by a trace's scores the same way.
    alpha_turns = scenario.sessions["sess-alpha"]
    _score(server, name="tone", value="curt", trace_id=alpha_turns[0].trace_id)
    _score(server, name="tone", value="warm", trace_id=alpha_turns[1].trace_id)
    page = ui.go("/traces")
    page.get_by_test_id("sort-by-score").filter(has_text="tone").click()
    page.wait_for_url(re.compile(r".*sort=score_label%3Atone.*"))
    by_label = _api_ids(server, "/api/v1/traces", "trace_id", sort="score_label:tone")
    assert by_label[:2] == [alpha_turns[1].trace_id, alpha_turns[0].trace_id]
    assert _ids(page, "trace-row") == by_label


def test_an_unconfigured_thumbs_score_reads_as_good_everywhere(
    ui: UI, server, scenario: Scenario
) -> None:
    alpha = scenario.sessions["sess-alpha"]
    for turn, value in ((alpha[0], True), (alpha[1], True), (alpha[2], False)):
        _score(server, name="helped", value=value, trace_id=turn.trace_id)
    assert "helped" not in str(server.get("/api/v1/score-configs"))
    page = ui.go("/users")
    cell = page.locator("#users-table tr[data-id=alice] [data-col='score:helped']")
    expect(cell).to_have_text("67% good")
    page = ui.go("/dashboard")
    chart = page.locator('[data-chart="score-helped"]')
    expect(chart).to_contain_text("% good")
    expect(chart).not_to_contain_text("average")


def test_the_pager_and_the_headers_say_what_a_click_does(
    ui: UI, server, scenario: Scenario
) -> None:
    """Sorted by a score, page 2 leads back to the first page (of that sort, not the
    newest sessions); the Users tab's score headers, which sort nothing, do not look like
    the links they are on the Sessions tab."""
    for i, sid in enumerate(scenario.sessions):
        _score(server, name="stars", value=i + 1, session_id=sid)
    page = ui.go("/sessions?sort=score%3Astars&order=asc")
    first = _ids(page, "session-row")
    assert len(first) > 1
    # Fewer than a page of sessions here: page 2 starts after the API's first row.
    two = server.get("/api/v1/sessions", sort="score:stars", order="asc", limit=1)
    page = ui.go(f"/sessions?sort=score%3Astars&order=asc&cursor={two['next_cursor']}")
    back = page.get_by_test_id("first-page")
    expect(back).to_have_text("« First page")
    back.click()
    page.wait_for_load_state("load")
    assert "cursor=" not in page.url and "order=asc" in page.url
    assert _ids(page, "session-row") == first

    sessions_head = page.locator("#sessions-table th.score-col a.sort-head")
    expect(sessions_head).to_have_count(1)
    page = ui.go("/users")
    score_head = page.locator("#users-table th.score-col")
    expect(score_head).to_have_text("stars")
    expect(score_head.locator("a")).to_have_count(0)
    plain = page.locator("#users-table th", has_text="Sessions")
    color = "e => getComputedStyle(e).color"
    assert score_head.evaluate(color) == plain.evaluate(color)
