"""Scores and notes in a real browser: chips, the score form (thumbs, a number in a
configured range, a label from a configured list), changing and deleting, notes, and
every result checked against the JSON API."""

from __future__ import annotations

import json
import re
from typing import Any

from playwright.sync_api import Browser, Locator, Page, expect

from tests.otlp import new_trace_id

from .conftest import ARTIFACTS, UI, S, Scenario, send, sign_in
from .turns import Turn, turn_spans


def _configure(server: Any) -> None:
    for config in (
        {"name": "helpfulness", "data_type": "numeric", "min_value": 1, "max_value": 5},
        {"name": "outcome", "data_type": "categorical", "labels": ["resolved", "escalated"]},
    ):
        response = server.http.put(f"/api/v1/score-configs/{config['name']}", json=config)
        assert response.status_code == 200, response.text


def _scores(server: Any, **params: str) -> list[dict[str, Any]]:
    return sorted(
        server.get("/api/v1/scores", limit=500, **params)["items"], key=lambda s: s["created_at"]
    )


def _own_scores(server: Any, session_id: str) -> list[dict[str, Any]]:
    """The scores on the session itself (its list holds its turns' too)."""
    return [s for s in _scores(server, session_id=session_id) if s["trace_id"] is None]


def _open_form(panel: Locator) -> Locator:
    panel.get_by_test_id("add-score").click()
    return panel.get_by_test_id("score-form")


def _chips(panel: Locator) -> Locator:
    return panel.locator(".score-chip")


def _chip_values(panel: Locator) -> list[tuple[str, str, str]]:
    found = _chips(panel).evaluate_all(
        "cs => cs.map(c => [c.dataset.name, c.dataset.value, c.dataset.source])"
    )
    return [tuple(chip) for chip in found]


def _accept_dialogs(page: Page) -> None:
    page.on("dialog", lambda dialog: dialog.accept())


