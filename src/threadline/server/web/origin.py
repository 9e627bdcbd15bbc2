"""The check every state-changing form of the web UI takes: the request must come from
a page of this server, not from another site (or another port of this one).

The sign-in cookie is ``SameSite=Lax``, which stops other *sites* from posting with it
but not another page of the same site (``http://host:9999`` is the same site as
``http://host:8000``), and a form that signs in or out needs no cookie at all. So
every state-changing form route calls ``require_same_origin`` (or takes the
``SameOrigin`` dependency):

- ``Sec-Fetch-Site`` (sent by every current browser), when present, must be
  ``same-origin`` (or ``none``: typed in the address bar);
- ``Origin`` (sent by browsers on every POST), when present, must name this server's
  own host and port, as the ``Host`` header does; ``Origin: null`` is refused;
- without ``Origin``, a ``Referer``, when present, must be of this server.

A client that sends none of them (curl, a script) is not a browser, which is what
forgery needs, and passes. Hosts are compared, not schemes, so a server behind a
TLS-terminating proxy that keeps the Host header still matches. Refusals are 403 with
the reason.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request

from threadline.server.errors import Forbidden


def require_same_origin(request: Request) -> None:
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        raise Forbidden(f"cross-site form refused (Sec-Fetch-Site: {fetch_site})")
    host = request.headers.get("host", "").lower()
    origin = request.headers.get("origin")
    if origin is not None:
        if _netloc(origin) != host:
            raise Forbidden(f"form sent from another origin ({origin[:200]}) refused")
        return
    referer = request.headers.get("referer")
    if referer is not None and _netloc(referer) != host:
        raise Forbidden("form sent from another origin (by its Referer) refused")


def _netloc(url: str) -> str | None:
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None  # "null", opaque origins
    return parts.netloc.lower()


SameOrigin = Annotated[None, Depends(require_same_origin)]
