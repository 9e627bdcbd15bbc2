"""The session page's Evaluate action in a real browser: the run is queued, judged by
the local fake judge in the background, and its outcome appears without a reload; the
Sessions list and the session page say whether a session is active or ended."""

from __future__ import annotations

import re
import uuid

import httpx
from playwright.sync_api import expect

from tests.integrations.fake_judge import FakeJudge
from tests.server.test_evaluations import send_turn


def _evaluator(base_url: str, name: str) -> dict:
    return {
        "name": name,
        "prompt": "Did the assistant resolve the user's problem?\n{{transcript}}",
        "judge": {"base_url": base_url, "model": "gpt-4o-mini"},
        "score": {"name": name, "data_type": "boolean"},
        "online": False,
    }


def test_evaluate_from_the_session_page_shows_the_run_and_its_score(ui, server):
    sid = f"ui-eval-{uuid.uuid4().hex[:8]}"
    send_turn(server, sid, "My invoice is wrong", "I corrected it, sorry about that.")
    send_turn(server, sid, "Great, thanks!", "You're welcome.")
    with FakeJudge() as judge:
        for name in ("resolved", "refuses"):
            body = _evaluator(judge.base_url, name)
            assert server.http.post("/api/v1/evaluators", json=body).status_code == 201
        page = ui.go(f"/sessions/{sid}")
        section = page.locator("[data-testid=evaluations]")
        assert "Not evaluated yet" in section.inner_text()
        # A session that just had a turn is active (the server's idle time is 10 min).
        assert page.locator("[data-col=activity]").first.get_attribute("data-value") == "active"
        page.select_option("select[name=evaluator]", "resolved")
        page.click("[data-testid=evaluate-form] button[type=submit]")
        page.wait_for_url(re.compile(r".*#evaluations$"))
        row = page.locator("#evaluation-runs tr[data-status=done]")
        row.wait_for()  # the list polls until the run is judged: no reload
        (run,) = server.get("/api/v1/evaluation-runs", session_id=sid)["items"]
        assert run["status"] == "done" and row.get_attribute("data-run") == run["id"]
        tokens = row.locator("[data-col=tokens]").get_attribute("data-value")
        assert tokens == f"{run['input_tokens']}:{run['output_tokens']}"
        cost = float(row.locator("[data-col=cost_usd]").get_attribute("data-value"))
        assert abs(cost - run["cost_usd"]) < 1e-12
        score = server.get(f"/api/v1/scores/{run['score_id']}")
        assert score["value"] is True and score["source"] == "eval"
        shown = row.locator("[data-col=score]")
        # Written as the score chips write it (it said "resolved: True").
        assert shown.get_attribute("data-value") == "true"
        assert shown.inner_text() == "resolved: good" and shown.locator(".thumb-icon.up").count()
        assert score["comment"] in row.locator(".run-result").inner_text()
        # The judge read both turns.
        prompt = judge.answered()[0].request["messages"][1]["content"]
        assert "My invoice is wrong" in prompt and "Great, thanks!" in prompt
        # A judge that fails: the reason is on the page.
        judge.mode = "reject"
        page.select_option("select[name=evaluator]", "refuses")
        page.click("[data-testid=evaluate-form] button[type=submit]")
        failed = page.locator("#evaluation-runs tr[data-status=failed]")
        failed.wait_for()
        reason = failed.locator("[data-col=reason]").inner_text()
        assert reason == "the judge answered HTTP 400: the fake judge rejects this request"
        ui.shot("evaluated")
    assert not ui.errors, ui.errors


def test_the_sessions_list_says_active_or_ended_as_the_api_does(ui, server):
    old, fresh = f"old-{uuid.uuid4().hex[:8]}", f"fresh-{uuid.uuid4().hex[:8]}"
    send_turn(server, old, "hello", "hi", ago_s=3600)  # idle an hour: ended
    send_turn(server, fresh, "hello", "hi")
    page = ui.go("/sessions?range=all")
    api = {s["session_id"]: s["activity"] for s in server.get("/api/v1/sessions")["items"]}
    assert api[fresh] == "active" and api[old] == "ended"
    for sid, state in ((fresh, "active"), (old, "ended")):
        row = page.locator(f"tr.session-row[data-id='{sid}']")
        assert row.locator("[data-col=activity]").get_attribute("data-value") == state
    assert server.get(f"/api/v1/sessions/{fresh}")["activity"] == "active"
    assert not ui.errors, ui.errors