def test_score_and_annotate_a_session(ui: UI, server, scenario: Scenario) -> None:
    _configure(server)
    page = ui.go("/sessions/sess-alpha")
    _accept_dialogs(page)
    panel = page.get_by_test_id("review").get_by_test_id("scores-panel")
    expect(panel).to_contain_text("None yet.")

    # Thumbs up on a name nobody configured, with a comment and the reviewer's name.
    form = _open_form(panel)
    form.locator("input[name=name]").fill("resolved")
    form.locator("label.thumb.up").click()
    form.locator("textarea[name=comment]").fill("Address changed as asked")
    form.locator("input[name=author]").fill("Rita")
    form.get_by_role("button", name="Save score").click()
    expect(_chips(panel)).to_have_count(1)
    [written] = _own_scores(server, "sess-alpha")
    assert (written["name"], written["value"], written["data_type"]) == (
        "resolved",
        True,
        "boolean",
    )
    assert (written["source"], written["author"]) == ("ui", "Rita")
    assert written["comment"] == "Address changed as asked" and written["trace_id"] is None
    chip = _chips(panel).first
    expect(chip.get_by_test_id("score-source")).to_have_text("by hand · Rita")
    assert "Address changed as asked" in (chip.get_attribute("title") or "")

    # A configured number: the form takes its range, and the server its value.
    form = _open_form(panel)
    form.locator("input[name=name]").fill("helpfulness")
    expect(form.locator(".sf-type")).to_be_hidden()
    number = form.locator("input[type=number]")
    expect(number).to_have_attribute("min", "1")
    expect(number).to_have_attribute("max", "5")
    expect(form.locator(".sf-range")).to_have_text("1 to 5")
    # The remembered name fills in by itself.
    expect(form.locator("input[name=author]")).to_have_value("Rita")
    number.fill("4")
    form.get_by_role("button", name="Save score").click()
    expect(_chips(panel)).to_have_count(2)
    expect(_chips(panel).nth(1)).to_contain_text("4/5")

    # Change it: the same score (same id) gets the new value.
    helpful_id = _chips(panel).nth(1).get_attribute("data-score-id")
    _chips(panel).nth(1).locator(".sc-edit").click()
    form = panel.get_by_test_id("score-form")
    expect(form.locator("input[type=number]")).to_have_value("4.0")
    form.locator("input[type=number]").fill("5")
    form.get_by_role("button", name="Save change").click()
    expect(_chips(panel).nth(1)).to_contain_text("5/5")
    scores = _own_scores(server, "sess-alpha")
    assert [(s["name"], s["value"]) for s in scores] == [("resolved", True), ("helpfulness", 5.0)]
    assert scores[1]["id"] == helpful_id
    assert _chip_values(panel) == [("resolved", "true", "ui"), ("helpfulness", "5.0", "ui")]
    assert server.get("/api/v1/sessions/sess-alpha")["scores"]["helpfulness"]["average"] == 5.0
    ui.shot("session-scores")

    # A turn's own panel: a label from the configured list, on that turn's trace.
    turn = scenario.sessions["sess-alpha"][1]
    turn_panel = page.locator(f"article.turn[data-trace='{turn.trace_id}'] .scores-panel")
    form = _open_form(turn_panel)
    form.locator("input[name=name]").fill("outcome")
    labels = form.locator("select.sf-labels")
    expect(labels.locator("option")).to_have_text(["resolved", "escalated"])
    labels.select_option("escalated")
    form.get_by_role("button", name="Save score").click()
    expect(_chips(turn_panel)).to_have_count(1)
    [label] = _scores(server, trace_id=turn.trace_id)
    assert (label["value"], label["data_type"], label["span_id"]) == (
        "escalated",
        "categorical",
        None,
    )
    assert server.get(f"/api/v1/traces/{turn.trace_id}")["scores"]["outcome"]["label"] == (
        "escalated"
    )

    # A refused value is explained beside the form: configure a name after the page
    # loaded (the form still thinks it free), then send a label for it.
    config = {"name": "tone", "data_type": "numeric", "min_value": 0, "max_value": 1}
    assert server.http.put("/api/v1/score-configs/tone", json=config).status_code == 200
    form = _open_form(panel)
    form.locator("input[name=name]").fill("tone")
    form.locator("select[name=data_type]").select_option("categorical")
    form.locator("input.sf-label-text").fill("warm")
    form.get_by_role("button", name="Save score").click()
    expect(form.locator(".form-error")).to_have_text(
        "score 'tone' is configured as numeric, not categorical"
    )
    ui.shot("session-score-error")
    # Chromium logs the refused request on the console: expected here, and only here.
    refused = [e for e in ui.errors if "status of 400" in e]
    assert len(refused) == 1, ui.errors
    ui.errors.remove(refused[0])
    form.get_by_role("button", name="Cancel").click()
    expect(panel.get_by_test_id("score-form")).to_have_count(0)

    # Delete the thumbs up: × asks first, in the chip, and × again keeps it.
    thumbs = _chips(panel).first
    thumbs.get_by_test_id("delete-score").click()
    expect(thumbs.get_by_test_id("delete-score-question")).to_have_text(
        "Delete the score “resolved”?"
    )
    thumbs.get_by_test_id("delete-score").click()
    expect(thumbs.get_by_test_id("delete-score-question")).to_be_hidden()
    assert len(_own_scores(server, "sess-alpha")) == 2
    thumbs.get_by_test_id("delete-score").click()
    ui.shot("session-score-question")
    thumbs.get_by_test_id("delete-score-confirm").click()
    expect(_chips(panel)).to_have_count(1)
    assert [s["name"] for s in _own_scores(server, "sess-alpha")] == ["helpfulness"]

    # Notes: teammates' free text, oldest first, listed by the API alike.
    notes = page.get_by_test_id("notes-panel")
    note_form = notes.get_by_test_id("note-form")
    expect(note_form.locator("input[name=author]")).to_have_value("Rita")
    note_form.locator("textarea").fill("Customer asked twice;\nthe second answer fixed it.")
    note_form.get_by_role("button", name="Add note").click()
    expect(notes.locator(".note")).to_have_count(1)
    note_form = notes.get_by_test_id("note-form")
    # The new form signs with the remembered name by itself (then Sam writes one).
    expect(note_form.locator("input[name=author]")).to_have_value("Rita")
    note_form.locator("input[name=author]").fill("Sam")
    note_form.locator("textarea").fill("Escalation was not needed.")
    note_form.get_by_role("button", name="Add note").click()
    expect(notes.locator(".note")).to_have_count(2)
    listed = server.get("/api/v1/notes", session_id="sess-alpha")["items"]
    assert [(n["author"], n["body"]) for n in listed] == [
        ("Rita", "Customer asked twice;\nthe second answer fixed it."),
        ("Sam", "Escalation was not needed."),
    ]
    expect(notes.locator(".note .note-author")).to_have_text(["Rita", "Sam"])
    # Times show in the browser's zone, as on the rest of the page; the form keeps the
    # last name signed with.
    expect(notes.locator(".note time[data-local]")).to_have_count(2)
    expect(notes.get_by_test_id("note-form").locator("input[name=author]")).to_have_value("Sam")
    ui.shot("session-notes")
    page.emulate_media(color_scheme="dark")
    ui.shot("session-notes-dark")
    page.emulate_media(color_scheme="light")
    first = notes.locator(".note").first
    first.get_by_test_id("delete-note").click()  # asks first
    expect(first.get_by_test_id("delete-note-question")).to_have_text("Delete this note by Rita?")
    ui.shot("session-note-question")
    first.get_by_test_id("delete-note-confirm").click()
    expect(notes.locator(".note")).to_have_count(1)
    assert [n["author"] for n in server.get("/api/v1/notes", session_id="sess-alpha")["items"]] == [
        "Sam"
    ]

    # Everything is still there after a reload, rendered by the server.
    page.reload()
    assert _chip_values(page.locator(".review-card .scores-panel")) == [
        ("helpfulness", "5.0", "ui")
    ]
    expect(page.get_by_test_id("notes-panel").locator(".note")).to_have_count(1)

    # On a phone: chips wrap, and the form fits the screen.
    page.set_viewport_size({"width": 390, "height": 844})
    _open_form(page.get_by_test_id("review").get_by_test_id("scores-panel"))
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    ui.shot("session-scores-phone")
    page.set_viewport_size({"width": 1400, "height": 900})

    # The export carries every score of the session (its own and its turns') and notes.
    with page.expect_download() as info:
        page.get_by_test_id("export").click()
    exported = json.loads(info.value.path().read_text())
    every = _scores(server, session_id="sess-alpha")
    assert {s["trace_id"] for s in every} == {None, turn.trace_id}
    assert sorted(exported["scores"], key=lambda s: s["id"]) == sorted(every, key=lambda s: s["id"])
    assert exported["notes"] == server.get("/api/v1/notes", session_id="sess-alpha")["items"]


