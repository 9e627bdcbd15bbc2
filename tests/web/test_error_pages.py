"""A browser loading a page that fails (no such page, an address it cannot read, an
error in the server) gets a page with a way back; API clients keep the JSON every error
has."""

from __future__ import annotations

import html
import re
import sqlite3
from pathlib import Path

import httpx
from playwright.sync_api import expect

from tests.conftest import ProjectClient, start_server, stop_server
from tests.integrations.fake_judge import UNREACHABLE_JUDGE
from threadline.server.web.auth import COOKIE

from .conftest import UI

HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


def test_an_unknown_path_shows_a_page_with_a_way_back(ui: UI, server) -> None:
    page = ui.page
    response = page.goto(server.base_url + "/evaluators/new")
    assert response is not None and response.status == 404
    assert "text/html" in response.headers["content-type"]
    found = page.get_by_test_id("error-page")
    expect(found).to_contain_text("Page not found")
    expect(found).to_contain_text("/evaluators/new")
    # The app's layout: the signed-in project and its tabs.
    expect(page.get_by_test_id("project-name")).to_be_visible()
    expect(page.locator(".topnav a", has_text="Evaluators")).to_be_visible()
    ui.errors.clear()  # the 404 itself, which Chromium logs
    page.get_by_role("link", name="Back to sessions").click()
    page.wait_for_url(server.base_url + "/sessions")

    # A form's POST-only route opened in the address bar: a page too, with its Allow.
    response = page.goto(server.base_url + "/ui/scores", wait_until="load")
    assert response is not None and response.status == 405
    assert response.headers["allow"] == "POST"
    expect(page.get_by_test_id("error-page")).to_contain_text("Not a page")
    ui.errors.clear()


def test_api_clients_and_fragments_keep_the_json(server) -> None:
    http = server.http
    # No Accept of HTML (httpx sends */*), an API path, or an htmx request: JSON.
    for path, headers in (
        ("/evaluators/new", {}),
        ("/api/v1/nothing-here", HTML),
        ("/v1/nothing-here", HTML),
        ("/evaluators/new", {**HTML, "HX-Request": "true"}),
    ):
        answer = http.get(path, headers=headers)
        assert (answer.status_code, answer.json()) == (404, {"error": "Not Found"}), path
    answer = http.get("/logout")
    assert answer.status_code == 405 and answer.json() == {"error": "Method Not Allowed"}
    # A POST to a page path stays JSON: only page loads get a page.
    answer = http.post("/evaluators/new", headers=HTML)
    assert answer.status_code in (404, 405) and "error" in answer.json()


def test_a_signed_out_browser_gets_the_page_without_a_project(server) -> None:
    answer = httpx.get(server.base_url + "/evaluators/new", headers=HTML)
    assert answer.status_code == 404 and answer.headers["content-type"].startswith("text/html")
    assert "Page not found" in answer.text and 'href="/sessions"' in answer.text
    assert "project-name" not in answer.text and "Sign out" not in answer.text
    # Like every page: the Content-Security-Policy and no caching.
    assert "script-src 'self'" in answer.headers["content-security-policy"]


def test_a_page_address_it_cannot_read_is_a_400_page(server) -> None:
    cookies = {COOKIE: server.api_key}
    with httpx.Client(base_url=server.base_url, cookies=cookies, timeout=30) as web:
        answer = web.get("/sessions/any-session", params={"turn": "0"}, headers=HTML)
        assert answer.status_code == 400 and answer.headers["content-type"].startswith("text/html")
        assert "Cannot show this page as asked" in answer.text
        assert "turn" in answer.text and "greater than or equal to 1" in answer.text
        assert "project-name" in answer.text  # the signed-in layout
        assert "script-src 'self'" in answer.headers["content-security-policy"]
        # What the page says of the address is escaped like any text.
        answer = web.get("/sessions/s", params={"turn": "<b>x</b>"}, headers=HTML)
        assert answer.status_code == 400 and "<b>x</b>" not in answer.text
        # htmx and clients that do not ask for HTML keep the JSON 422.
        for headers in ({}, {**HTML, "HX-Request": "true"}):
            answer = web.get("/sessions/any-session", params={"turn": "0"}, headers=headers)
            assert answer.status_code == 422 and "turn" in answer.json()["error"], headers
        # An error a page route raises itself (a bad filter of the export): a page too.
        answer = web.get("/export/sessions", params={"format": "xml"}, headers=HTML)
        assert answer.status_code == 400, answer.text
        assert answer.headers["content-type"].startswith("text/html"), answer.text
    # The way back from a list or the dashboard is to it, as its tab opens it.
    with httpx.Client(base_url=server.base_url, cookies=cookies, timeout=30) as web:
        for path, name in (("/dashboard", "the dashboard"), ("/users", "users")):
            answer = web.get(path, params={"range": "fortnight"}, headers=HTML)
            assert answer.status_code == 400, answer.text
            assert f'<a href="{path}">Back to {name}</a>' in answer.text
            assert web.get(path, headers=HTML).status_code == 200
    # Signed out, the address is not read: sign in first, as on every page.
    answer = httpx.get(server.base_url + "/sessions/s?turn=0", headers=HTML)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login")


