"""``/docs``: Swagger UI for the OpenAPI document, served from this process.

FastAPI's own docs page loads Swagger UI's script, stylesheet and icon from a CDN, so
without internet it was a blank page. The assets come from the ``fastapi-offline``
package, which ships Swagger UI's distribution files, and are served under
``/docs/assets``, so the page works air-gapped like the rest of the UI. It gets the
headers of the other pages; its one inline script (which starts Swagger UI) is allowed
by its digest.
"""

from __future__ import annotations

import re
from importlib.resources import files

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from threadline.server.http.page_headers import page_headers

ASSETS = "/docs/assets"


def install(app: FastAPI) -> None:
    """Add ``/docs`` and its assets; the app is made with ``docs_url=None``."""
    assets = files("fastapi_offline") / "static"
    app.mount(ASSETS, StaticFiles(directory=str(assets)), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"
    title = f"{app.title}: API"

    page = get_swagger_ui_html(
        openapi_url=openapi_url,
        title=title,
        swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS}/favicon.png",
    ).body
    inline = re.findall(r"<script>(.*?)</script>", bytes(page).decode(), flags=re.DOTALL)
    headers = page_headers(*inline)

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return HTMLResponse(page, headers=headers)
