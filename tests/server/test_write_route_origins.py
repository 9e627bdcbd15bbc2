"""Every route that changes state, enumerated from the app itself, against a browser on
another origin: a form route (signed in by cookie) refuses it with 403 before doing
anything, and a JSON or OTLP route takes no cookie at all (only a key in a header,
which another site's page cannot send). A new write route is checked the day it is
added, without being listed here."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.reliability.test_isolation import _flatten
from threadline.server.app import create_app
from threadline.server.settings import Settings
from threadline.server.store.sqlite import SQLiteStore

COOKIE = "threadline_session"
WRITES = {"POST", "PUT", "PATCH", "DELETE"}
# Routes that take a key in a header (Bearer, or Langfuse's Basic), never the cookie.
KEYED_PREFIXES = ("/api/", "/v1/")


def _write_routes(data_dir: Path) -> list[tuple[str, str]]:
    app = create_app(Settings(data_dir=data_dir), SQLiteStore(data_dir / "threadline.db"))
    return sorted((m, p) for m, p in set(_flatten(app.routes)) if m in WRITES)


@pytest.fixture(scope="module")
def write_routes(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, str]]:
    return _write_routes(tmp_path_factory.mktemp("routes"))


def _concrete(path: str) -> str:
    """A path template with its parameters filled by ids that name nothing."""
    for name in ("{session_id:path}", "{trace_id}", "{share_id}", "{score_id}", "{note_id}"):
        path = path.replace(name, "0" * 32)
    return path.replace("{name}", "nothing")


def test_form_routes_refuse_another_origin_and_keyed_routes_ignore_the_cookie(
    server, write_routes: list[tuple[str, str]]
) -> None:
    base = server.base_url
    forms = [(m, p) for m, p in write_routes if not p.startswith(KEYED_PREFIXES)]
    keyed = [(m, p) for m, p in write_routes if p.startswith(KEYED_PREFIXES)]
    # The walk is not empty on either side (a renamed prefix would empty it).
    assert ("POST", "/login") in forms and ("POST", "/ui/scores") in forms, forms
    assert ("POST", "/api/v1/scores") in keyed and ("POST", "/v1/traces") in keyed, keyed
    other_port = base.rsplit(":", 1)[0] + ":1"
    browser = httpx.Client(base_url=base, cookies={COOKIE: server.api_key}, timeout=30)
    before = server.get("/api/v1/settings/retention"), server.get("/api/v1/evaluators")
    for method, path in forms:
        for headers in (
            {"Origin": "https://evil.example"},
            {"Origin": other_port},
            {"Origin": "null"},
            {"Sec-Fetch-Site": "cross-site"},
            {"Sec-Fetch-Site": "same-site", "Origin": base},
            {"Referer": other_port + "/page"},
        ):
            answer = browser.request(
                method,
                _concrete(path),
                content=f"key={server.api_key}&days=1&session_id=x&name=x".encode(),
                headers={"Content-Type": "application/x-www-form-urlencoded", **headers},
            )
            assert answer.status_code == 403, (method, path, headers, answer.text)
    for method, path in keyed:
        # What a page of another site could send: the cookie, a form's content type.
        answer = browser.request(
            method,
            _concrete(path),
            content=b'{"days": 1, "name": "x", "value": 1, "session_id": "x"}',
            headers={"Content-Type": "text/plain", "Origin": "https://evil.example"},
        )
        assert answer.status_code == 401, (method, path, answer.text)
    # Nothing was changed by any of them.
    after = server.get("/api/v1/settings/retention"), server.get("/api/v1/evaluators")
    assert after == before
