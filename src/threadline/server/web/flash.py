"""A line saying what a form did, shown on the page its post redirects to ("Session
s-42 deleted, with its 3 traces.").

The post sets it as a short-lived cookie on its redirect (post/redirect/get: a reload
does not post again); the next page of the signed-in app shows it once and clears it.
A fragment (htmx) or a public page leaves it for that page. The text is written by the
server and shown escaped, as all text is.

The cookie carries an HMAC-SHA256 of its text keyed by the browser's sign-in cookie
(the project key, which page scripts and other sites cannot read): a message written
into the browser by anyone else (a script on a sibling domain, a hand-edited cookie)
does not verify and is not shown, so the app's own voice cannot be borrowed to tell a
user to do something. Keyed by what the browser already holds, any worker or server
of the project verifies it, with no secret shared between them.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import quote, unquote

from fastapi import Request, Response

from threadline.server.web.session_cookie import SESSION_COOKIE

_COOKIE = "threadline_flash"
# Room for a sentence and an id in a cookie (browsers keep 4,096 bytes a cookie).
_MAX_CHARS = 500
_MAC_HEX = 32  # 128 bits of the digest


def say(request: Request, response: Response, text: str) -> Response:
    """``response`` (a redirect) carrying ``text`` to the page it leads to."""
    quoted = quote(text[:_MAX_CHARS], safe="")
    key = request.cookies.get(SESSION_COOKIE)
    if not key:  # the post was signed in, so it has one; without it, nothing to show
        return response
    response.set_cookie(
        _COOKIE,
        f"{_mac(key, quoted)}.{quoted}",
        max_age=60,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


def pending(request: Request) -> str | None:
    """The text a post of this browser left for this page, if any and if genuine."""
    value = request.cookies.get(_COOKIE)
    key = request.cookies.get(SESSION_COOKIE)
    if not value or not key:
        return None
    mac, _, quoted = value.partition(".")
    if not hmac.compare_digest(mac.encode(), _mac(key, quoted).encode()):
        return None
    return unquote(quoted)[:_MAX_CHARS]


def left(request: Request) -> bool:
    """Whether the browser sent a flash cookie, genuine or not."""
    return _COOKIE in request.cookies


def clear(response: Response) -> None:
    response.delete_cookie(_COOKIE, path="/")


def _mac(key: str, quoted: str) -> str:
    digest = hmac.new(key.encode(), quoted.encode(), hashlib.sha256).hexdigest()
    return digest[:_MAC_HEX]