def test_score_a_trace_and_a_span(ui: UI, server, scenario: Scenario) -> None:
    _configure(server)
    turn = scenario.sessions["sess-beta"][1]
    page = ui.go(f"/traces/{turn.trace_id}")
    _accept_dialogs(page)
    panel = page.locator(".head .scores-panel")
    form = _open_form(panel)
    form.locator("input[name=name]").fill("correct")
    form.locator("label.thumb.down").click()
    form.locator("textarea[name=comment]").fill("It should have offered a refund later")
    ui.shot("trace-score-form")
    form.get_by_role("button", name="Save score").click()
    expect(_chips(panel)).to_have_count(1)
    expect(_chips(panel).first).to_have_class(re.compile("is-down"))

    # Select the LLM span and score it: the score names the span.
    api = server.get(f"/api/v1/traces/{turn.trace_id}")
    child = next(s for s in api["spans"] if s["parent_span_id"])
    page.locator(".span-row").filter(has_text="generate").click()
    expect(page.get_by_test_id("span-name")).to_have_text("generate")
    span_panel = page.locator(".span-detail .scores-panel")
    expect(span_panel).to_have_attribute("data-span-id", child["span_id"])
    form = _open_form(span_panel)
    form.locator("input[name=name]").fill("helpfulness")
    form.locator("input[type=number]").fill("2")
    form.locator("textarea[name=comment]").fill("Apologised, but offered nothing")
    page.emulate_media(color_scheme="dark")
    ui.shot("span-score-form-dark")
    page.emulate_media(color_scheme="light")
    form.get_by_role("button", name="Save score").click()
    expect(_chips(span_panel)).to_have_count(1)
    ui.shot("trace-scores")
    page.emulate_media(color_scheme="dark")
    ui.shot("trace-scores-dark")
    page.emulate_media(color_scheme="light")

    scores = _scores(server, trace_id=turn.trace_id)
    assert [(s["name"], s["value"], s["span_id"], s["source"]) for s in scores] == [
        ("correct", False, None, "ui"),
        ("helpfulness", 2.0, child["span_id"], "ui"),
    ]
    # Both count for the trace, and the trace panel shows only its own.
    rolled = server.get(f"/api/v1/traces/{turn.trace_id}")["scores"]
    assert rolled["correct"]["average"] == 0.0 and rolled["helpfulness"]["average"] == 2.0
    assert _chip_values(panel) == [("correct", "false", "ui")]

    # A score from elsewhere shows its source and cannot be changed here, only deleted.
    body = {"name": "judge", "value": 0.5, "trace_id": turn.trace_id, "source": "eval"}
    assert server.http.post("/api/v1/scores", json=body).status_code == 200
    page.reload()
    judge = _chips(page.locator(".head .scores-panel")).filter(has_text="judge")
    expect(judge.get_by_test_id("score-source")).to_have_text("evaluator")
    expect(judge.locator(".sc-edit")).to_have_count(0)
    # The selected span (from the URL) shows its score after the reload too.
    expect(_chips(page.locator(".span-detail .scores-panel"))).to_have_count(1)


