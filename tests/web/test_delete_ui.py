"""Deleting from the session and trace pages in a real browser: a confirmation first,
then the page's data gone from the UI and the API alike."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from .conftest import UI, Scenario


def test_delete_a_trace_then_its_session(ui: UI, server, scenario: Scenario) -> None:
    alpha = scenario.sessions["sess-alpha"]
    first = alpha[0].trace_id
    page = ui.go(f"/traces/{first}")
    # Dismissing the confirmation deletes nothing.
    questions: list[str] = []

    def answer(accept: bool):
        def handle(dialog) -> None:
            questions.append(dialog.message)
            dialog.accept() if accept else dialog.dismiss()

        return handle

    page.once("dialog", answer(False))
    page.get_by_test_id("delete").click()
    expect(page).to_have_url(re.compile(rf"/traces/{first}$"))
    assert "Delete this trace" in questions[0] and "cannot be undone" in questions[0]
    assert server.http.get(f"/api/v1/traces/{first}").status_code == 200
    ui.shot("trace")

    page.once("dialog", answer(True))
    page.get_by_test_id("delete").click()
    # Back on its session, which has one turn fewer, with totals the API agrees with.
    expect(page).to_have_url(re.compile(r"/sessions/sess-alpha$"))
    expect(page.get_by_test_id("session-totals").locator("[data-col=trace_count]")).to_have_text(
        "2"
    )
    assert server.http.get(f"/api/v1/traces/{first}").status_code == 404
    session = server.get("/api/v1/sessions/sess-alpha")
    assert session["trace_count"] == 2
    assert session["input_tokens"] == sum(t.input_tokens for t in alpha[1:])
    expect(page.locator(f"article.turn[data-trace='{first}']")).to_have_count(0)
    ui.shot("session-after-trace")

    page.once("dialog", answer(True))
    page.get_by_test_id("delete").click()
    expect(page).to_have_url(re.compile(r"/sessions$"))
    assert "sess-alpha" in questions[-1] and "2 traces" in questions[-1]
    expect(page.locator("tr.session-row")).to_have_count(2)
    expect(page.locator("tr.session-row", has_text="sess-alpha")).to_have_count(0)
    assert server.http.get("/api/v1/sessions/sess-alpha").status_code == 404
    ui.shot("sessions-after")
