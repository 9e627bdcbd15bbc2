"""What a newcomer sees in the first hour: values shown as they filter, previews and
transcripts that show what the user said, a session page that follows the
conversation live, and one way of writing each thing."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.sync_api import Browser, expect

from tests.otlp import SpanSpec, new_trace_id

from .conftest import ARTIFACTS, UI, send, sign_in
from .turns import MS, Turn, turn_spans

S = 1_000_000_000


def test_boolean_metadata_filters_by_the_value_shown(ui: UI, server) -> None:
    turn = Turn(new_trace_id(), "Am I a VIP?", "You are.", 1_790_000_000 * S, 500, 10, 5, 0.001)
    send(server, turn_spans(turn, "s-vip", "vera", metadata={"vip": True, "seats": 3}))
    page = ui.go(f"/traces/{turn.trace_id}")
    chips = page.get_by_test_id("metadata")
    expect(chips.filter(has_text="vip=")).to_have_text("vip=true")
    expect(chips.filter(has_text="seats=")).to_have_text("seats=3")
    # What is shown is what the filter takes, on the Traces and the Sessions tab.
    for tab in ("traces", "sessions"):
        page = ui.go(f"/{tab}?range=all&metadata={quote('vip=true')}")
        expect(page.locator("#live-rows tr[data-id]")).to_have_count(1)
        page = ui.go(f"/{tab}?range=all&metadata={quote('vip=false')}")
        expect(page.get_by_test_id("empty-state")).to_be_visible()


def test_previews_show_each_turns_own_message_under_a_plain_root(ui: UI, server) -> None:
    """OpenInference chat spans under a root that has no input of its own: the chat
    history grows every turn, and each turn's preview is still its own question."""
    base = (time.time_ns() // S - 600) * S
    history: list[tuple[str, str]] = [("system", "You answer questions about orders. " * 20)]
    questions = [f"Question {n}: where is parcel {n}? " + "Details. " * 30 for n in range(1, 8)]
    trace_ids = []
    for n, question in enumerate(questions):
        history.append(("user", question))
        start = base + n * 10 * S
        root = SpanSpec("turn", start, start + S, trace_id=new_trace_id())
        root.attributes = {"session.id": "s-long"}
        llm = SpanSpec("ChatCompletion", start + MS, start + S - MS, trace_id=root.trace_id)
        llm.parent_span_id = root.span_id
        llm.attributes = {"openinference.span.kind": "LLM", "llm.model_name": "gpt-4o-mini"}
        for i, (role, content) in enumerate(history):
            llm.attributes[f"llm.input_messages.{i}.message.role"] = role
            llm.attributes[f"llm.input_messages.{i}.message.content"] = content
        answer = f"Parcel {n + 1} is on its way."
        llm.attributes["llm.output_messages.0.message.role"] = "assistant"
        llm.attributes["llm.output_messages.0.message.content"] = answer
        history.append(("assistant", answer))
        send(server, [root, llm])
        trace_ids.append(root.trace_id)
    for trace_id, question in zip(trace_ids, questions, strict=True):
        trace = server.get(f"/api/v1/traces/{trace_id}")
        assert json.loads(trace["input_preview"]) == [{"role": "user", "content": question}]
    session = server.get("/api/v1/sessions/s-long")
    assert json.loads(session["first_input"]) == [{"role": "user", "content": questions[0]}]
    page = ui.go("/traces?range=all")
    for trace_id, question in zip(trace_ids, questions, strict=True):
        sub = page.locator(f'tr[data-id="{trace_id}"] .sub')
        expect(sub).to_contain_text(question.split("?")[0])
    ui.shot("long-history-previews")


README = Path(__file__).resolve().parents[2] / "README.md"


def _readme_sdk_example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.DOTALL)
    (example,) = [b for b in blocks if "@observe" in b]
    return example