def _score_through_the_form(page: Page, panel: Locator, name: str, value: str) -> None:
    count = _chips(panel).count()
    form = _open_form(panel)
    form.locator("input[name=name]").fill(name)
    if value in ("good", "bad"):
        form.locator(f"label.thumb.{'up' if value == 'good' else 'down'}").click()
    else:
        form.locator("input[type=number]").fill(value)
    form.get_by_role("button", name="Save score").click()
    expect(_chips(panel)).to_have_count(count + 1)


def _ids(page: Page, row_class: str) -> list[str]:
    return page.locator(f"tr.{row_class}").evaluate_all("rs => rs.map(r => r.dataset.id)")


def _apply(page: Page, **fields: str) -> None:
    for name, value in fields.items():
        page.locator(f"#filters input[name={name}]").fill(value)
    page.locator("#filters button[type=submit]").click()
    page.wait_for_load_state("load")


def test_annotate_then_filter_the_lists_by_score(ui: UI, server, scenario: Scenario) -> None:
    _configure(server)
    config = {"name": "correct", "data_type": "boolean"}
    assert server.http.put("/api/v1/score-configs/correct", json=config).status_code == 200
    alpha_turn = scenario.sessions["sess-alpha"][0]
    beta_turn = scenario.sessions["sess-beta"][1]
    # Annotate through the UI: two sessions and two traces.
    for session_id, value in (("sess-alpha", "5"), ("sess-beta", "2")):
        page = ui.go(f"/sessions/{session_id}")
        _score_through_the_form(
            page, page.get_by_test_id("review").locator(".scores-panel"), "helpfulness", value
        )
    for turn, value in ((alpha_turn, "good"), (beta_turn, "bad")):
        page = ui.go(f"/traces/{turn.trace_id}")
        _score_through_the_form(page, page.locator(".head .scores-panel"), "correct", value)

    # Sessions: filter by the score, from the filter bar; the rows are the API's.
    page = ui.go("/sessions")
    _apply(page, score="helpfulness >= 4")
    assert "score=helpfulness+%3E%3D+4" in page.url
    api = server.get("/api/v1/sessions", score="helpfulness >= 4")["items"]
    assert [s["session_id"] for s in api] == ["sess-alpha"]
    assert _ids(page, "session-row") == [s["session_id"] for s in api]
    cell = page.locator("tr.session-row[data-id=sess-alpha] [data-col='score:helpfulness']")
    expect(cell).to_have_text("5")
    assert (
        float(cell.get_attribute("data-value") or "") == api[0]["scores"]["helpfulness"]["average"]
    )
    # The filter stays in the bar and survives a reload (it is in the URL).
    page.reload()
    expect(page.locator("#filters input[name=score]")).to_have_value("helpfulness >= 4")
    assert _ids(page, "session-row") == ["sess-alpha"]
    ui.shot("sessions-filtered-by-score")

    # Review work: the sessions nobody has scored for helpfulness yet.
    page = ui.go("/sessions")
    _apply(page, missing_score="helpfulness")
    api = server.get("/api/v1/sessions", missing_score="helpfulness")["items"]
    assert [s["session_id"] for s in api] == ["sess-old"]
    assert _ids(page, "session-row") == [s["session_id"] for s in api]

    # Unfiltered, a column per score name, each cell the API's summary.
    page = ui.go("/sessions")
    api = server.get("/api/v1/sessions")["items"]
    heads = page.locator("#sessions-table th.score-col").all_inner_texts()
    # The names present on the page's rows (correct and outcome are on no session).
    assert heads == ["helpfulness"]
    for session in api:
        row = page.locator(f"tr.session-row[data-id='{session['session_id']}']")
        summary = session["scores"].get("helpfulness")
        value = row.locator("[data-col='score:helpfulness']").get_attribute("data-value")
        assert (float(value) if value else None) == (summary and summary["average"])
    ui.shot("sessions-score-columns")
    page.emulate_media(color_scheme="dark")
    ui.shot("sessions-score-columns-dark")
    page.emulate_media(color_scheme="light")

    # Traces: a thumbs filter compares the share of good (true = 1).
    page = ui.go("/traces")
    _apply(page, score="correct = true")
    api = server.get("/api/v1/traces", score="correct = true")["items"]
    assert [t["trace_id"] for t in api] == [alpha_turn.trace_id]
    assert _ids(page, "trace-row") == [t["trace_id"] for t in api]
    # Every score of it good: a thumb, as on the trace page.
    cell = page.locator("tr.trace-row [data-col='score:correct']")
    expect(cell.locator(".thumb-icon.up")).to_have_count(1)
    expect(cell).to_have_attribute("title", "1 score: 100% good")
    # A filter the API refuses is refused here too, with its reason.
    page = ui.go("/traces?score=correct+~+1")
    expect(page.get_by_test_id("error-message")).to_contain_text("is not 'name op value'")
    ui.errors.clear()  # the 400, which Chromium logs
    assert server.http.get("/api/v1/traces", params={"score": "correct ~ 1"}).status_code == 400

    # Users: each user's score averages, as the API has them.
    page = ui.go("/users")
    api = {u["user_id"]: u for u in server.get("/api/v1/users")["items"]}
    for user_id in ("alice", "bob"):
        row = page.locator(f"#users-table tr[data-id={user_id}]")
        for name in ("helpfulness", "correct"):
            value = row.locator(f"[data-col='score:{name}']").get_attribute("data-value")
            assert float(value or "nan") == api[user_id]["scores"][name]["average"]
    ui.shot("users-scores")

    # Users filtered by score, from the same bar: a user's summary merges their sessions'
    # and traces' scores, and the rows are the API's.
    def user_ids(page: Page) -> list[str]:
        return page.locator("#users-table tbody tr").evaluate_all("rs => rs.map(r => r.dataset.id)")

    for fields, expected in (
        ({"score": "helpfulness >= 4"}, ["alice"]),
        ({"score": "correct = bad"}, ["bob"]),
        ({"missing_score": "helpfulness"}, ["carol"]),
    ):
        page = ui.go("/users")
        _apply(page, **fields)
        api_users = server.get("/api/v1/users", **fields)["items"]
        assert [u["user_id"] for u in api_users] == expected
        assert user_ids(page) == expected, fields
        name, value = next(iter(fields.items()))
        expect(page.locator(f"#filters input[name={name}]")).to_have_value(value)
    ui.shot("users-filtered-by-score")
    # A filter the API refuses is refused on the Users tab too.
    page = ui.go("/users?score=helpfulness+%3E%3E+1")
    expect(page.get_by_test_id("error-message")).to_contain_text("helpfulness >> 1")
    ui.errors.clear()
    assert server.http.get("/api/v1/users", params={"score": "helpfulness >> 1"}).status_code == 400


