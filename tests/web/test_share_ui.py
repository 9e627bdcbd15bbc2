"""Share links in a real browser: made from the session page, opened by a browser that
is not signed in, hidden inputs and outputs, then revoked; tampered and expired links
get the same plain "not found"."""

from __future__ import annotations

import re
import time

from playwright.sync_api import Browser, expect

from threadline.server import sharing
from threadline.server.model import ShareIn
from threadline.server.store.sqlite import SQLiteStore

from .conftest import UI, Scenario


def _made_link(ui: UI, session_id: str, hide_io: bool) -> str:
    page = ui.go(f"/sessions/{session_id}")
    page.get_by_test_id("share-menu").locator("summary").click()
    form = page.get_by_test_id("share-form")
    if hide_io:
        form.locator("input[name=hide_io]").check()
    form.locator("input[name=hide_metadata]").fill("plan")
    form.get_by_test_id("share-create").click()
    expect(page.get_by_test_id("new-link")).to_be_visible()
    return page.get_by_test_id("link-url").input_value()


def test_share_links_in_the_browser(ui: UI, browser: Browser, server, scenario: Scenario) -> None:
    url = _made_link(ui, "sess-alpha", hide_io=False)
    ui.shot("made")
    # Shown after a redirect, once: a reload neither asks to resend the form nor shows it.
    assert ui.page.url == server.base_url + "/shares"
    ui.page.reload()
    expect(ui.page.get_by_test_id("new-link")).to_have_count(0)
    assert re.fullmatch(re.escape(server.base_url) + r"/shared/tls_[\w-]{43}", url)
    hidden_url = _made_link(ui, "sess-alpha", hide_io=True)

    # A browser that never signed in.
    stranger = browser.new_context()
    page = stranger.new_page()
    page.goto(url)
    expect(page.get_by_test_id("session-id")).to_have_text("sess-alpha")
    expect(page.get_by_test_id("session-totals").locator("[data-col=trace_count]")).to_have_text(
        "3"
    )
    expect(page.get_by_test_id("transcript")).to_contain_text("Where is my order #1234?")
    expect(page.get_by_test_id("shared-banner")).to_contain_text("read-only")
    # Metadata key "plan" hidden; no link to anything of the project.
    expect(page.get_by_test_id("metadata")).to_have_count(0)
    assert page.locator("main a").count() == 0
    page.screenshot(path=f"test-artifacts/web/{ui.test_name}-shared.png", full_page=True)

    page.goto(hidden_url)
    expect(page.get_by_test_id("io-hidden")).to_be_visible()
    expect(page.get_by_test_id("transcript")).not_to_contain_text("Where is my order")

    # Tampered and expired: the same not-found page.
    page.goto(url[:-2] + ("xy" if not url.endswith("xy") else "zz"))
    expect(page.get_by_test_id("not-found")).to_be_visible()
    store = SQLiteStore(server.process.data_dir / "threadline.db")
    try:
        access = store.access_for_key(server.api_key)
        assert access is not None
        expired = sharing.create(
            store,
            access.project.id,
            ShareIn(kind="session", target_id="sess-alpha", expires_in_days=1),
            now_ns=time.time_ns() - 2 * sharing.DAY_NS,
        )
    finally:
        store.close()
    page.goto(server.base_url + expired.path)
    expect(page.get_by_test_id("not-found")).to_be_visible()

    # Revoked from the list of links (after a confirmation): not found from then on.
    links = ui.go("/shares")
    expect(links.get_by_test_id("links").locator("tbody tr")).to_have_count(3)
    active = links.locator("tbody tr", has_text="active").first
    active.get_by_test_id("revoke").click()
    expect(active.get_by_test_id("revoke-question")).to_contain_text("Revoke this link?")
    active.get_by_test_id("revoke-confirm").click()
    expect(links.get_by_test_id("state").filter(has_text="revoked")).to_have_count(1)
    expect(links.get_by_test_id("flash")).to_contain_text("Link revoked")
    ui.shot("links")
    revoked_id = links.locator("tbody tr", has_text="revoked").get_attribute("data-id")
    revoked = next(x for x in server.get("/api/v1/shares")["items"] if x["id"] == revoked_id)
    page.goto(url if not revoked["hide_io"] else hidden_url)
    expect(page.get_by_test_id("not-found")).to_be_visible()
    stranger.close()


def test_the_links_page_keeps_what_a_link_hides_readable_on_a_phone(
    ui: UI, server, scenario: Scenario
) -> None:
    """On a phone the links' table scrolls sideways; what a link hides ("inputs and
    outputs; metadata plan, customer_tier") breaks between words, not letter by letter
    (it took 17 lines, a letter or four each)."""
    body = {
        "kind": "session",
        "target_id": "sess-alpha",
        "hide_io": True,
        "hide_metadata": ["plan", "customer_tier"],
    }
    response = server.http.post("/api/v1/shares", json=body)
    assert response.status_code == 201, response.text
    link_id = response.json()["id"]
    ui.page.set_viewport_size({"width": 390, "height": 844})
    page = ui.go("/shares")
    cell = page.locator(f"tr[data-id='{link_id}'] td").nth(3)  # Of, Made, Expires, Hides
    expect(cell).to_have_text("inputs and outputs; metadata plan, customer_tier")
    # Its height in lines of its text, and its width in characters.
    lines, chars = cell.evaluate(
        "td => { const em = parseFloat(getComputedStyle(td).fontSize);"
        " return [td.clientHeight / (1.5 * em), td.clientWidth / (0.55 * em)] }"
    )
    assert lines <= 6 and chars >= 15, (lines, chars)
    ui.shot("hides-phone")
