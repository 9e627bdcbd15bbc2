"""Search and numeric filters in a real browser: the Sessions and Traces tabs' search
(a word of a later turn, a phrase, a CJK word, a word of a tool's result) with snippets,
the filter bar's numeric filters alone and combined, kept in the URL, and search inside
a session that jumps between its matches."""

from __future__ import annotations

import json
import re
from urllib.parse import quote

from playwright.sync_api import expect

from tests.otlp import new_span_id, request, span

from .conftest import UI, Scenario
from .turns import MS


def _send_more(server, scenario: Scenario) -> None:
    """A Japanese session, and one whose tool returned a forecast."""
    start = scenario.base_ns + 1800 * 10**9
    jp, tool = "1" * 31 + "a", "2" * 31 + "b"
    root = new_span_id()
    spans = [
        span(
            jp,
            new_span_id(),
            name="chat",
            start_ns=start,
            end_ns=start + 300 * MS,
            attributes={
                "session.id": "sess-jp",
                "threadline.span.input": json.dumps(
                    [{"role": "user", "content": "京都から大阪までの行き方を教えて"}]
                ),
                "threadline.span.output": json.dumps(
                    [{"role": "assistant", "content": "電車で約三十分です"}]
                ),
            },
        ),
        span(
            tool,
            root,
            name="handle_turn",
            start_ns=start + 10**9,
            end_ns=start + 2 * 10**9,
            attributes={
                "session.id": "sess-weather",
                "threadline.span.input": json.dumps({"message": "Weather in Nice?"}),
                "threadline.span.output": json.dumps({"reply": "Windy."}),
            },
        ),
        span(
            tool,
            new_span_id(),
            parent=root,
            name="get_weather",
            start_ns=start + 10**9 + 100 * MS,
            end_ns=start + 10**9 + 200 * MS,
            attributes={
                "threadline.span.type": "TOOL",
                "threadline.span.input": json.dumps({"city": "Nice"}),
                "threadline.span.output": json.dumps({"forecast": "a sirocco gust by noon"}),
            },
        ),
    ]
    assert server.export(request(spans).SerializeToString()).status_code == 200


def _listed(page) -> list[str]:
    return page.locator("tr.session-row").evaluate_all("rows => rows.map(r => r.dataset.id)")


def test_sessions_search_and_numeric_filters(ui: UI, server, scenario: Scenario) -> None:
    _send_more(server, scenario)
    page = ui.go("/sessions")
    search = page.locator("input[name=q]")
    # A word the user said in the second turn finds the session, its snippet marked.
    search.fill("Lisbon")
    search.press("Enter")
    page.wait_for_url(re.compile(r".*q=Lisbon"))
    assert _listed(page) == ["sess-alpha"]
    expect(page.get_by_test_id("snippet").locator("mark")).to_have_text(["Lisbon"])
    ui.shot("sessions-search")
    # A phrase, a CJK word, a word of a tool's result.
    for text, expected in (
        ('"order service"', ["sess-beta"]),
        ('"service order"', []),
        ("大阪", ["sess-jp"]),
        ("sirocco", ["sess-weather"]),
    ):
        page = ui.go("/sessions?q=" + quote(text))
        assert _listed(page) == expected, text
    # The snippet leads to the search inside the session.
    page = ui.go("/sessions?q=sirocco")
    page.get_by_test_id("snippet").click()
    expect(page.get_by_test_id("find-count")).to_have_text("1 of 1")
    expect(page.get_by_test_id("find-snippet").locator("mark")).to_have_text(["sirocco"])
    # Numeric filters, typed in the filter bar, alone and with the other filters.
    page = ui.go("/sessions")
    number = page.get_by_test_id("number-filter")
    number.fill("turns>=3")
    number.press("Enter")
    page.wait_for_url(re.compile(r".*filter=turns%3E%3D3"))
    assert _listed(page) == ["sess-alpha"]
    # Kept in the URL: a reload shows the same filter and rows.
    page.reload()
    expect(page.get_by_test_id("number-filter")).to_have_value("turns>=3")
    assert _listed(page) == ["sess-alpha"]
    page = ui.go("/sessions?filter=turns%3E%3D2&status=error")
    assert _listed(page) == ["sess-beta"]
    page = ui.go("/sessions?filter=turns%3E%3D2&filter=errors%3D0")
    assert _listed(page) == ["sess-alpha"]
    page = ui.go("/sessions?filter=duration%3C1&q=" + quote("大阪"))
    assert _listed(page) == ["sess-jp"]
    page = ui.go("/sessions?filter=cost%3E0.005&user_id=alice")
    assert _listed(page) == ["sess-alpha"]
    # A bad filter is the 400 page saying why, not a list without it.
    page = ui.go("/sessions?filter=colour%3E3")
    expect(page.get_by_test_id("error-message")).to_contain_text("no field 'colour'")
    ui.errors.clear()  # the 400, which Chromium logs


def test_traces_search_and_numeric_filters(ui: UI, server, scenario: Scenario) -> None:
    _send_more(server, scenario)
    page = ui.go("/traces?q=sirocco")
    rows = page.locator("tr.trace-row")
    expect(rows).to_have_count(1)
    expect(rows.locator(".snippet mark")).to_have_text(["sirocco"])
    lisbon = scenario.sessions["sess-alpha"][1].trace_id
    page = ui.go("/traces?q=Lisbon")
    assert rows.evaluate_all("rows => rows.map(r => r.dataset.id)") == [lisbon]
    # Turn 2 of alpha lasted 2.5 s, the longest of all.
    page = ui.go("/traces")
    number = page.get_by_test_id("number-filter")
    number.fill("duration>2")
    number.press("Enter")
    page.wait_for_url(re.compile(r".*filter=duration%3E2"))
    assert rows.evaluate_all("rows => rows.map(r => r.dataset.id)") == [lisbon]
    page = ui.go("/traces?filter=duration%3E2&q=Osaka")
    expect(rows).to_have_count(0)


def test_search_inside_a_session_jumps_between_matches(ui: UI, server, scenario) -> None:
    expected = server.get("/api/v1/session-search", session_id="sess-alpha", q="it")
    assert len(expected) >= 3, expected
    page = ui.go("/sessions/sess-alpha")
    find = page.get_by_test_id("session-find").locator("input[name=find]")
    find.fill("it")
    find.press("Enter")
    count = page.get_by_test_id("find-count")
    expect(count).to_have_text(f"1 of {len(expected)}")
    found = page.get_by_test_id("found-turn")
    expect(found).to_have_attribute("id", f"turn-{expected[0]['turn']}")
    # The words are marked in the turn as shown.
    expect(found.locator("mark.find-mark").first).to_be_visible()
    ui.shot("session-find-1")
    for number in range(2, len(expected) + 1):
        page.get_by_test_id("find-next").click()
        expect(count).to_have_text(f"{number} of {len(expected)}")
        expect(page.get_by_test_id("found-turn")).to_have_attribute(
            "id", f"turn-{expected[number - 1]['turn']}"
        )
    # Next from the last goes round to the first; previous from the first to the last.
    page.get_by_test_id("find-next").click()
    expect(count).to_have_text(f"1 of {len(expected)}")
    page.get_by_test_id("find-prev").click()
    expect(count).to_have_text(f"{len(expected)} of {len(expected)}")
    assert re.search(rf"match={len(expected)}", page.url)
    # A word not in the session says so.
    page = ui.go("/sessions/sess-alpha?find=Osaka")
    expect(page.get_by_test_id("find-count")).to_have_text("No match")
    expect(page.get_by_test_id("found-turn")).to_have_count(0)