def test_the_evaluate_form_refuses_another_sites_origin(server):
    sid = f"origin-{uuid.uuid4().hex[:8]}"
    send_turn(server, sid, "hello", "hi")
    body = _evaluator("http://127.0.0.1:9/v1", "resolved")
    assert server.http.post("/api/v1/evaluators", json=body).status_code == 201
    form = f"session_id={sid}&evaluator=resolved"
    cookies = {"threadline_session": server.api_key}
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    foreign = httpx.post(
        server.base_url + "/evaluate",
        content=form,
        cookies=cookies,
        headers={**headers, "Origin": "https://evil.example"},
    )
    assert foreign.status_code == 403 and "evil.example" in foreign.json()["error"]
    assert server.get("/api/v1/evaluation-runs", session_id=sid)["items"] == []
    own = httpx.post(
        server.base_url + "/evaluate",
        content=form,
        cookies=cookies,
        headers={**headers, "Origin": server.base_url},
    )
    assert own.status_code == 303 and own.headers["location"].endswith("#evaluations")
    assert len(server.get("/api/v1/evaluation-runs", session_id=sid)["items"]) == 1
    unknown = httpx.post(
        server.base_url + "/evaluate",
        content=f"session_id={sid}&evaluator=nope",
        cookies=cookies,
        headers=headers,
    )
    assert unknown.status_code == 404 and "nope" in unknown.json()["error"]


def test_evaluators_are_defined_listed_with_their_cost_and_deleted_in_the_ui(ui, server):
    sid = f"ui-def-{uuid.uuid4().hex[:8]}"
    send_turn(server, sid, "Where is my parcel?", "It arrives tomorrow, thanks for waiting")
    with FakeJudge() as judge:
        page = ui.go("/evaluators")
        assert "No evaluator yet" in page.inner_text("[data-testid=evaluators]")
        form = page.locator("[data-testid=evaluator-form]")
        form.locator("input[name=name]").fill("helpfulness")
        form.locator("textarea[name=prompt]").fill("Rate 1-5 how helpful.\n{{transcript}}")
        form.locator("input[name=base_url]").fill(judge.base_url)
        form.locator("input[name=model]").fill("gpt-4o-mini")
        form.locator("select[name=score_type]").select_option("numeric")
        form.locator("input[name=min_value]").fill("1")
        form.locator("input[name=max_value]").fill("0")  # below the minimum: refused
        form.locator("input[name=online]").uncheck()
        form.locator("button[type=submit]").click()
        error = page.locator("[data-testid=form-error]")
        assert error.inner_text() == "score 'helpfulness': min_value is above max_value"
        # The refused form is answered 400 on purpose, which Chromium logs.
        assert ui.errors == [
            "console: Failed to load resource: the server responded with a status of 400 "
            "(Bad Request)"
        ]
        ui.errors.clear()
        # The form keeps what was typed; fix the maximum and send it again.
        assert form.locator("textarea[name=prompt]").input_value().startswith("Rate 1-5")
        form.locator("input[name=max_value]").fill("5")
        form.locator("button[type=submit]").click()
        page.wait_for_url(re.compile(r".*/evaluators$"))
        (made,) = server.get("/api/v1/evaluators")["items"]
        assert (made["name"], made["online"], made["target"]) == ("helpfulness", False, "session")
        assert made["score"] == {
            "name": "helpfulness",
            "data_type": "numeric",
            "min_value": 1.0,
            "max_value": 5.0,
            "labels": [],
            "description": None,
        }
        # Judge a session with it; the page's totals are the API's.
        response = server.http.post(
            "/api/v1/evaluation-runs", json={"evaluator": "helpfulness", "session_id": sid}
        )
        assert response.status_code == 202
        totals: dict = {}
        for _ in range(100):
            totals = server.get("/api/v1/evaluators/helpfulness")["totals"]
            if totals["runs_done"]:
                break
            page.wait_for_timeout(100)
        page.reload()
        row = page.locator("tr[data-evaluator=helpfulness]")
        assert row.locator("[data-col=runs_done]").get_attribute("data-value") == "1"
        tokens = row.locator("[data-col=tokens]").get_attribute("data-value")
        assert tokens == f"{totals['input_tokens']}:{totals['output_tokens']}"
        cost = float(row.locator("[data-col=cost_usd]").get_attribute("data-value"))
        assert abs(cost - totals["cost_usd"]) < 1e-12
        ui.shot("evaluators")
        row.get_by_test_id("delete-evaluator").click()
        ui.shot("evaluators-delete-question")
        assert server.get("/api/v1/evaluators")["items"] != []  # asked, not deleted
        row.get_by_test_id("delete-evaluator-confirm").click()
        expect(page.get_by_test_id("flash")).to_have_text(
            "Deleted evaluator helpfulness; the scores it wrote stay."
        )
        assert server.get("/api/v1/evaluators")["items"] == []
        assert page.locator("tr[data-evaluator=helpfulness]").count() == 0
    assert not ui.errors, ui.errors


