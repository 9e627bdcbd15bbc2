"""The line a delete leaves for the next page ("Deleted session ..."): shown once, to
the browser whose post wrote it; a flash cookie written by anyone else (a forged one,
one of another signed-in browser) is not shown, and is cleared."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.conftest import ProjectClient
from threadline.server.web.auth import COOKIE


def _flash(page: httpx.Response) -> str | None:
    found = re.search(r'data-testid="flash">([^<]*)<', page.text)
    return found.group(1) if found else None


def _web(server: ProjectClient, key: str) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, cookies={COOKIE: key}, timeout=30)


def _delete_session(web: httpx.Client, session_id: str) -> httpx.Response:
    origin = str(web.base_url).rstrip("/")
    return web.post("/delete/session", data={"session_id": session_id}, headers={"Origin": origin})


def test_a_delete_says_what_it_did_once(server: ProjectClient) -> None:
    server.send_span({"session.id": "s-said"})
    with _web(server, server.api_key) as web:
        deleted = _delete_session(web, "s-said")
        assert deleted.status_code == 303, deleted.text
        page = web.get("/sessions")
        assert _flash(page) == (
            "Deleted session s-said with its traces, their spans, scores and notes."
        )
        assert _flash(web.get("/sessions")) is None  # once


@pytest.mark.parametrize(
    "value",
    [
        "Your%20key%20was%20revoked%3A%20sign%20in%20at%20evil.example",  # unsigned
        "0" * 32 + ".Your%20key%20was%20revoked",  # a made-up signature
        ".Your%20key%20was%20revoked",
        "Your key was revoked",
    ],
)
def test_a_forged_flash_is_not_shown_and_is_cleared(server: ProjectClient, value: str) -> None:
    with _web(server, server.api_key) as web:
        web.cookies.set("threadline_flash", value)
        page = web.get("/sessions")
        assert page.status_code == 200
        assert _flash(page) is None
        assert "revoked" not in page.text
        assert 'threadline_flash=""' in page.headers.get("set-cookie", "")


def test_a_flash_is_shown_only_to_the_browser_it_was_written_for(
    server: ProjectClient,
) -> None:
    """Copied into a browser signed in with another key, it does not verify there."""
    server.send_span({"session.id": "s-theirs"})
    other = server.new_key("full")
    with _web(server, server.api_key) as web, _web(server, other) as elsewhere:
        _delete_session(web, "s-theirs")
        written = web.cookies.get("threadline_flash")
        assert written
        elsewhere.cookies.set("threadline_flash", written)
        assert _flash(elsewhere.get("/sessions")) is None
        assert _flash(web.get("/sessions")) is not None
