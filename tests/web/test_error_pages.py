"""A browser opening a path that is no page gets a page with a way back; API clients
keep the JSON every error has."""

from __future__ import annotations

import httpx
from playwright.sync_api import expect

from .conftest import UI

HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


def test_an_unknown_path_shows_a_page_with_a_way_back(ui: UI, server) -> None:
    page = ui.page
    response = page.goto(server.base_url + "/evaluators/new")
    assert response is not None and response.status == 404
    assert "text/html" in response.headers["content-type"]
    found = page.get_by_test_id("error-page")
    expect(found).to_contain_text("Page not found")
    expect(found).to_contain_text("/evaluators/new")
    # The app's layout: the signed-in project and its tabs.
    expect(page.get_by_test_id("project-name")).to_be_visible()
    expect(page.locator(".topnav a", has_text="Evaluators")).to_be_visible()
    ui.errors.clear()  # the 404 itself, which Chromium logs
    page.get_by_role("link", name="Back to sessions").click()
    page.wait_for_url(server.base_url + "/sessions")

    # A form's POST-only route opened in the address bar: a page too, with its Allow.
    response = page.goto(server.base_url + "/ui/scores", wait_until="load")
    assert response is not None and response.status == 405
    assert response.headers["allow"] == "POST"
    expect(page.get_by_test_id("error-page")).to_contain_text("Not a page")
    ui.errors.clear()


def test_api_clients_and_fragments_keep_the_json(server) -> None:
    http = server.http
    # No Accept of HTML (httpx sends */*), an API path, or an htmx request: JSON.
    for path, headers in (
        ("/evaluators/new", {}),
        ("/api/v1/nothing-here", HTML),
        ("/v1/nothing-here", HTML),
        ("/evaluators/new", {**HTML, "HX-Request": "true"}),
    ):
        answer = http.get(path, headers=headers)
        assert (answer.status_code, answer.json()) == (404, {"error": "Not Found"}), path
    answer = http.get("/logout")
    assert answer.status_code == 405 and answer.json() == {"error": "Method Not Allowed"}
    # A POST to a page path stays JSON: only page loads get a page.
    answer = http.post("/evaluators/new", headers=HTML)
    assert answer.status_code in (404, 405) and "error" in answer.json()


def test_a_signed_out_browser_gets_the_page_without_a_project(server) -> None:
    answer = httpx.get(server.base_url + "/evaluators/new", headers=HTML)
    assert answer.status_code == 404 and answer.headers["content-type"].startswith("text/html")
    assert "Page not found" in answer.text and 'href="/sessions"' in answer.text
    assert "project-name" not in answer.text and "Sign out" not in answer.text
    # Like every page: the Content-Security-Policy and no caching.
    assert "script-src 'self'" in answer.headers["content-security-policy"]