def test_a_signed_out_request_is_sent_to_sign_in_whatever_its_parameters(server) -> None:
    # Each address holds what its page refuses (an unknown parameter, a filter, a value
    # the route's own parameter cannot take), read before sign-in is checked. Signed out,
    # the answer is the one every page gives: sign in first, the address kept to return to.
    for address in (
        "/sessions?bogus=1&tag=a",
        "/traces?filter=turns>>5",
        "/users?range=fortnight",
        "/dashboard?bogus=1",
        "/sessions/s?bogus=1",
        "/evaluators?bogus=1",
        "/settings?bogus=1",
        "/export/sessions?bogus=1",
        "/sessions?tag=a%00b",
    ):
        for headers in (HTML, {}):  # a browser, and a client asking for no HTML
            answer = httpx.get(server.base_url + address, headers=headers)
            assert answer.status_code == 303, (address, headers, answer.text)
            assert answer.headers["location"].startswith("/login?next=%2F"), address
        # htmx cannot follow a redirect to a page: told to go there instead, as always.
        answer = httpx.get(server.base_url + address, headers={**HTML, "HX-Request": "true"})
        assert answer.status_code == 401, (address, answer.text)
        assert answer.headers["HX-Redirect"].startswith("/login?next=%2F"), address
    # The sign-in page itself and the public share page take no cookie: their 400 stays.
    for address in ("/login?bogus=1", "/shared/tls_none?bogus=1"):
        answer = httpx.get(server.base_url + address, headers=HTML)
        assert answer.status_code == 400, (address, answer.text)
        assert "unknown query parameter" in answer.text, address
    # Signed in, the same addresses are the 400 page (what is wrong is theirs to see).
    with httpx.Client(base_url=server.base_url, cookies={COOKIE: server.api_key}) as web:
        answer = web.get("/sessions?bogus=1&tag=a", headers=HTML)
        assert answer.status_code == 400 and "bogus" in answer.text


def test_the_way_back_from_a_400_keeps_every_filter_but_the_wrong_ones(server) -> None:
    # (address, the way back): only what the page refused is left out; a cursor too (it is
    # bound to the filters it was made with); every other filter as the user had it.
    cases = (
        ("/sessions?tag=a&bogus=1&status=ok", "/sessions?tag=a&status=ok"),
        ("/sessions?filter=turns>>5&filter=turns>3&tag=a", "/sessions?filter=turns%3E3&tag=a"),
        ("/sessions?sort=cost&order=asc&tag=x", "/sessions?sort=cost&tag=x"),
        ("/sessions?sort=nope&order=asc&tag=x", "/sessions?tag=x"),
        ("/sessions?sort=score:stars&order=up&q=hi", "/sessions?sort=score%3Astars&q=hi"),
        ("/traces?score=stars>3&score=stars>>&user_id=u", "/traces?score=stars%3E3&user_id=u"),
        ("/traces?tag=a&tag=b&status=ok", "/traces?status=ok"),
        ("/traces?tag=a%00b&status=ok", "/traces?status=ok"),
        (
            "/sessions?range=custom&start=yesterday&end=2026-01-01T00:00:00Z&cursor=abc",
            "/sessions?range=custom&end=2026-01-01T00%3A00%3A00Z",
        ),
        ("/users?range=fortnight&user_id=u", "/users?user_id=u"),
        ("/sessions?tag=a&cursor=forged&sort=cost", "/sessions?tag=a&sort=cost"),
        ("/dashboard?range=fortnight&tag=a&bucket=minute", "/dashboard?tag=a"),
        ("/dashboard?group_by=colour&metadata=env=prod", "/dashboard?metadata=env%3Dprod"),
        # An unknown parameter is refused before the filters are read: the way back
        # leaves out what the filters then refuse as well, not a second 400 page away.
        ("/traces?bogus=1&status=maybe&tag=a", "/traces?tag=a"),
    )
    with httpx.Client(base_url=server.base_url, cookies={COOKIE: server.api_key}) as web:
        for address, back in cases:
            answer = web.get(address, headers=HTML)
            assert answer.status_code == 400, (address, answer.text)
            found = re.search(r'<a href="([^"]*)">Back to ', answer.text)
            assert found is not None, address
            assert html.unescape(found[1]) == back, address
            assert web.get(back, headers=HTML).status_code == 200, back