def test_an_evaluator_is_changed_in_the_ui_and_keeps_its_name(ui, server):
    with FakeJudge() as judge:
        made = {
            **_evaluator(judge.base_url, "tone"),
            "score": {"name": "tone", "data_type": "categorical", "labels": ["calm", "curt"]},
            "filter": {"tags": ["support"], "metadata": {"tier": "pro"}, "user_id": None},
            "sampling_rate": 0.25,
        }
        response = server.http.post("/api/v1/evaluators", json=made)
        assert response.status_code == 201
        created_at = response.json()["created_at"]
        page = ui.go("/evaluators")
        page.locator("tr[data-evaluator=tone] a", has_text="Edit").click()
        page.wait_for_url(re.compile(r".*/evaluators\?edit=tone"))
        form = page.locator("[data-testid=evaluator-form]")
        # The form holds the evaluator as it is.
        assert form.locator("input[name=name]").input_value() == "tone"
        assert form.locator("input[name=name]").get_attribute("readonly") is not None
        assert form.locator("input[name=labels]").input_value() == "calm, curt"
        assert form.locator("textarea[name=metadata]").input_value() == "tier=pro"
        assert form.locator("input[name=sampling_rate]").input_value() == "0.25"
        assert not form.locator("input[name=online]").is_checked()
        # An impossible change is refused, and the form still edits the same evaluator.
        form.locator("input[name=sampling_rate]").fill("2")
        form.locator("button[type=submit]").click()
        assert "sampling_rate" in page.locator("[data-testid=form-error]").inner_text()
        ui.errors.clear()  # the 400, which Chromium logs
        assert "Edit evaluator" in page.inner_text("#evaluator-form")
        form.locator("input[name=sampling_rate]").fill("1")
        form.locator("input[name=labels]").fill("calm, curt, warm")
        form.locator("input[name=online]").check()
        form.locator("button[type=submit]").click()
        page.wait_for_url(re.compile(r".*/evaluators$"))
        changed = server.get("/api/v1/evaluators/tone")
        assert changed["score"]["labels"] == ["calm", "curt", "warm"]
        assert (changed["online"], changed["sampling_rate"]) == (True, 1.0)
        assert changed["filter"]["metadata"] == {"tier": "pro"}
        assert changed["created_at"] == created_at
        ui.shot("evaluator-edited")
    assert not ui.errors, ui.errors


def test_an_evaluators_name_cannot_change_through_the_edit_form(server):
    """The form's own fields could be altered by hand: the name is checked on the server."""
    with FakeJudge() as judge:
        made = _evaluator(judge.base_url, "kept")
        assert server.http.post("/api/v1/evaluators", json=made).status_code == 201
        form = {
            "editing": "kept",
            "name": "renamed",
            "prompt": "Resolved?",
            "base_url": judge.base_url,
            "model": "gpt-4o-mini",
            "score_type": "boolean",
        }
        cookies = {"threadline_session": server.api_key}
        origin = {"Origin": server.base_url}
        with httpx.Client(base_url=server.base_url, cookies=cookies, headers=origin) as web:
            refused = web.post("/evaluators", data=form)
            assert refused.status_code == 400
            assert "name cannot change" in refused.text
            gone = web.post("/evaluators", data={**form, "editing": "nothing", "name": "nothing"})
            assert gone.status_code == 404
        names = [e["name"] for e in server.get("/api/v1/evaluators")["items"]]
        assert names == ["kept"]


