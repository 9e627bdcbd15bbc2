"""The "API" link: Swagger UI at /docs renders with nothing fetched from elsewhere."""

from __future__ import annotations

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
