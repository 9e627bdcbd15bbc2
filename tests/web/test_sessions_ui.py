"""Sessions tab and session page in a real browser, against the API's numbers."""

from __future__ import annotations

import json
import re

from playwright.sync_api import expect

from .conftest import UI, Scenario, cells, close


def test_sessions_tab_shows_api_totals_and_expands(ui: UI, server, scenario: Scenario) -> None:
    page = ui.go("/sessions")
    expect(page.get_by_test_id("project-name")).to_have_text(re.compile(r"test-project-\d+"))
    api = server.get("/api/v1/sessions")["items"]
    rows = page.locator("tr.session-row")
    # Same sessions, same order (latest activity first) as the JSON twin.
    expect(rows).to_have_count(3)
    assert rows.evaluate_all("rs => rs.map(r => r.dataset.id)") == [s["session_id"] for s in api]
    assert [s["session_id"] for s in api] == ["sess-beta", "sess-alpha", "sess-old"]
    for i, session in enumerate(api):
        values = cells(rows.nth(i))
        assert values["trace_count"] == str(session["trace_count"])
        assert values["span_count"] == str(session["span_count"])
        assert values["tokens"] == f"{session['input_tokens']}:{session['output_tokens']}"
        assert values["error_count"] == str(session["error_count"])
        assert close(values["cost_usd"], session["cost_usd"])
        assert close(values["duration_ms"], session["duration_ms"], 3)
    # And the numbers match what was sent, not only what the API says.
    alpha = rows.filter(has_text="sess-alpha")
    turns = scenario.sessions["sess-alpha"]
    expect(alpha.locator("[data-col=trace_count]")).to_have_text("3")
    expect(alpha.locator("[data-col=tokens]")).to_have_text(
        f"{sum(t.input_tokens for t in turns):,} → {sum(t.output_tokens for t in turns):,}"
    )
    expect(alpha.locator("[data-col=cost_usd]")).to_have_text("$0.0051")
    wall_ms = (turns[-1].end_ns - turns[0].start_ns) / 1e6
    assert close(cells(alpha)["duration_ms"], wall_ms, 3)
    expect(alpha).to_contain_text("Where is my order #1234?")
    expect(rows.filter(has_text="sess-beta").locator("[data-col=error_count]")).to_have_text("1")
    ui.shot("sessions")

    # Expand in place: the session's traces, in start order, with their previews.
    alpha.locator(".caret").click()
    inner = page.locator("tr.expansion[data-for=sess-alpha] tr.inner-trace")
    expect(inner).to_have_count(3)
    assert inner.evaluate_all("rs => rs.map(r => r.dataset.id)") == [t.trace_id for t in turns]
    expect(inner.nth(1).locator("[data-col=input]")).to_contain_text("Can it go to Lisbon")
    expect(inner.nth(1).locator("[data-col=output]")).to_contain_text("I changed the address")
    detail = server.get("/api/v1/sessions/sess-alpha")
    for i, trace in enumerate(detail["traces"]):
        values = cells(inner.nth(i))
        assert values["total_tokens"] == str(trace["total_tokens"])
        assert close(values["cost_usd"], trace["cost_usd"])
    ui.shot("sessions-expanded")
    # Each expanded trace links to the trace view.
    inner.nth(0).locator("a").first.click()
    page.wait_for_url(f"**/traces/{turns[0].trace_id}")