def test_the_form_says_in_its_own_words_that_judging_ended_sessions_needs_online(server):
    """Asking the form to judge the ended sessions without Online checked is refused
    naming the form's fields, not the API's, and no evaluator is made."""
    with FakeJudge() as judge:
        form = {
            "name": "not-online",
            "prompt": "Resolved?",
            "base_url": judge.base_url,
            "model": "gpt-4o-mini",
            "score_type": "boolean",
            "judge_existing": "1d",
        }
        cookies = {"threadline_session": server.api_key}
        origin = {"Origin": server.base_url}
        with httpx.Client(base_url=server.base_url, cookies=cookies, headers=origin) as web:
            refused = web.post("/evaluators", data=form)
        assert refused.status_code == 400
        assert "needs Online checked" in refused.text
        assert "judge_existing_since" not in refused.text
        assert server.get("/api/v1/evaluators")["items"] == []


def test_the_forms_longest_window_of_ended_sessions_is_taken(server):
    """ "30 days", the longest choice, is the longest window the server takes: reckoned
    from the same moment it is checked against, not refused as a moment too old."""
    with FakeJudge() as judge:
        form = {
            "name": "month",
            "prompt": "Resolved?",
            "base_url": judge.base_url,
            "model": "gpt-4o-mini",
            "score_type": "boolean",
            "online": "on",
            "judge_existing": "30d",
        }
        cookies = {"threadline_session": server.api_key}
        origin = {"Origin": server.base_url}
        with httpx.Client(base_url=server.base_url, cookies=cookies, headers=origin) as web:
            saved = web.post("/evaluators", data=form)
        assert saved.status_code == 303, saved.text
        assert [e["name"] for e in server.get("/api/v1/evaluators")["items"]] == ["month"]


def test_the_form_refuses_a_judge_url_with_a_query_or_a_password(server):
    """The form applies the API's rule: nothing may follow the judge's path, and no
    password may sit in its URL; nothing is made."""
    with FakeJudge() as judge:
        form = {
            "name": "leaky",
            "prompt": "Resolved?",
            "model": "gpt-4o-mini",
            "score_type": "boolean",
            "online": "on",
        }
        cookies = {"threadline_session": server.api_key}
        origin = {"Origin": server.base_url}
        with httpx.Client(base_url=server.base_url, cookies=cookies, headers=origin) as web:
            for url, word in (
                (judge.base_url.replace("http://", "http://ann:pw@"), "password"),
                (judge.base_url + "?api-version=1", "query"),
            ):
                refused = web.post("/evaluators", data={**form, "base_url": url})
                assert refused.status_code == 400 and word in refused.text, refused.text
        assert server.get("/api/v1/evaluators")["items"] == []


def _help(base_url: str, key: str) -> str:
    with httpx.Client(base_url=base_url, cookies={"threadline_session": key}) as web:
        page = web.get("/evaluators")
    assert page.status_code == 200, page.text
    found = re.search(
        r'<details class="help" data-testid="evaluators-help"[^>]*>.*?</details>', page.text, re.S
    )
    assert found, "no help on the page"
    return found[0]


def test_the_evaluators_page_explains_itself_in_this_servers_numbers(tmp_path, server):
    """The help the form needs is on the page, with this server's idle time, retries,
    bound on waiting runs and key bindings; open while the project has no evaluator."""
    from tests.conftest import start_server, stop_server

    process = start_server(
        tmp_path / "data",
        tmp_path / "server.log",
        *("--session-idle-seconds", "90", "--evaluation-max-waiting-runs", "1234"),
        *("--judge-attempts", "5", "--judge-timeout-seconds", "42"),
        *("--judge-key-urls", "THREADLINE_JUDGE_OPENAI_KEY=https://api.openai.com/v1"),
    )
    try:
        shown = _help(process.base_url, process.new_key("helped"))
    finally:
        stop_server(process)
    assert shown.split(">", 1)[0].endswith(" open")  # no evaluator yet: open
    for said in (
        "no new trace for 1 minute 30 seconds;",  # the idle time, as a sentence says it
        "{{transcript}}",
        "may take 42 seconds;",
        "tried 5 times",
        "0 of at most 1,234",
        "THREADLINE_JUDGE_",
        "No <code>?query</code>",
    ):
        assert said in shown, said
    assert re.search(
        r"<code>THREADLINE_JUDGE_OPENAI_KEY</code> → <code>https://api.openai.com/v1</code>",
        shown,
    )
    # Unbound, it says so: any key may go to any URL.
    assert "does not bind keys to URLs" in _help(server.base_url, server.api_key)


