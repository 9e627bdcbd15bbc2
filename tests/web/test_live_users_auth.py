"""Live mode (Server-Sent Events), the Users tab, and signing in and out."""

from __future__ import annotations

import time

import httpx
from playwright.sync_api import expect

from tests.otlp import new_trace_id

from .conftest import ARTIFACTS, UI, S, Scenario, cells, close, send, sign_in
from .turns import Turn, turn_spans


def test_live_mode_adds_new_traces_and_sessions(ui: UI, server, scenario: Scenario) -> None:
    for tab, row_class in (("traces", "trace-row"), ("sessions", "session-row")):
        page = ui.go(f"/{tab}")
        before = page.locator(f"tr.{row_class}").count()
        page.check("#live")
        # Wait for the stream to be open before sending.
        page.wait_for_function("document.body.classList.contains('live-on')")
        turn = Turn(
            new_trace_id(),
            f"live question {tab}",
            "live answer",
            time.time_ns(),
            300,
            11,
            7,
            0.0001,
        )
        send(server, turn_spans(turn, f"sess-live-{tab}", "dana"))
        new_row = page.locator(f"tr.{row_class}").first
        expect(new_row).to_contain_text(
            f"live question {tab}" if tab == "traces" else f"sess-live-{tab}", timeout=15_000
        )
        expect(page.locator(f"tr.{row_class}")).to_have_count(before + 1)
        if tab == "traces":
            assert new_row.get_attribute("data-id") == turn.trace_id
        ui.shot(f"live-{tab}")
        page.uncheck("#live")


def test_live_mode_updates_an_existing_session(ui: UI, server, scenario: Scenario) -> None:
    page = ui.go("/sessions")
    page.check("#live")
    page.wait_for_function("document.body.classList.contains('live-on')")
    last = scenario.sessions["sess-alpha"][-1]
    turn = Turn(new_trace_id(), "one more thing", "sure", last.end_ns + 5 * S, 100, 1, 1, 0.0)
    send(server, turn_spans(turn, "sess-alpha", "alice"))
    row = page.locator("tr.session-row[data-id=sess-alpha]")
    expect(row.locator("[data-col=trace_count]")).to_have_text("4", timeout=15_000)
    expect(page.locator("tr.session-row")).to_have_count(3)  # replaced, not duplicated


def test_live_mode_adds_a_score_column_that_arrives(ui: UI, server, scenario: Scenario) -> None:
    """A row's first score of a new name, then a write to it: the row came with no
    column for it (the header was the page's); the table now takes the column, header
    and rows, as a reload would, and goes on following."""
    last = scenario.sessions["sess-alpha"][-1]
    for k, tab in enumerate(("sessions", "traces")):
        page = ui.go(f"/{tab}")
        page.check("#live")
        page.wait_for_function("document.body.classList.contains('live-on')")
        turn = Turn(new_trace_id(), "and now?", "done", last.end_ns + (5 + k) * S, 100, 1, 1, 0.0)
        row = (
            "tr.session-row[data-id=sess-alpha]"
            if tab == "sessions"
            else f"tr[data-id='{turn.trace_id}']"
        )
        send(server, turn_spans(turn, "sess-alpha", "alice"))
        expect(page.locator(row)).to_have_count(1, timeout=15_000)
        name = f"arrived_{tab}"
        target = {"session_id": "sess-alpha"} if tab == "sessions" else {"trace_id": turn.trace_id}
        written = server.http.post("/api/v1/scores", json={"name": name, "value": 4, **target})
        assert written.status_code == 200, written.text
        send(server, turn_spans(turn, "sess-alpha", "alice"))  # the same turn again: a write
        cell = page.locator(f"{row} [data-col='score:{name}']")
        expect(cell).to_have_attribute("data-value", "4.0", timeout=15_000)
        expect(page.locator("th.score-col", has_text=name)).to_have_count(1)
        ui.shot(f"live-{tab}-column")
        # Still live: the next row comes with the column too.
        more = Turn(new_trace_id(), "one more", "ok", last.end_ns + (8 + k) * S, 100, 1, 1, 0.0)
        send(server, turn_spans(more, "sess-beta", "bob"))
        after = (
            "tr.session-row[data-id=sess-beta]"
            if tab == "sessions"
            else f"tr[data-id='{more.trace_id}']"
        )
        expect(page.locator(f"{after} [data-col='score:{name}']")).to_have_count(1, timeout=15_000)
        page.uncheck("#live")


