"""Same-origin check for the UI's forms.

The sign-in cookie is SameSite=Lax, so another site cannot post a form with it in
today's browsers; checking ``Origin`` as well refuses such a post even where the cookie
would travel (older browsers, a sibling subdomain's page). A browser sends ``Origin``
with every POST; a request without one comes from a non-browser client, which a
cross-site page cannot drive. Hosts are compared (not schemes), so a server behind a
TLS-terminating proxy that keeps the Host header still matches.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import Request

from threadline.server.errors import Forbidden


def require_same_origin(request: Request) -> None:
    origin = request.headers.get("origin")
    if origin is None:
        return
    host = request.headers.get("host", request.url.netloc)
    if origin == "null" or urlsplit(origin).netloc != host:
        raise Forbidden(f"a form of this site may be sent from this site only, not {origin!r}")
