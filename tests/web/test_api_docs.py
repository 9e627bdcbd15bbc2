"""The "API" link: Swagger UI at /docs renders with nothing fetched from elsewhere."""

from __future__ import annotations

import json
from typing import Any


def test_docs_render_swagger_ui_air_gapped(ui: Any) -> None:
    # The ui fixture fails the test on any request that leaves the server (a CDN, say),
    # and on any script error.
    page = ui.go("/docs")
    page.wait_for_selector(".swagger-ui .info .title")
    assert "Threadline" in page.locator(".swagger-ui .info .title").inner_text()
    # The operations of the OpenAPI document are listed, e.g. the sessions list.
    page.wait_for_selector(".opblock-summary-path[data-path='/api/v1/sessions']")
    ui.shot("docs")


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