def test_the_readme_sdk_example_gives_a_clean_transcript(ui: UI, server) -> None:
    """The README's own SDK example, run with the real SDK: the user's bubble and the
    First input column show what the user typed, not the function's arguments."""
    example = _readme_sdk_example()
    program = (
        example.replace('"tl_..."', repr(server.api_key))
        .replace('"http://127.0.0.1:8000"', repr(server.base_url))
        .replace("...  # LLM calls, tools", "return f'You said: {user_message}'")
    )
    assert program != example and "return f'You said" in program
    program += (
        "\nfor message in ['Where is my order?', 'Thanks!']:\n"
        "    handle_turn('readme-conv', message)\n"
        "assert Threadline.flush()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    page = ui.go("/sessions?range=all")
    row = page.locator('tr[data-id="readme-conv"]')
    expect(row.locator("td.preview").first).to_have_text("Where is my order?")
    page = ui.go("/sessions/readme-conv")
    said = page.locator(".turn .msg.role-user")
    expect(said).to_have_count(2)
    expect(said.nth(0)).to_have_text(re.compile(r"^\s*user\s*Where is my order\?\s*$"))
    expect(said.nth(1)).to_have_text(re.compile(r"^\s*user\s*Thanks!\s*$"))
    replied = page.locator(".turn .msg.role-assistant")
    expect(replied.nth(0)).to_contain_text("You said: Where is my order?")
    ui.shot("readme-example-transcript")


def test_the_session_page_follows_the_conversation_live(ui: UI, server) -> None:
    base = (time.time_ns() // S - 60) * S
    first = Turn(new_trace_id(), "Is the shop open?", "Until 6 pm.", base, 800, 20, 5, 0.001)
    send(server, turn_spans(first, "s-live", "lou"))
    page = ui.go("/sessions/s-live")
    expect(page.locator("article.turn")).to_have_count(1)
    page.evaluate("window.notReloaded = true")
    second = Turn(new_trace_id(), "And on Sunday?", "Closed.", base + 5 * S, 600, 30, 4, 0.001)
    send(server, turn_spans(second, "s-live", "lou"))
    turns = page.locator("article.turn")
    expect(turns).to_have_count(2, timeout=8000)
    expect(turns.nth(1).locator(".msg.role-user")).to_contain_text("And on Sunday?")
    expect(turns.nth(1).locator(".msg.role-assistant")).to_contain_text("Closed.")
    totals = page.get_by_test_id("session-totals")
    expect(totals.locator('[data-col="trace_count"]')).to_have_attribute("data-value", "2")
    expect(page.locator(".timeline .tl-turn")).to_have_count(2)
    assert page.evaluate("window.notReloaded") is True  # updated in place
    expect(page.locator("body.live-on")).to_have_count(1)  # and says it is live
    ui.shot("session-live")


# One style for every duration: a number, a space, a unit.
DURATION = re.compile(r"^(\d+(\.\d+)? (ms|s)|\d+ min \d\d s|\d+ h \d\d min)$")


def _plain_turns(server, session_id: str, base: int) -> list[str]:
    """Two turns of a session that recorded no tokens: a root with a child span each,
    the first lasting 65 s, the second 75 s after it."""
    trace_ids = []
    for n, (start, seconds, question, answer) in enumerate(
        [(base, 65, "Book a table", "Booked for 8 pm"), (base + 140 * S, 2, "Thanks", "Enjoy!")]
    ):
        root = SpanSpec("handle_turn", start, start + seconds * S, trace_id=new_trace_id())
        root.attributes = {
            "session.id": session_id,
            "threadline.span.input": json.dumps(question),
            "threadline.span.output": json.dumps(answer),
        }
        child = SpanSpec("lookup", start + MS, start + 2 * MS, trace_id=root.trace_id)
        child.parent_span_id = root.span_id
        child.attributes = {"threadline.span.type": "TOOL" if n else "DEFAULT"}
        send(server, [root, child])
        trace_ids.append(root.trace_id)
    return trace_ids


def test_one_way_to_write_each_thing(ui: UI, server) -> None:
    base = (time.time_ns() // S - 600) * S
    trace_ids = _plain_turns(server, "s-plain", base)

    page = ui.go("/sessions?range=all")
    row = page.locator('tr[data-id="s-plain"]')
    # No tokens recorded: "—", as for an unknown cost, never "0 → 0".
    expect(row.locator('[data-col="tokens"]')).to_have_text("—")
    expect(row.locator('[data-col="cost_usd"]')).to_have_text("—")
    # The Sessions table shows the last output beside the first input.
    headers = page.locator("#sessions-table thead th")
    expect(headers.filter(has_text="Last output")).to_have_count(1)
    expect(row.locator("td.preview").nth(0)).to_have_text("Book a table")
    expect(row.locator("td.preview").nth(1)).to_have_text("Enjoy!")

    page = ui.go("/sessions/s-plain")
    assert "0 → 0" not in page.locator("main").inner_text()
    expect(page.get_by_test_id("session-totals").locator('[data-col="tokens"]')).to_have_text("—")
    durations = page.locator('[data-col="duration_ms"]').all_inner_texts()
    durations += page.get_by_test_id("idle-gap").all_inner_texts()
    assert durations and all(DURATION.match(d.removeprefix("idle ")) for d in durations), durations
    assert "1 min 05 s" in durations and "idle 1 min 15 s" in durations

    # The tree and the span's detail name a span's type alike.
    page = ui.go(f"/traces/{trace_ids[0]}")
    rows = page.locator(".span-row")
    for index in range(2):
        rows.nth(index).click()
        span_id = rows.nth(index).get_attribute("data-span")
        expect(page.locator(f'.span-detail[data-span="{span_id}"]')).to_have_count(1)
        label = rows.nth(index).locator(".type").inner_text()
        assert page.locator(".span-detail h2 .type").inner_text() == label
    assert [rows.nth(i).locator(".type").inner_text() for i in range(2)] == ["SPAN", "SPAN"]
    assert "0 → 0" not in page.locator("main").inner_text()
    assert all(DURATION.match(d) for d in page.locator(".sr-dur").all_inner_texts())

    # Export JSON: the session's own fields, and each trace once, in full.
    exported = page.request.get(ui.base_url + "/export/session.json?session_id=s-plain").json()
    assert "traces" not in exported["session"]
    assert [t["trace_id"] for t in exported["traces"]] == trace_ids
    assert json.dumps(exported).count(trace_ids[0]) == 1


def test_the_traces_list_keeps_its_session_column_on_a_phone(
    browser: Browser, server, request: pytest.FixtureRequest
) -> None:
    _plain_turns(server, "s-phone", (time.time_ns() // S - 600) * S)
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        page = context.new_page()
        sign_in(page, server.base_url, server.api_key)
        page.goto(server.base_url + "/traces?range=all")
        expect(page.locator("#traces-table thead th", has_text="Session")).to_be_visible()
        expect(page.locator("#live-rows a", has_text="s-phone").first).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}-traces-390.png"))
    finally:
        context.close()


def test_dark_mode_follows_the_system_setting(
    browser: Browser, server, request: pytest.FixtureRequest
) -> None:
    trace_ids = _plain_turns(server, "s-dark", (time.time_ns() // S - 600) * S)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for scheme in ("light", "dark"):
        context = browser.new_context(viewport={"width": 1200, "height": 800}, color_scheme=scheme)
        try:
            page = context.new_page()
            sign_in(page, server.base_url, server.api_key)
            for name, path in (
                ("session", "/sessions/s-dark"),
                ("trace", f"/traces/{trace_ids[0]}"),
            ):
                page.goto(server.base_url + path)
                background = page.evaluate("getComputedStyle(document.body).backgroundColor")
                text = page.evaluate("getComputedStyle(document.body).color")
                assert (
                    _luminance(background) < 0.1
                    if scheme == "dark"
                    else _luminance(background) > 0.9
                )
                assert abs(_luminance(background) - _luminance(text)) > 0.6  # readable
                page.screenshot(path=str(ARTIFACTS / f"{request.node.name}-{name}-{scheme}.png"))
        finally:
            context.close()


def _luminance(css_color: str) -> float:
    red, green, blue = (int(v) / 255 for v in re.findall(r"\d+", css_color)[:3])
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def test_a_new_project_shows_its_commands_and_search_snippets_read_as_text(ui: UI, server) -> None:
    # The first page of a new project: the commands to send a first trace, a line each.
    page = ui.go("/sessions")
    sample = page.get_by_test_id("empty-state").locator("pre")
    assert sample.evaluate("e => getComputedStyle(e).whiteSpace") == "pre"
    lines = sample.inner_text().splitlines()
    assert "threadline demo --base-url" in lines[1] and len(lines) >= 10, lines
    expect(page.get_by_test_id("number-filter")).to_have_attribute("placeholder", "turns >= 3")
    page = ui.go("/traces")
    expect(page.get_by_test_id("number-filter")).to_have_attribute("placeholder", "duration > 2")

    # A searched word found in a session with a score column, on a laptop's width: the
    # snippet is muted text under the session id, in a cell wide enough to read.
    base = (time.time_ns() // S - 600) * S
    turn = Turn(new_trace_id(), "Do you ship to Osaka today?", "We do.", base, 800, 900, 200, 0.01)
    send(server, turn_spans(turn, "s-snippet-with-a-long-id", "wanjiru"))
    score = {"name": "resolved", "value": True, "session_id": "s-snippet-with-a-long-id"}
    assert server.http.post("/api/v1/scores", json=score).status_code in (200, 201)
    page.set_viewport_size({"width": 1100, "height": 800})
    page = ui.go("/sessions?range=all&q=osaka")
    snippet = page.get_by_test_id("snippet")
    expect(snippet.locator("mark")).to_have_text("Osaka")
    background = snippet.evaluate("e => getComputedStyle(e).backgroundColor")
    assert background == "rgba(0, 0, 0, 0)", background
    cell = page.locator('tr[data-id="s-snippet-with-a-long-id"] td.has-snippet')
    box = cell.bounding_box()
    assert box and box["width"] >= 150, box
    ui.shot("snippet")


def test_a_phone_reaches_every_page_and_the_dashboard_fits(
    browser: Browser, server, request: pytest.FixtureRequest
) -> None:
    # Sessions over an hour long: the dashboard's per-session durations are wide.
    base = (time.time_ns() // S - 2 * 3600) * S
    for n in range(3):
        first = Turn(new_trace_id(), "Hello", "Hi!", base + n * S, 900, 1200, 300, 0.0159)
        last = Turn(new_trace_id(), "Bye", "Bye!", base + (3725 + n) * S, 900, 1200, 300, 0.0159)
        send(
            server,
            turn_spans(first, f"s-long-{n}", "kenji") + turn_spans(last, f"s-long-{n}", "kenji"),
        )
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        page = context.new_page()
        sign_in(page, server.base_url, server.api_key)
        for link in ("Evaluators", "Settings", "Tracing"):
            expect(page.locator(".topnav a", has_text=link)).to_be_visible()
        page.locator(".topnav a", has_text="Settings").click()
        page.wait_for_url(re.compile(r".*/settings$"))
        page.goto(server.base_url + "/dashboard")
        expect(page.get_by_test_id("distributions")).to_contain_text("1 h 02 min")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, width
        page.screenshot(
            path=str(ARTIFACTS / f"{request.node.name}-dashboard-390.png"), full_page=True
        )
    finally:
        context.close()


def test_a_model_has_one_colour_in_the_cost_and_the_tokens_charts(ui: UI, server) -> None:
    """The charts sort their models by their own figure: the dear model with few tokens
    comes first by cost and last by tokens, and keeps its colour in both."""
    base = (time.time_ns() // S - 600) * S
    for n, (model, tokens, cost) in enumerate(
        [
            ("gpt-4o", 100, 0.05),
            ("gpt-4o-mini", 5000, 0.001),
            ("claude-3-5-haiku-latest", 2000, 0.01),
        ]
    ):
        turn = Turn(new_trace_id(), "Hi", "Hello", base + n * S, 500, tokens, 10, cost)
        spans = turn_spans(turn, f"s-model-{n}", "ana")
        spans[1].attributes["gen_ai.request.model"] = model
        send(server, spans)
    page = ui.go("/dashboard")

    def colours(chart: str) -> dict[str, str]:
        items = page.locator(f'[data-chart="{chart}"] .legend li')
        return {
            items.nth(i).inner_text(): items.nth(i)
            .locator(".swatch")
            .evaluate("e => getComputedStyle(e).backgroundColor")
            for i in range(items.count())
        }

    by_cost, by_tokens = colours("cost_by_model"), colours("tokens_by_model")
    assert list(by_cost) == ["gpt-4o", "claude-3-5-haiku-latest", "gpt-4o-mini"]
    assert list(by_tokens) == ["gpt-4o-mini", "claude-3-5-haiku-latest", "gpt-4o"]
    assert by_cost == by_tokens and len(set(by_cost.values())) == 3, (by_cost, by_tokens)


def test_a_shared_session_writes_things_as_the_session_page_does(
    ui: UI, server, browser: Browser
) -> None:
    _plain_turns(server, "s-shared", (time.time_ns() // S - 600) * S)
    made = server.http.post(
        "/api/v1/shares", json={"kind": "session", "target_id": "s-shared"}
    ).json()
    context = browser.new_context(viewport={"width": 390, "height": 844})
    try:
        page = context.new_page()
        page.goto(server.base_url + made["path"])
        expect(page.locator('[data-col="tokens"]')).to_have_text("—")
        assert "0 → 0" not in page.locator("main").inner_text()
    finally:
        context.close()
    # The project's links: a table like the lists', the new link within a phone's width.
    page = ui.go("/sessions/s-shared")
    page.get_by_test_id("share-menu").locator("summary").click()
    page.get_by_test_id("share-create").click()
    expect(page.get_by_test_id("link-url")).to_have_value(re.compile(r"/shared/"))
    expect(page.get_by_test_id("links")).to_have_class("grid")
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    ui.shot("shares-phone")


def test_the_context_chart_shows_a_conversation_far_from_its_limit(ui: UI, server) -> None:
    """Three turns filling well under 1 % of gpt-4o-mini's 128,000 tokens: the scale's top
    is 1 %, so the bars show the growth (on a scale to the full window they were under
    a pixel), and there is no full window's line to draw."""
    base = (time.time_ns() // S - 600) * S
    for n, tokens in enumerate([300, 450, 600]):
        turn = Turn(
            new_trace_id(), f"Question {n}", "Answer", base + n * 10 * S, 500, tokens, 20, 0.001
        )
        send(server, turn_spans(turn, "s-small-context", "ana"))
    page = ui.go("/sessions/s-small-context")
    chart = page.get_by_test_id("context-growth")
    expect(chart.get_by_test_id("context-scale")).to_have_text("1%")
    expect(chart.locator("line.ctx-full")).to_have_count(0)
    heights = [float(b.get_attribute("height") or 0) for b in chart.locator("rect.ctx-input").all()]
    assert heights == sorted(heights) and heights[-1] > 50, heights  # of a 130-unit plot
    # The Sessions list's Peak context says as much (it said "0%"), as the table does.
    page = ui.go("/sessions")
    peak = page.locator('tr[data-id="s-small-context"] [data-col="peak_context_use"]')
    expect(peak).to_have_text("0.5%")


def test_deleting_a_one_turn_session_asks_about_one_trace(ui: UI, server) -> None:
    turn = Turn(new_trace_id(), "Hi", "Hello", (time.time_ns() // S - 600) * S, 500, 10, 5, 0.001)
    send(server, turn_spans(turn, "s-one-turn", "ana"))
    page = ui.go("/sessions/s-one-turn")
    page.get_by_test_id("delete").click()
    expect(page.get_by_test_id("delete-question")).to_contain_text("with its 1 trace, their spans")
    expect(page).to_have_url(re.compile(r"/sessions/s-one-turn$"))


def test_this_years_times_leave_the_year_out(ui: UI, server) -> None:
    now = (time.time_ns() // S - 600) * S
    old = 1_685_620_800 * S  # 2023-06-01
    for session_id, start in (("s-this-year", now), ("s-2023", old)):
        turn = Turn(new_trace_id(), "Hi", "Hello", start, 500, 10, 5, 0.001)
        send(server, turn_spans(turn, session_id, "ana"))
    page = ui.go("/sessions?range=all")
    year = str(page.evaluate("new Date().getFullYear()"))
    recent = page.locator('tr[data-id="s-this-year"] time').first
    expect(recent).to_have_attribute("data-local", "1")
    assert year not in recent.inner_text() and recent.get_attribute("title", timeout=1000)
    expect(page.locator('tr[data-id="s-2023"] time').first).to_contain_text("2023")


def test_a_boolean_score_nobody_configured_reads_as_a_thumb_in_the_lists(ui: UI, server) -> None:
    """As on the session page: a rollup keeps no type, the name has no configuration,
    so the list takes the type its scores were written with."""
    start = (time.time_ns() // S - 600) * S
    turns = {}
    for i, sid in enumerate(("s-thumb-up", "s-thumb-half")):
        turns[sid] = Turn(new_trace_id(), f"Question {i}", "Answer", start + i * S, 500, 10, 5, 0.0)
        send(server, turn_spans(turns[sid], sid, "tess"))
    scores = [
        ("s-thumb-up", None, True),
        ("s-thumb-half", None, True),
        ("s-thumb-half", None, False),
        (None, turns["s-thumb-up"].trace_id, False),
    ]
    for sid, trace_id, value in scores:
        body = {"name": "solved", "value": value, "session_id": sid, "trace_id": trace_id}
        assert server.http.post("/api/v1/scores", json=body).status_code == 200
    # A number of 1 on a name nobody configured stays a number.
    body = {"name": "turns_used", "value": 1, "session_id": "s-thumb-up"}
    assert server.http.post("/api/v1/scores", json=body).status_code == 200

    page = ui.go("/sessions?range=all")
    up = page.locator("tr.session-row[data-id=s-thumb-up] [data-col='score:solved']")
    expect(up.locator(".thumb-icon.up")).to_have_count(1)
    expect(up).to_have_attribute("title", "1 score: 100% good")
    half = page.locator("tr.session-row[data-id=s-thumb-half] [data-col='score:solved']")
    expect(half).to_have_text("50% good")
    used = page.locator("tr.session-row[data-id=s-thumb-up] [data-col='score:turns_used']")
    expect(used).to_have_text("1")
    # Live mode's rows are typed as the page's.
    stream = page.locator("#live").get_attribute("data-stream") or ""
    assert "column=solved&type=boolean" in stream, stream
    page = ui.go("/traces?range=all")
    down = page.locator(f"tr.trace-row[data-id='{turns['s-thumb-up'].trace_id}']")
    expect(down.locator("[data-col='score:solved'] .thumb-icon.down")).to_have_count(1)


def test_a_new_evaluator_needs_only_a_name_and_its_judge(ui: UI, server) -> None:
    """The blank form holds working values where there are some, and its examples
    read as examples: a newcomer is not sent back by "Please fill out this field"."""
    page = ui.go("/evaluators")
    form = page.get_by_test_id("evaluator-form")
    for field in form.locator("input[placeholder], textarea[placeholder]").all():
        if not field.input_value():
            placeholder = field.get_attribute("placeholder") or ""
            assert placeholder.startswith(("e.g.", "empty:", "an ", "any ", "1")), placeholder
    expect(form.locator("input[name=model]")).to_have_value("gpt-4o-mini")
    # A good/bad score has no range and no labels: those fields show for their type.
    for field, shown_for in (("min_value", "numeric"), ("labels", "categorical")):
        expect(form.locator(f"input[name={field}]")).to_be_hidden()
        form.locator("select[name=score_type]").select_option(shown_for)
        expect(form.locator(f"input[name={field}]")).to_be_visible()
        form.locator("select[name=score_type]").select_option("boolean")
    form.locator("select[name=score_type]").select_option("numeric")
    form.locator("input[name=min_value]").fill("1")  # then left hidden: not sent
    form.locator("select[name=score_type]").select_option("boolean")
    expect(form.locator("textarea[name=prompt]")).to_contain_text("{{transcript}}")
    form.locator("input[name=name]").fill("resolved")
    form.locator("input[name=base_url]").fill("http://127.0.0.1:9/v1")
    form.get_by_role("button", name="Create evaluator").click()
    expect(page.locator("tr[data-evaluator=resolved]")).to_be_visible()
    made = server.get("/api/v1/evaluators/resolved")
    assert made["judge"]["model"] == "gpt-4o-mini" and made["score"]["data_type"] == "boolean"
    assert "{{transcript}}" in made["prompt"] and made["online"] is True
    # On a phone the table scrolls in its card, each cell on one line (squeezed into
    # the page, it wrapped every word a letter a line).
    ui.page.set_viewport_size({"width": 390, "height": 844})
    page = ui.go("/evaluators")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    name = page.locator("tr[data-evaluator=resolved] td").first
    assert (name.bounding_box() or {"height": 999})["height"] < 40


def test_a_laptop_shows_the_sessions_inputs_and_outputs_beside_two_score_columns(
    ui: UI, server
) -> None:
    start = (time.time_ns() // S - 600) * S
    question = "Could you tell me where my order is? " * 6
    answer = "It left our warehouse this morning and should arrive by Friday. " * 4
    turn = Turn(new_trace_id(), question, answer, start, 65_000, 12_345, 678, 0.0123)
    send(server, turn_spans(turn, "s-laptop-width", "maximilian"))
    for body in (
        {"name": "helpfulness", "value": 4, "session_id": "s-laptop-width"},
        {"name": "resolved", "value": True, "session_id": "s-laptop-width"},
    ):
        assert server.http.post("/api/v1/scores", json=body).status_code == 200
    for width, height in ((1366, 768), (390, 844)):
        ui.page.set_viewport_size({"width": width, "height": height})
        page = ui.go("/sessions?range=all")
        expect(page.locator("#sessions-table th.score-col")).to_have_count(2)
        # No part of the page, hidden text included, reaches past the screen's width.
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        if width == 1366:
            wrap = page.locator(".table-wrap")
            assert wrap.evaluate("w => w.scrollWidth <= w.clientWidth"), "the table scrolls"
            last = page.locator("#sessions-table th", has_text="Last output")
            assert last.evaluate("th => th.getBoundingClientRect().right") <= width
    ui.shot("laptop")


def test_the_dashboard_shows_a_score_whose_average_is_zero(ui: UI, server) -> None:
    """Every session judged "not resolved" is a figure, not "Nothing in this range"."""
    start = (time.time_ns() // S - 600) * S
    for i in range(2):
        turn = Turn(new_trace_id(), "Refund me", "No.", start + i * S, 500, 10, 5, 0.001)
        send(server, turn_spans(turn, f"s-unresolved-{i}", "uma"))
        body = {"name": "was_resolved", "value": False, "trace_id": turn.trace_id}
        assert server.http.post("/api/v1/scores", json=body).status_code == 200
    page = ui.go("/dashboard")
    chart = page.locator('[data-chart="score-was_resolved"]')
    expect(chart).to_be_visible()
    expect(chart).not_to_contain_text("Nothing in this range")
    bar = chart.locator("rect[data-value]")
    expect(bar).to_have_count(1)
    assert float(bar.get_attribute("height") or 0) > 0
    # Typed by its latest score (no configuration): a good/bad score, its share of good.
    expect(bar.locator("title")).to_contain_text(": 0%")


def test_the_users_list_keeps_short_user_ids_whole_on_a_phone(
    browser: Browser, server, request: pytest.FixtureRequest
) -> None:
    base = (time.time_ns() // S - 600) * S
    users = ("louis", "kadri", "matías", "wanjiru", "ana")
    for n, user in enumerate(users):
        turn = Turn(new_trace_id(), "Hello", "Hi!", base + n * S, 900, 1200, 300, 0.0159)
        send(server, turn_spans(turn, f"s-user-{n}", user))
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        page = context.new_page()
        sign_in(page, server.base_url, server.api_key)
        page.goto(server.base_url + "/users")
        links = page.locator("#users-table tbody td:first-child a")
        expect(links).to_have_count(len(users))
        # An inline link cut over two lines has two boxes.
        lines = links.evaluate_all("as => as.map(a => [a.textContent, a.getClientRects().length])")
        assert sorted(lines) == sorted([user, 1] for user in users), lines
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}-users-390.png"))
    finally:
        context.close()


def test_the_top_bar_names_the_lists_area_apart_from_its_tabs(ui: UI, server) -> None:
    """The top bar's item for Traces | Sessions | Users | Dashboard is lit on each of
    them, so it must not read as one of them (it said "Traces" on the Sessions page)."""
    turn = Turn(new_trace_id(), "Hello", "Hi!", (time.time_ns() // S - 600) * S, 900, 5, 2, 0.001)
    send(server, turn_spans(turn, "s-nav", "nina"))
    tabs = ("Traces", "Sessions", "Users", "Dashboard")
    for path, tab in (
        ("/sessions", "Sessions"),
        ("/traces", "Traces"),
        ("/users", "Users"),
        ("/dashboard", "Dashboard"),
    ):
        page = ui.go(path)
        lit = page.locator(".topnav a.on")
        expect(lit).to_have_count(1)
        expect(lit).to_have_text("Tracing")
        assert lit.inner_text().strip() not in tabs
        expect(page.locator(".tabs a.on")).to_have_text(tab)
    for path in ("/sessions/s-nav", f"/traces/{turn.trace_id}"):
        expect(ui.go(path).locator(".topnav a.on")).to_have_text("Tracing")
    expect(ui.go("/evaluators").locator(".topnav a.on")).to_have_text("Evaluators")
    page.locator(".topnav a", has_text="Tracing").click()
    page.wait_for_url(re.compile(r".*/sessions$"))
    ui.shot("sessions")


def test_a_project_whose_traces_are_older_than_the_window_says_so(ui: UI, server) -> None:
    """Back after a pause: the lists' last 7 days are empty, but the project has traces.
    The page says they are older and links to all time, not "No sessions yet" and how to
    send a first trace."""
    page = ui.go("/sessions")  # a new project: the first-trace help
    expect(page.get_by_test_id("empty-state")).to_contain_text("No sessions yet")
    old = (time.time_ns() // S - 20 * 86400) * S  # twenty days ago
    turn = Turn(new_trace_id(), "Still there?", "Yes.", old, 700, 30, 5, 0.001)
    send(server, turn_spans(turn, "s-twenty-days-ago", "olga"))
    for tab in ("sessions", "traces", "users"):
        page = ui.go(f"/{tab}")
        empty = page.get_by_test_id("empty-state")
        expect(empty).to_contain_text(f"No {tab} in the last 7 days")
        expect(empty.locator("pre")).to_have_count(0)  # no first-trace help
        empty.get_by_test_id("all-time").click()
        page.wait_for_url(re.compile(rf".*/{tab}\?range=all$"))
        expect(page.locator("#live-rows tr[data-id], table tbody tr").first).to_contain_text(
            "olga" if tab == "users" else "s-twenty-days-ago"
        )
    ui.shot("older")


def test_a_new_projects_dashboard_shows_how_to_send_a_first_trace(ui: UI, server) -> None:
    page = ui.go("/dashboard")
    empty = page.get_by_test_id("empty-state")
    expect(empty).to_contain_text("No traces yet")
    expect(empty.locator("pre")).to_contain_text("threadline demo --base-url")
    expect(page.locator("[data-chart]")).to_have_count(0)  # no empty charts
    ui.shot("new-dashboard")
    turn = Turn(new_trace_id(), "Hi", "Hello!", (time.time_ns() // S - 600) * S, 500, 5, 2, 0.001)
    send(server, turn_spans(turn, "s-first", "ivo"))
    page = ui.go("/dashboard")
    expect(page.get_by_test_id("empty-state")).to_have_count(0)
    expect(page.locator('[data-chart="sessions"]')).to_have_count(1)


def test_the_dashboard_writes_a_score_average_as_the_api_does(ui: UI, server) -> None:
    """0.1, 0.2 and a client's 0.30000000000000004 average 0.2 on the bar, as in
    ``/api/v1/metrics``, not 0.20000000000000004."""
    start = (time.time_ns() // S - 600) * S
    for i, value in enumerate((0.1, 0.2, 0.1 + 0.2)):
        turn = Turn(new_trace_id(), "Rate me", "Done.", start + i * S, 500, 10, 5, 0.001)
        send(server, turn_spans(turn, f"s-rated-{i}", "rita"))
        body = {"name": "tone", "value": value, "trace_id": turn.trace_id}
        assert server.http.post("/api/v1/scores", json=body).status_code == 200
    api = server.get("/api/v1/metrics", window="24h", bucket="hour", metric="traces")
    (series,) = [s for s in api["series"] if s["metric"] == "score:tone"]
    assert [v for v in series["values"] if v is not None] == [0.2]
    page = ui.go("/dashboard?range=24h&bucket=hour")
    bar = page.locator('[data-chart="score-tone"] rect[data-value]')
    expect(bar).to_have_count(1)
    assert bar.get_attribute("data-value") == "0.2"