def test_sessions_filters_and_sorting(ui: UI, server, scenario: Scenario) -> None:
    page = ui.go("/sessions")
    # User filter through the filter bar.
    page.fill("input[name=user_id]", "alice")
    page.click("#filters button[type=submit]")
    page.wait_for_url(re.compile(r".*user_id=alice.*"))
    ids = page.locator("tr.session-row").evaluate_all("rs => rs.map(r => r.dataset.id)")
    api = server.get("/api/v1/sessions", user_id="alice")["items"]
    assert ids == [s["session_id"] for s in api] == ["sess-alpha", "sess-old"]
    # Time preset: the session of three days ago drops out of "Last 24 hours".
    page.select_option("#range", "24h")
    page.click("#filters button[type=submit]")
    page.wait_for_url(re.compile(r".*range=24h.*"))
    ids = page.locator("tr.session-row").evaluate_all("rs => rs.map(r => r.dataset.id)")
    assert ids == ["sess-alpha"]
    ui.shot("filtered")
    # Custom range, typed in the browser's time zone, covering only sess-beta's turns.
    beta = scenario.sessions["sess-beta"]
    page = ui.go("/sessions")
    page.select_option("#range", "custom")
    to_local = (
        "d => { const x = new Date(d);"
        " x.setMinutes(x.getMinutes() - x.getTimezoneOffset());"
        " return x.toISOString().slice(0, 19); }"
    )
    page.fill("[data-utc-target=start]", page.evaluate(to_local, beta[0].start_ns // 1_000_000))
    page.fill("[data-utc-target=end]", page.evaluate(to_local, beta[-1].end_ns // 1_000_000))
    page.click("#filters button[type=submit]")
    page.wait_for_url(re.compile(r".*range=custom.*"))
    ids = page.locator("tr.session-row").evaluate_all("rs => rs.map(r => r.dataset.id)")
    assert ids == ["sess-beta"]
    # Sort by cost: same order as the API's sort=cost.
    page = ui.go("/sessions?sort=cost")
    ids = page.locator("tr.session-row").evaluate_all("rs => rs.map(r => r.dataset.id)")
    assert ids == [s["session_id"] for s in server.get("/api/v1/sessions", sort="cost")["items"]]
    assert ids == ["sess-alpha", "sess-beta", "sess-old"]
    # Status, tag and metadata filters.
    for params, expected in (
        ("status=error", ["sess-beta"]),
        ("tag=vip", ["sess-alpha"]),
        ("metadata=plan%3Dfree", ["sess-beta"]),
    ):
        page = ui.go("/sessions?" + params)
        ids = page.locator("tr.session-row").evaluate_all("rs => rs.map(r => r.dataset.id)")
        assert ids == expected, params
    # No match: an empty state that says so.
    page = ui.go("/sessions?user_id=nobody")
    expect(page.get_by_test_id("empty-state")).to_contain_text("No sessions match")


def test_session_page_transcript(ui: UI, server, scenario: Scenario) -> None:
    page = ui.go("/sessions/sess-alpha")
    api = server.get("/api/v1/sessions/sess-alpha")
    totals = page.get_by_test_id("session-totals")
    assert cells(totals)["trace_count"] == str(api["trace_count"])
    assert cells(totals)["tokens"] == f"{api['input_tokens']}:{api['output_tokens']}"
    assert close(cells(totals)["cost_usd"], api["cost_usd"])
    assert close(cells(totals)["duration_ms"], api["duration_ms"], 3)
    turns = scenario.sessions["sess-alpha"]
    articles = page.locator("article.turn")
    expect(articles).to_have_count(3)
    for i, turn in enumerate(turns):
        article = articles.nth(i)
        assert article.get_attribute("data-trace") == turn.trace_id
        # Only this turn's new user message, not the chat history the LLM call carried.
        user_msgs = article.locator(".msg.role-user")
        expect(user_msgs).to_have_count(1)
        expect(user_msgs).to_contain_text(turn.question)
        expect(article.locator(".msg.role-assistant")).to_contain_text(turn.answer)
        expect(article.locator(".msg.role-system")).to_have_count(0)
        assert close(cells(article)["duration_ms"], turn.duration_ms, 3)
        assert cells(article)["tokens"] == f"{turn.input_tokens}:{turn.output_tokens}"
    # Idle time between turns: 30 s and 75 s.
    expect(page.get_by_test_id("idle-gap")).to_have_text(["idle 30.00 s", "idle 1 min 15 s"])
    expect(page.locator(".timeline .tl-turn")).to_have_count(3)
    ui.shot("transcript")

    # Fallback to the root span's input/output, and errors shown on their turn.
    page = ui.go("/sessions/sess-beta")
    beta = scenario.sessions["sess-beta"]
    second = page.locator("article.turn").nth(1)
    expect(second.locator(".msg.role-user")).to_have_text(re.compile(beta[1].question))
    expect(second.locator(".msg.role-assistant")).to_contain_text(beta[1].answer)
    expect(second.locator(".alert")).to_contain_text(["order service timed out"])
    # Each turn links to its trace.
    second.get_by_text("Open trace →").click()
    page.wait_for_url(f"**/traces/{beta[1].trace_id}")


def test_session_export_json(ui: UI, server, scenario: Scenario) -> None:
    page = ui.go("/sessions/sess-alpha")
    with page.expect_download() as info:
        page.get_by_test_id("export").click()
    exported = json.loads(info.value.path().read_text())
    # The session's fields, and each trace once: in full, under "traces".
    detail = server.get("/api/v1/sessions/sess-alpha")
    paging = {"traces", "first_turn", "next_cursor"}  # the detail's page of turns
    assert exported["session"] == {k: v for k, v in detail.items() if k not in paging}
    assert [t["trace_id"] for t in exported["traces"]] == [
        t.trace_id for t in scenario.sessions["sess-alpha"]
    ]
    assert all(len(t["spans"]) == 2 for t in exported["traces"])
