"""The "API" link: Swagger UI at /docs renders with nothing fetched from elsewhere."""

from __future__ import annotations

import json
from typing import Any

import httpx


def test_docs_render_swagger_ui_air_gapped(ui: Any) -> None:
    # The ui fixture fails the test on any request that leaves the server (a CDN, say),
    # and on any script error.
    page = ui.go("/docs")
    page.wait_for_selector(".swagger-ui .info .title")
    assert "Threadline" in page.locator(".swagger-ui .info .title").inner_text()
    # The operations of the OpenAPI document are listed, e.g. the sessions list.
    page.wait_for_selector(".opblock-summary-path[data-path='/api/v1/sessions']")
    ui.shot("docs")


def test_the_docs_lead_back_to_the_web_ui(ui: Any) -> None:
    """The top bar's "API" opens Swagger UI, which has no top bar: its description holds
    the way back and how to try a route."""
    page = ui.go("/docs")
    description = page.locator(".swagger-ui .info .description")
    description.wait_for()
    assert "Authorize" in description.inner_text()
    link = description.get_by_role("link", name="Back to the web UI")
    assert link.get_attribute("href") == "/sessions"
    # Swagger UI opens a description's links in a new tab.
    with page.context.expect_page() as opened:
        link.click()
    opened.value.wait_for_url(ui.base_url + "/sessions")


def test_the_docs_example_score_is_one_the_server_accepts(ui: Any, server: Any) -> None:
    """A newcomer's "Try it out" starts from the example the page shows: it must work."""
    page = ui.go("/docs")
    operation = page.locator("#operations-scores-write_scores_api_v1_scores_post")
    operation.locator(".opblock-summary").click()
    example = operation.locator(".body-param__example, .highlight-code").first
    body = json.loads(example.inner_text())
    written = server.http.post("/api/v1/scores", json=body)
    assert written.status_code == 200, written.text
    assert written.json()["data_type"] == "numeric"


def test_docs_get_the_headers_of_the_other_pages(server: Any) -> None:
    """No framing (clickjacking), no script but this server's and the page's own, by its
    digest; the render test above shows Swagger UI still starts under that policy (the
    ui fixture fails on the console error a refused script gives)."""
    docs = httpx.get(server.base_url + "/docs")
    login = httpx.get(server.base_url + "/login")
    csp = docs.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp
    script_src = next(d for d in csp.split(";") if d.strip().startswith("script-src")).split()
    assert script_src[:2] == ["script-src", "'self'"]
    assert len(script_src) == 3 and script_src[2].startswith("'sha256-")
    for header in ("x-content-type-options", "referrer-policy", "cache-control"):
        assert docs.headers[header] == login.headers[header], header