def test_a_live_session_page_keeps_an_open_score_form(ui: UI, server, scenario: Scenario) -> None:
    page = ui.go("/sessions/sess-alpha")
    page.wait_for_function("document.body.classList.contains('live-on')")
    form = _open_form(page.locator("article.turn").first.locator(".scores-panel"))
    form.locator("input[name=name]").fill("half-typed")
    last = scenario.sessions["sess-alpha"][-1]
    turn = Turn(new_trace_id(), "one more thing", "sure", last.end_ns + 5 * S, 100, 1, 1, 0.0)
    send(server, turn_spans(turn, "sess-alpha", "alice"))
    # The new turn waits while the reviewer is typing...
    page.wait_for_timeout(3000)
    expect(form.locator("input[name=name]")).to_have_value("half-typed")
    expect(page.locator("article.turn")).to_have_count(3)
    # ...and shows once the form is closed.
    form.get_by_role("button", name="Cancel").click()
    expect(page.locator("article.turn")).to_have_count(4, timeout=15_000)


def test_a_score_is_deleted_at_a_second_click_without_scripts(
    browser: Browser, server, scenario: Scenario
) -> None:
    """With scripts off, × deleted the score at once (its question was htmx's
    hx-confirm); now it asks in the chip, as every other delete does, and on a phone the
    question stays in the window."""
    response = server.http.post(
        "/api/v1/scores", json={"name": "resolved", "value": False, "session_id": "sess-beta"}
    )
    assert response.status_code in (200, 201), response.text
    phone = {"width": 390, "height": 844}
    context = browser.new_context(viewport=phone, java_script_enabled=False)
    try:
        page = context.new_page()
        page.set_default_timeout(10_000)
        sign_in(page, server.base_url, server.api_key)
        page.goto(server.base_url + "/sessions/sess-beta")
        chip = page.get_by_test_id("review").locator(".score-chip")
        expect(chip).to_have_count(1)
        chip.get_by_test_id("delete-score").click()
        page.wait_for_load_state()
        assert [s["name"] for s in _scores(server, session_id="sess-beta")] == ["resolved"]
        question = chip.get_by_test_id("delete-score-question")
        expect(question).to_have_text("Delete the score “resolved”?")
        confirm = chip.get_by_test_id("delete-score-confirm")
        for shown in (question, confirm):
            box = shown.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= phone["width"]
        assert page.evaluate("document.documentElement.scrollWidth") <= phone["width"]
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "score-delete-without-scripts-phone.png"))
        confirm.click()
        expect(page).to_have_url(re.compile(r"/sessions/sess-beta$"))
        expect(page.get_by_test_id("review").locator(".score-chip")).to_have_count(0)
        assert _scores(server, session_id="sess-beta") == []
    finally:
        context.close()
