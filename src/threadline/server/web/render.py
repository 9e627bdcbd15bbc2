"""Rendering pages: one Jinja environment, its filters, and the headers every page gets.

Autoescaping is on for every template, so span inputs such as ``<script>`` arrive as
text; the Content-Security-Policy allows scripts only from Threadline's own /static,
so even a missed escape could not run an inline script.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from threadline.server.conversation import messages
from threadline.server.http.page_headers import page_headers
from threadline.server.model import metadata_text
from threadline.server.session_activity import activity
from threadline.server.web import flash, present
from threadline.server.web.highlights import snippet_html

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"

_HEADERS = page_headers()

templates = Jinja2Templates(directory=HERE / "templates")
templates.env.autoescape = True  # explicit: every template, whatever its extension
templates.env.trim_blocks = True
templates.env.lstrip_blocks = True


def _iso(value: datetime | None) -> str:
    return value.isoformat().replace("+00:00", "Z") if value else ""


def _utc_text(value: datetime | None) -> str:
    # Shown until static/app.js rewrites it in the browser's time zone.
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "—"


# Path segments that browsers resolve away ("/sessions/.." is "/"), even percent-encoded.
_DOT_SEGMENTS = (".", "..")


def session_url(session_id: str, turn: int | None = None) -> str:
    """The session page, from its ``turn``-th turn if given (a page of turns)."""
    page = {"turn": turn} if turn is not None else {}
    if session_id in _DOT_SEGMENTS:
        return "/sessions/?" + urlencode({"id": session_id, **page})
    return "/sessions/" + quote(session_id, safe="") + ("?" + urlencode(page) if page else "")


def session_find_url(session_id: str, text: str) -> str:
    """The session page searching for ``text`` inside the session, at its first match."""
    base = session_url(session_id)
    return base + ("&" if "?" in base else "?") + urlencode({"find": text})


def trace_url(trace_id: str, span_id: str | None = None) -> str:
    return f"/traces/{quote(trace_id, safe='')}" + (f"?span={quote(span_id)}" if span_id else "")


def user_url(user_id: str) -> str:
    return "/sessions?" + urlencode({"user_id": user_id})


templates.env.filters.update(
    duration=present.duration,
    duration_in_words=present.duration_in_words,
    cost=present.cost,
    number=present.number,
    tokens=present.tokens,
    span_type=present.span_type_label,
    pretty=present.pretty,
    preview=present.preview,
    clip=present.clip,
    dotted_name=present.dotted_name,
    iso=_iso,
    utc=_utc_text,
    # As the metadata filter compares it: ``vip=true`` finds what shows as vip=true.
    metadata_value=lambda value: metadata_text(value) or "null",
    score_raw=present.score_raw,
    score_text=present.score_text,
    score_title=present.score_title,
    score_source=present.score_source,
)
templates.env.globals.update(
    session_url=session_url,
    session_find_url=session_find_url,
    trace_url=trace_url,
    user_url=user_url,
    messages=messages,
    tokens_in_out=present.tokens_in_out,
    payload_text=present.payload_text,
    is_long=present.is_long,
    first_items=present.first_items,
    EVENTS_SHOWN=present.EVENTS_SHOWN,
    MESSAGES_SHOWN=present.MESSAGES_SHOWN,
    quote=quote,
    activity=activity,
    snippet_html=snippet_html,
)


def render(
    request: Request, name: str, context: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    # Pages show whether a session is still going, by the server's idle setting.
    context.setdefault("idle_seconds", request.app.state.settings.session_idle_seconds)
    # What the post that led here did: a whole page of the signed-in app shows it.
    page = "project" in context and not request.headers.get("HX-Request")
    shows_flash = page and not name.startswith("_")
    said = flash.pending(request) if shows_flash else None
    if said is not None:
        context["flash"] = said
    response = templates.TemplateResponse(
        request, name, context, status_code=status_code, headers=_HEADERS
    )
    if shows_flash and flash.left(request):  # shown, or forged: either way, gone
        flash.clear(response)
    return response