def test_an_error_in_the_server_is_a_500_page_for_a_browser(tmp_path: Path) -> None:
    process = start_server(tmp_path / "data", tmp_path / "server.log")
    try:
        key = process.new_key("broken")
        # A real fault: the table the Evaluators page reads is gone under the server.
        with sqlite3.connect(tmp_path / "data" / "threadline.db") as db:
            db.execute("DROP TABLE evaluators")
        page = httpx.get(
            process.base_url + "/evaluators", cookies={COOKIE: key}, headers=HTML, timeout=30
        )
        assert page.status_code == 500 and page.headers["content-type"].startswith("text/html")
        assert "Something went wrong" in page.text and "server's log" in page.text
        assert "evaluators" not in page.text.replace("/evaluators", "")  # no detail shown
        assert "script-src 'self'" in page.headers["content-security-policy"]
        api = httpx.get(
            process.base_url + "/api/v1/evaluators",
            headers={"Authorization": f"Bearer {key}", **HTML},
            timeout=30,
        )
        assert api.status_code == 500
        assert api.json() == {"error": "internal error: see the server log"}
    finally:
        stop_server(process)


def test_a_form_the_server_refuses_answers_a_page(tmp_path: Path) -> None:
    # At most one run may wait, and this server judges none: a second Evaluate is a 409.
    process = start_server(
        tmp_path / "data",
        tmp_path / "server.log",
        *("--grpc-port", "0", "--evaluation-concurrency", "0"),
        *("--evaluation-max-waiting-runs", "1"),
    )
    try:
        key = process.new_key("bounded")
        api = ProjectClient(process.base_url, key, process)
        for session in ("s-1", "s-2"):
            api.send_span({"session.id": session})
        made = api.http.post(
            "/api/v1/evaluators",
            json={
                "name": "judge",
                "prompt": "{{transcript}}",
                "judge": UNREACHABLE_JUDGE,
                "score": {"name": "judge", "data_type": "boolean"},
            },
        )
        assert made.status_code in (200, 201), made.text
        form = {"Origin": process.base_url, **HTML}
        with httpx.Client(base_url=process.base_url, cookies={COOKIE: key}, timeout=30) as web:
            first = web.post(
                "/evaluate", data={"session_id": "s-1", "evaluator": "judge"}, headers=form
            )
            assert first.status_code == 303, first.text
            second = web.post(
                "/evaluate", data={"session_id": "s-2", "evaluator": "judge"}, headers=form
            )
            assert second.status_code == 409
            assert second.headers["content-type"].startswith("text/html"), second.text
            assert "Not done" in second.text and "evaluation_max_waiting_runs" in second.text
            assert "project-name" in second.text  # the signed-in layout, with its tabs
            # The way back is to the page the form was on (its Referer), if of this server.
            assert '<a href="/sessions">Back to sessions</a>' in second.text
            for referer, back in (
                (process.base_url + "/sessions/s-2?turn=1", "/sessions/s-2?turn=1"),
                ("http://elsewhere.example/sessions/s-2", "/sessions"),
            ):
                answer = web.post(
                    "/evaluate",
                    data={"session_id": "s-2", "evaluator": "judge"},
                    headers={**form, "Referer": referer},
                )
                assert answer.status_code == 409
                assert f'<a href="{back}">Back to ' in answer.text, referer
            # A client that does not ask for HTML keeps the JSON.
            again = web.post(
                "/evaluate",
                data={"session_id": "s-2", "evaluator": "judge"},
                headers={"Origin": process.base_url},
            )
            assert (
                again.status_code == 409 and "evaluation_max_waiting_runs" in again.json()["error"]
            )
    finally:
        stop_server(process)