def test_users_tab(ui: UI, server, scenario: Scenario) -> None:
    page = ui.go("/users")
    api = server.get("/api/v1/users")["items"]
    rows = page.locator("#users-table tbody tr")
    assert rows.evaluate_all("rs => rs.map(r => r.dataset.id)") == [u["user_id"] for u in api]
    alice = next(u for u in api if u["user_id"] == "alice")
    assert (alice["session_count"], alice["trace_count"]) == (2, 4)
    for i, user in enumerate(api):
        values = cells(rows.nth(i))
        assert values["session_count"] == str(user["session_count"])
        assert values["trace_count"] == str(user["trace_count"])
        assert values["tokens"] == f"{user['input_tokens']}:{user['output_tokens']}"
        assert close(values["cost_usd"], user["cost_usd"])
    ui.shot("users")
    # A user links to their sessions.
    rows.filter(has_text="alice").get_by_role("link", name="alice").click()
    page.wait_for_url("**/sessions?user_id=alice")
    ids = page.locator("tr.session-row").evaluate_all("rs => rs.map(r => r.dataset.id)")
    assert ids == ["sess-alpha", "sess-old"]


def test_sign_in_is_required_and_scoped(browser, server, threadline_process) -> None:
    # Without a cookie: pages redirect to the sign-in form, keeping the target.
    response = httpx.get(server.base_url + "/sessions?user_id=x", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fsessions%3Fuser_id%3Dx"
    assert (
        httpx.get(
            server.base_url + "/fragments/session-traces?session_id=a",
            headers={"HX-Request": "true"},
        ).status_code
        == 401
    )
    # A wrong key is refused; a right one sets an HttpOnly, SameSite=Lax cookie.
    bad = httpx.post(server.base_url + "/login", data={"key": "tl_wrong", "next": "/users"})
    assert bad.status_code == 401 and "unknown or revoked" in bad.text
    good = httpx.post(
        server.base_url + "/login", data={"key": server.api_key, "next": "//evil.example/"}
    )
    assert good.status_code == 303 and good.headers["location"] == "/sessions"
    cookie = good.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    # Another project's key sees only its own data.
    other_key = threadline_process.new_key("web-other-project")
    send(
        server,
        turn_spans(Turn(new_trace_id(), "mine", "ok", 10**18, 10, 1, 1, 0.0), "sess-mine", "me"),
    )
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, server.base_url, other_key)
    expect(page.get_by_test_id("project-name")).to_have_text("web-other-project")
    expect(page.locator("tr.session-row")).to_have_count(0)
    expect(page.get_by_test_id("empty-state")).to_contain_text("threadline demo")
    page.goto(server.base_url + "/sessions/sess-mine")
    expect(page.locator("body")).to_contain_text("No session 'sess-mine'")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "empty-state.png"), full_page=True)
    # Signing out ends the session.
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/login")
    page.goto(server.base_url + "/sessions")
    page.wait_for_url("**/login?next=%2Fsessions")
    context.close()


def test_phone_layout(browser, server, scenario: Scenario) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844})  # a phone
    page = context.new_page()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.goto(server.base_url + "/login")
    expect(page.locator("#key")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "login-phone.png"))
    sign_in(page, server.base_url, server.api_key)
    page.screenshot(path=str(ARTIFACTS / "sessions-phone.png"), full_page=True)
    # Nothing wider than the screen but the tables, which scroll inside their frame.
    page.goto(server.base_url + "/sessions/sess-alpha")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=str(ARTIFACTS / "session-phone.png"), full_page=True)
    page.goto(server.base_url + f"/traces/{scenario.sessions['sess-alpha'][0].trace_id}")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=str(ARTIFACTS / "trace-phone.png"), full_page=True)
    context.close()


def test_assets_are_served_locally(server) -> None:
    page = httpx.get(server.base_url + "/login").text
    assert "https://" not in page and "http://" not in page.replace(server.base_url, "")
    htmx = httpx.get(server.base_url + "/static/htmx.min.js")
    assert htmx.status_code == 200 and htmx.text.startswith("/*! htmx 2.")
    assert "Zero-Clause BSD" in httpx.get(server.base_url + "/static/htmx.LICENSE.txt").text
    headers = httpx.get(server.base_url + "/login").headers
    assert "script-src 'self'" in headers["content-security-policy"]
