"""The headers every HTML page gets: a Content-Security-Policy that runs scripts only
from this server (so a missed escape cannot run an inline script), forbids framing
(``frame-ancestors 'none'``: no clickjacking) and posting forms elsewhere; no MIME
sniffing; the referrer kept on this server; no caching of pages that show project data.
"""

from __future__ import annotations

import base64
import hashlib


def page_headers(*inline_scripts: str) -> dict[str, str]:
    """The headers; each of ``inline_scripts`` (the exact text of a ``<script>`` element
    the page carries) is allowed by its SHA-256 digest, and no other inline script."""
    allowed = "".join(
        f" 'sha256-{base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()}'"
        for script in inline_scripts
    )
    # 'unsafe-inline' for styles only: waterfall bars are positioned with style attributes.
    csp = (
        f"default-src 'self'; script-src 'self'{allowed}; style-src 'self' 'unsafe-inline';"
        " img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none';"
        " form-action 'self'"
    )
    return {
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "Cache-Control": "no-store",
    }
