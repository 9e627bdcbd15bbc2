"""The Settings page's forms over HTTP: signed in with a cookie and sent from this
server's own pages, or refused; a bad value is a 400 page that says why, and changes
nothing; a good one is what the JSON API reads back."""

from __future__ import annotations

import html

import httpx
import pytest

from threadline.server.web.auth import COOKIE


@pytest.fixture
def web(server):
    with httpx.Client(base_url=server.base_url, cookies={COOKIE: server.api_key}) as client:
        yield client


def _post(web: httpx.Client, path: str, form: dict[str, str], **headers: str) -> httpx.Response:
    return web.post(path, data=form, headers={"Origin": str(web.base_url).rstrip("/"), **headers})


def test_the_forms_check_the_origin_and_the_sign_in(server, web) -> None:
    base = server.base_url
    other_port = base.rsplit(":", 1)[0] + ":1"
    forms = [
        ("/settings/retention", {"days": "3"}),
        ("/settings/redaction", {"detector_email": "on"}),
    ]
    for path, form in forms:
        for headers in (
            {"Origin": "https://evil.example"},
            {"Origin": other_port},
            {"Origin": "null"},
            {"Sec-Fetch-Site": "cross-site"},
        ):
            refused = web.post(path, data=form, headers=headers)
            assert refused.status_code == 403, (path, headers, refused.text)
        anonymous = httpx.post(base + path, data=form, headers={"Origin": base})
        assert anonymous.status_code == 303 and "/login" in anonymous.headers["location"]
    assert server.get("/api/v1/settings/retention")["days"] is None
    assert server.get("/api/v1/settings/redaction")["detectors"] == []
    assert httpx.get(base + "/settings").status_code == 303


@pytest.mark.parametrize(
    ("days", "says"),
    [
        ("x", "'x': a whole number of days in the digits 0-9, or empty"),
        ("1.5", "a whole number of days"),
        ("1_000", "a whole number of days in the digits 0-9"),
        ("\u0663", "a whole number of days in the digits 0-9"),
        ("+1", "a whole number of days in the digits 0-9"),
        ("-1", "a whole number of days in the digits 0-9"),
        ("36501", "from 0 (keep forever) to 36500"),
    ],
)
def test_bad_days_are_refused_with_the_reason(server, web, days: str, says: str) -> None:
    refused = _post(web, "/settings/retention", {"days": days})
    assert refused.status_code == 400
    assert says in html.unescape(refused.text) and 'data-testid="form-error"' in refused.text
    assert f'value="{days}"' in refused.text  # the form keeps what was typed
    assert server.get("/api/v1/settings/retention")["days"] is None


def test_retention_is_set_and_given_back_to_the_server(server, web) -> None:
    saved = _post(web, "/settings/retention", {"days": "0"})
    assert saved.status_code == 303 and saved.headers["location"] == "/settings?saved=retention"
    assert server.get("/api/v1/settings/retention") == {
        "days": 0,
        "server_days": 0,
        "effective_days": 0,
    }
    assert 'name="days" value="0"' in web.get("/settings").text
    assert _post(web, "/settings/retention", {"days": "30"}).status_code == 303
    assert server.get("/api/v1/settings/retention")["effective_days"] == 30
    # Emptied: the server's again.
    assert _post(web, "/settings/retention", {"days": ""}).status_code == 303
    assert server.get("/api/v1/settings/retention")["days"] is None


@pytest.mark.parametrize(
    ("form", "says"),
    [
        ({"detector_iban": "on"}, "unknown detector(s) iban"),
        ({"patterns": "ORD-\\d+"}, "pattern line 1: write it as name = regex"),
        ({"patterns": "Order = ORD"}, "pattern name 'Order'"),
        ({"patterns": "a = x\na = y"}, "two patterns named 'a'"),
        ({"patterns": "a = (x"}, "pattern 'a' is not an RE2 regular expression"),
        ({"patterns": "a = (a)\\1"}, "pattern 'a' is not an RE2 regular expression"),
        ({"patterns": "a = x*"}, "pattern 'a' matches the empty text"),
        ({"patterns": "a ="}, "pattern 'a': 1 to 500 characters"),
        ({"patterns": "\n".join(f"p{i} = x{i}" for i in range(33))}, "33 patterns: at most 32"),
    ],
)
def test_bad_redaction_rules_are_refused_with_the_reason(server, web, form, says) -> None:
    refused = _post(web, "/settings/redaction", {"detector_email": "on", **form})
    assert refused.status_code == 400
    assert says in html.unescape(refused.text), refused.text
    assert server.get("/api/v1/settings/redaction")["detectors"] == []


def test_redaction_rules_are_set_and_read_back(server, web) -> None:
    form = {"detector_card": "on", "detector_email": "on", "patterns": "\norder = ORD-\\d{6}\n\n"}
    saved = _post(web, "/settings/redaction", form)
    assert saved.status_code == 303 and saved.headers["location"] == "/settings?saved=redaction"
    rules = server.get("/api/v1/settings/redaction")
    assert rules["detectors"] == ["email", "card"]
    assert rules["patterns"] == [{"name": "order", "regex": "ORD-\\d{6}"}]
    page = web.get("/settings?saved=redaction").text
    assert 'name="detector_card" checked' in page and 'name="detector_phone" >' in page
    assert "order = ORD-\\d{6}</textarea>" in page
    # Nothing ticked and no pattern: no rules.
    assert _post(web, "/settings/redaction", {"patterns": ""}).status_code == 303
    assert server.get("/api/v1/settings/redaction") | {"available_detectors": {}} == {
        "detectors": [],
        "patterns": [],
        "available_detectors": {},
    }
