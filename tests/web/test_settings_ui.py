"""The Settings page in a real browser: retention and redaction are changed there, a
refused value is explained in the page, and both rules take effect: the old session
expires, and a new trace's e-mail address and order number are stored redacted."""

from __future__ import annotations

import re
import time

from playwright.sync_api import expect

from tests.otlp import new_trace_id

from .conftest import UI, Scenario, send
from .turns import Turn, turn_spans

S = 1_000_000_000


def _expect_one_refusal_logged(ui: UI) -> None:
    # A refused form is answered 400 on purpose, which Chromium logs; nothing else is.
    assert ui.errors == [
        "console: Failed to load resource: the server responded with a status of 400 (Bad Request)"
    ]
    ui.errors.clear()


def test_settings_change_retention_and_redaction(ui: UI, server, scenario: Scenario) -> None:
    page = ui.go("/sessions")
    page.get_by_role("link", name="Settings").click()
    expect(page).to_have_url(re.compile(r"/settings$"))
    expect(page.get_by_test_id("effective-days")).to_have_text("forever")

    # A refused value: the page says why, keeps what was typed, and nothing changes.
    form = page.get_by_test_id("retention-form")
    form.locator("input[name=days]").fill("two")
    form.get_by_role("button", name="Save retention").click()
    expect(page.get_by_test_id("retention").get_by_test_id("form-error")).to_contain_text(
        "a whole number of days"
    )
    expect(form.locator("input[name=days]")).to_have_value("two")
    _expect_one_refusal_logged(ui)
    assert server.get("/api/v1/settings/retention")["days"] is None

    # Two days: the session of three days ago expires; today's stay.
    form.locator("input[name=days]").fill("2")
    form.get_by_role("button", name="Save retention").click()
    expect(page.get_by_test_id("retention").get_by_test_id("saved")).to_be_visible()
    expect(page.get_by_test_id("effective-days")).to_have_text("2 days")
    assert server.get("/api/v1/settings/retention")["days"] == 2
    deadline = time.monotonic() + 15
    while server.http.get("/api/v1/sessions/sess-old").status_code != 404:
        assert time.monotonic() < deadline, "retention did not delete the expired session"
        time.sleep(0.2)
    page = ui.go("/sessions?range=all")
    expect(page.locator("tr.session-row", has_text="sess-alpha")).to_have_count(1)
    expect(page.locator("tr.session-row", has_text="sess-old")).to_have_count(0)

    # Redaction: a pattern RE2 cannot compile is refused with the reason.
    page = ui.go("/settings")
    form = page.get_by_test_id("redaction-form")
    form.locator("input[name=detector_email]").check()
    form.locator("textarea[name=patterns]").fill("order = ORD-(\\d{6}")
    form.get_by_role("button", name="Save redaction").click()
    expect(page.get_by_test_id("redaction").get_by_test_id("form-error")).to_contain_text(
        "'order' is not an RE2 regular expression"
    )
    assert server.get("/api/v1/settings/redaction")["detectors"] == []
    _expect_one_refusal_logged(ui)
    form.locator("textarea[name=patterns]").fill("order = ORD-\\d{6}")
    form.get_by_role("button", name="Save redaction").click()
    expect(page.get_by_test_id("redaction").get_by_test_id("saved")).to_be_visible()
    expect(form.locator("input[name=detector_email]")).to_be_checked()
    expect(form.locator("textarea[name=patterns]")).to_have_value("order = ORD-\\d{6}")
    ui.shot("settings")
    rules = server.get("/api/v1/settings/redaction")
    assert rules["detectors"] == ["email"]
    assert rules["patterns"] == [{"name": "order", "regex": "ORD-\\d{6}"}]

    now = time.time_ns()
    turn = Turn(
        new_trace_id(),
        "Write to jane.doe@example.com about ORD-123456",
        "Done, I wrote to jane.doe@example.com.",
        now - 2 * S,
        900,
        40,
        8,
        0.0001,
    )
    send(server, turn_spans(turn, "sess-private", "dana"))
    page = ui.go(f"/traces/{turn.trace_id}")
    body = page.locator("main")
    expect(body).to_contain_text("Write to [email] about [order]")
    expect(body).not_to_contain_text("jane.doe@example.com")
    expect(body).not_to_contain_text("ORD-123456")
    ui.shot("after")
