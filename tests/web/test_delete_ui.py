"""Deleting from the session and trace pages in a real browser: Delete asks first (its
question and a second button, with or without scripts), then the page it lands on says
what was deleted, and the data is gone from the UI and the API alike."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, expect

from .conftest import ARTIFACTS, UI, Scenario, sign_in

PHONE = {"width": 390, "height": 844}


def test_delete_a_trace_then_its_session(ui: UI, server, scenario: Scenario) -> None:
    alpha = scenario.sessions["sess-alpha"]
    first = alpha[0].trace_id
    page = ui.go(f"/traces/{first}")
    # Delete opens the question; Delete again closes it: nothing is deleted.
    page.get_by_test_id("delete").click()
    question = page.get_by_test_id("delete-question")
    expect(question).to_contain_text("Delete this trace with its")
    expect(question).to_contain_text("cannot be undone")
    ui.shot("trace-question")
    page.get_by_test_id("delete").click()
    expect(question).to_be_hidden()
    expect(page).to_have_url(re.compile(rf"/traces/{first}$"))
    assert server.http.get(f"/api/v1/traces/{first}").status_code == 200

    page.get_by_test_id("delete").click()
    page.get_by_test_id("delete-confirm").click()
    # Back on its session, which has one turn fewer, with totals the API agrees with,
    # saying which trace went.
    expect(page).to_have_url(re.compile(r"/sessions/sess-alpha$"))
    expect(page.get_by_test_id("flash")).to_contain_text("Deleted trace handle_turn")
    expect(page.get_by_test_id("flash")).to_contain_text(f"({first[:12]}…)")
    expect(page.get_by_test_id("session-totals").locator("[data-col=trace_count]")).to_have_text(
        "2"
    )
    assert server.http.get(f"/api/v1/traces/{first}").status_code == 404
    session = server.get("/api/v1/sessions/sess-alpha")
    assert session["trace_count"] == 2
    assert session["input_tokens"] == sum(t.input_tokens for t in alpha[1:])
    expect(page.locator(f"article.turn[data-trace='{first}']")).to_have_count(0)
    ui.shot("session-after-trace")
    # Said once: a reload shows the page alone.
    page.reload()
    expect(page.get_by_test_id("flash")).to_have_count(0)

    page.get_by_test_id("delete").click()
    expect(page.get_by_test_id("delete-question")).to_contain_text("sess-alpha with its 2 traces")
    page.get_by_test_id("delete-confirm").click()
    expect(page).to_have_url(re.compile(r"/sessions$"))
    expect(page.get_by_test_id("flash")).to_have_text(
        "Deleted session sess-alpha with its traces, their spans, scores and notes."
    )
    expect(page.locator("tr.session-row")).to_have_count(2)
    expect(page.locator("tr.session-row", has_text="sess-alpha")).to_have_count(0)
    assert server.http.get("/api/v1/sessions/sess-alpha").status_code == 404
    ui.shot("sessions-after")


def test_delete_asks_first_without_scripts(browser: Browser, server, scenario: Scenario) -> None:
    """With scripts off, a click on Delete deleted the session at once (the question
    was the script's window.confirm)."""
    context = browser.new_context(viewport=PHONE, java_script_enabled=False)
    try:
        page = context.new_page()
        page.set_default_timeout(10_000)
        sign_in(page, server.base_url, server.api_key)
        page.goto(server.base_url + "/sessions/sess-beta")
        page.get_by_test_id("delete").click()
        page.wait_for_load_state()
        assert server.http.get("/api/v1/sessions/sess-beta").status_code == 200
        question = page.get_by_test_id("delete-question")
        expect(question).to_be_visible()
        # On a phone the question is inside the window.
        box = question.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "delete-without-scripts-phone.png"), full_page=True)
        page.get_by_test_id("delete-confirm").click()
        expect(page).to_have_url(re.compile(r"/sessions$"))
        expect(page.get_by_test_id("flash")).to_contain_text("Deleted session sess-beta")
        assert server.http.get("/api/v1/sessions/sess-beta").status_code == 404
    finally:
        context.close()
