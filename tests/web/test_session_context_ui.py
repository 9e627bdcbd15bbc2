"""Inferred sessions and context growth in a real browser, against the API's numbers."""

from __future__ import annotations

import random

from playwright.sync_api import expect

from tests.chat_turns import BASE, SYSTEM, conversation, turn_spans

from .conftest import UI


def test_inferred_sessions_are_marked_in_the_list_and_on_their_page(ui: UI, server) -> None:
    rng = random.Random(7)
    inferred = conversation("inferred", BASE, rng=rng)
    sent = conversation("sent", BASE + 1_000_000_000, rng=rng)
    for turn in inferred:
        server.send(turn_spans(inferred, turn))
    for turn in sent:
        server.send(turn_spans(sent, turn, session_id="sent-by-app"))
    inferred_id = f"inferred-{inferred[0].trace_id}"
    page = ui.go("/sessions?range=all")  # conversations from 2023
    rows = page.locator("tr.session-row")
    expect(rows).to_have_count(2)
    mark = rows.filter(has_text=inferred_id).locator("[data-col=inferred]")
    expect(mark).to_have_attribute("data-value", "history")
    expect(mark).to_have_text("inferred · history")
    expect(rows.filter(has_text="sent-by-app").locator("[data-col=inferred]")).to_have_count(0)
    ui.shot("sessions")
    rows.filter(has_text=inferred_id).locator("a[data-col=session_id]").click()
    page.wait_for_url(f"**/sessions/{inferred_id}")
    expect(page.get_by_test_id("inferred")).to_contain_text("inferred · history")
    expect(page.locator("[data-testid=session-totals] [data-col=trace_count]")).to_have_text("3")
    ui.shot("session")


def test_context_chart_and_the_peak_context_sort_and_filter(ui: UI, server) -> None:
    rng = random.Random(8)
    turns = conversation("ctx", BASE, turns=4, rng=rng)
    for turn, tokens in zip(turns, (12_800, 25_600, 6_400, 9_600), strict=True):
        turn.input_tokens = tokens
    cache = "gen_ai.usage.cache_read_input_tokens"
    summary = [("system", SYSTEM), ("system", "Summary: a trip to Lisbon was planned.")]
    server.send(turn_spans(turns, turns[0], session_id="ctx", **{cache: 3_200}))
    server.send(turn_spans(turns, turns[1], session_id="ctx", **{cache: 12_800}))
    server.send(turn_spans(turns, turns[2], session_id="ctx", history=summary))
    after = [*summary, ("user", turns[2].question), ("assistant", turns[2].reply)]
    server.send(turn_spans(turns, turns[3], session_id="ctx", history=after))
    small = conversation("small", BASE + 10**9, turns=1, rng=rng)
    small[0].input_tokens = 1_280
    server.send(turn_spans(small, small[0], session_id="small"))

    page = ui.go("/sessions/ctx")
    chart = page.get_by_test_id("context-growth")
    expect(chart.locator("g.ctx-turn")).to_have_count(4)
    expect(chart.locator("path.ctx-drop")).to_have_count(1)
    expect(chart.locator("g.ctx-turn[data-turn='3'] path.ctx-drop")).to_have_count(1)
    rows = page.get_by_test_id("context-turns").locator("tbody tr")
    expect(rows).to_have_count(4)
    expected = [
        ("12800", "128000", "0.1", "0.25", "kept", "10.0%", "25%"),
        ("25600", "128000", "0.2", "0.5", "kept", "20.0%", "50%"),
        ("6400", "128000", "0.05", "", "dropped", "5.0%", "—"),
        ("9600", "128000", "0.075", "", "kept", "7.5%", "—"),
    ]
    for row, (tokens, window, use, cached, history, shown_use, shown_cached) in zip(
        rows.all(), expected, strict=True
    ):
        values = {
            cell.get_attribute("data-col"): cell.get_attribute("data-value")
            for cell in row.locator("[data-col]").all()
        }
        assert values == {
            "input_tokens": tokens,
            "context_window": window,
            "use": use,
            "cached": cached,
            "history": history,
        }
        expect(row.locator("[data-col=use]")).to_have_text(shown_use)
        expect(row.locator("[data-col=cached]")).to_have_text(shown_cached)
    # The tallest bar is the second turn's, its cached half shaded.
    heights = [
        float(bar.get_attribute("height") or 0) for bar in chart.locator("rect.ctx-input").all()
    ]
    assert heights.index(max(heights)) == 1
    cached = float(chart.locator("rect.ctx-cached").nth(1).get_attribute("height") or 0)
    assert abs(cached - heights[1] / 2) < 1e-6
    ui.shot("context")

    page = ui.go("/sessions?range=all")  # conversations from 2023
    page.locator("select[name=sort]").select_option("context")
    page.locator("button[type=submit]", has_text="Apply").click()
    page.wait_for_url("**sort=context**")
    rows = page.locator("tr.session-row")
    assert rows.evaluate_all("rs => rs.map(r => r.dataset.id)") == ["ctx", "small"]
    expect(rows.first.locator("[data-col=peak_context_use]")).to_have_text("20%")
    page.locator("input[name=context]").fill("15")
    page.locator("button[type=submit]", has_text="Apply").click()
    page.wait_for_url("**context=15**")
    expect(page.locator("tr.session-row")).to_have_count(1)
    assert page.locator("tr.session-row").first.get_attribute("data-id") == "ctx"
    ui.shot("sessions-by-context")
    # The unit typed too, as the field's label shows it: the same filter, not a 400.
    page.locator("input[name=context]").fill("15 %")
    with page.expect_navigation() as navigation:
        page.locator("button[type=submit]", has_text="Apply").click()
    assert navigation.value is not None and navigation.value.status == 200, page.url
    expect(page.locator("tr.session-row")).to_have_count(1)
    expect(page.locator("input[name=context]")).to_have_value("15")