# Where a cell's text runs past what its scrolling table shows (0: all of it is seen).
_TEXT_HIDDEN_PX = """cell => {
  const range = document.createRange();
  range.selectNodeContents(cell);
  const text = range.getBoundingClientRect();
  let seen = {left: 0, right: window.innerWidth};
  for (let box = cell.parentElement; box; box = box.parentElement) {
    if (getComputedStyle(box).overflowX === "visible") continue;
    const edge = box.getBoundingClientRect();
    seen = {left: Math.max(seen.left, edge.left), right: Math.min(seen.right, edge.right)};
  }
  return Math.max(0, seen.left - text.left) + Math.max(0, text.right - seen.right);
}"""


def test_a_phone_shows_each_runs_result_whole(ui, server):
    """At 390 px the runs table scrolled sideways and cut the Result column at its
    edge: the judge's comment and a failure's reason were half hidden."""
    sid = f"ui-eval-{uuid.uuid4().hex[:8]}"
    send_turn(server, sid, "My invoice is wrong", "I corrected it, sorry about that.")
    with FakeJudge() as judge:
        for name in ("resolved", "refuses"):
            body = _evaluator(judge.base_url, name)
            assert server.http.post("/api/v1/evaluators", json=body).status_code == 201
        run = {"evaluator": "resolved", "session_id": sid}
        assert server.http.post("/api/v1/evaluation-runs", json=run).status_code < 300
        page = ui.go(f"/sessions/{sid}")
        page.locator("#evaluation-runs tr[data-status=done]").wait_for()
        judge.mode = "reject"
        run = {"evaluator": "refuses", "session_id": sid}
        assert server.http.post("/api/v1/evaluation-runs", json=run).status_code < 300
        page = ui.go(f"/sessions/{sid}")  # the list polls only while a run it shows waits
        page.locator("#evaluation-runs tr[data-status=failed]").wait_for()
    page.set_viewport_size({"width": 390, "height": 844})
    page.locator("#evaluation-runs").scroll_into_view_if_needed()
    ui.shot("phone")
    results = page.locator("#evaluation-runs td.run-result")
    assert results.count() == 2
    for i in range(2):
        cell = results.nth(i)
        assert cell.inner_text().strip()
        assert cell.evaluate(_TEXT_HIDDEN_PX) == 0, cell.inner_text()
    failed = page.locator("#evaluation-runs tr[data-status=failed] [data-col=reason]")
    assert "the fake judge rejects this request" in failed.inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


def test_the_evaluators_page_says_when_the_server_lacks_a_judges_key(ui, server):
    """An evaluator whose key variable the server's environment lacks fails every run
    ("not set on the server"): the page says so above the table, naming the evaluator
    and the variable, on a laptop and on a phone, and says nothing of one that needs no
    key. On a phone, each stacked cell of the table says its column."""
    missing = f"THREADLINE_JUDGE_MISSING_{uuid.uuid4().hex[:8].upper()}"
    for name, variable in (("lacks-key", missing), ("keyless", None)):
        body = _evaluator("http://127.0.0.1:9/v1", name)
        body["judge"]["api_key_env"] = variable
        assert server.http.post("/api/v1/evaluators", json=body).status_code == 201
    assert server.get("/api/v1/evaluators/lacks-key")["judge_key_set"] is False
    page = ui.go("/evaluators")
    warning = page.get_by_test_id("judge-key-missing")
    expect(warning).to_have_count(1)
    expect(warning).to_contain_text(f"Evaluator lacks-key: its key variable {missing} is not")
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    box = page.get_by_test_id("judge-key-missing").bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, width
    # A phone stacks each evaluator's cells: each says its column, as the runs' do.
    failed = page.locator("tr[data-evaluator=lacks-key] [data-col=runs_failed]")
    label = failed.evaluate("td => getComputedStyle(td, '::before').content")
    assert label == '"Failed: "', label
    ui.shot("judge-key-missing-phone")
    for name in ("lacks-key", "keyless"):
        assert server.http.delete(f"/api/v1/evaluators/{name}").status_code == 204
