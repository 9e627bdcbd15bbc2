"""A line saying what a form did, shown on the page its post redirects to ("Session
s-42 deleted, with its 3 traces.").

The post sets it as a short-lived cookie on its redirect (post/redirect/get: a reload
does not post again); the next page of the signed-in app shows it once and clears it.
A fragment (htmx) or a public page leaves it for that page. The text is written by the
server; it is shown escaped, as all text is, so a cookie edited in the browser shows
only the text it holds.
"""

from __future__ import annotations

from urllib.parse import quote, unquote

from fastapi import Request, Response

_COOKIE = "threadline_flash"
# Room for a sentence and an id in a cookie (browsers keep 4,096 bytes a cookie).
_MAX_CHARS = 500


def say(request: Request, response: Response, text: str) -> Response:
    """``response`` (a redirect) carrying ``text`` to the page it leads to."""
    response.set_cookie(
        _COOKIE,
        quote(text[:_MAX_CHARS], safe=""),
        max_age=60,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


def pending(request: Request) -> str | None:
    """The text a post left for this page, if any."""
    value = request.cookies.get(_COOKIE)
    return unquote(value)[:_MAX_CHARS] if value else None


def clear(response: Response) -> None:
    response.delete_cookie(_COOKIE, path="/")
