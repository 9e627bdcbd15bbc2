"""What a newcomer reads, in Chromium on a laptop and a phone: settings said in words
inside sentences, every select showing its whole choice, no word of a form or a table
broken across lines."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.integrations.fake_judge import FakeJudge
from tests.otlp import new_trace_id
from threadline.server.web.charts import Series, bar_chart
from threadline.server.web.present import cost_axis, duration_in_words, percent_axis

from .conftest import ARTIFACTS, UI, Scenario, send
from .turns import Turn, turn_spans

S = 1_000_000_000
LAPTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}

# Each word of each text node under the element (up to a hyphen: a line may end after
# one), as its line boxes: a word split over two lines has two tops (``overflow-wrap:
# anywhere`` on the body allows it, for long ids).
BROKEN_WORDS = """(root, pattern) => {
  const broken = [];
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (!node.parentElement.checkVisibility()) continue;
    for (const word of node.data.matchAll(new RegExp(pattern, 'g'))) {
      const range = document.createRange();
      range.setStart(node, word.index);
      range.setEnd(node, word.index + word[0].length);
      const tops = new Set([...range.getClientRects()].filter(r => r.width > 0)
                                                      .map(r => Math.round(r.top)));
      if (tops.size > 1) broken.push(word[0]);
    }
  }
  return broken;
}"""

# The width a select needs to show its chosen option whole: a copy holding only that
# option, laid out at its natural width beside it (same font, padding and arrow).
SELECT_SHORTFALL = """select => {
  const copy = select.cloneNode(false);
  copy.removeAttribute('name');
  copy.style.cssText = 'position: absolute; visibility: hidden; width: auto; max-width: none';
  const option = document.createElement('option');
  option.text = select.selectedOptions[0].text;
  copy.append(option);
  select.parentElement.append(copy);
  const needed = copy.getBoundingClientRect().width;
  copy.remove();
  return needed - select.getBoundingClientRect().width;
}"""

# The lines a label's own words (its text, not its fields) are laid out on.
LINES_OF_OWN_TEXT = """label => {
  const tops = new Set();
  for (const node of label.childNodes) {
    if (node.nodeType !== Node.TEXT_NODE || !node.data.trim()) continue;
    const range = document.createRange();
    range.selectNodeContents(node);
    for (const r of range.getClientRects()) if (r.width > 0) tops.add(Math.round(r.bottom));
  }
  return tops.size;
}"""


def _at(ui: UI, viewport: dict[str, int]) -> Page:
    ui.page.set_viewport_size(viewport)
    return ui.page


def test_a_setting_inside_a_sentence_is_said_in_words() -> None:
    assert duration_in_words(600) == "10 minutes"
    assert duration_in_words(90) == "1 minute 30 seconds"
    assert duration_in_words(60) == "1 minute"
    assert duration_in_words(1) == "1 second"
    assert duration_in_words(7200) == "2 hours"
    assert duration_in_words(86_400 + 3600) == "1 day 1 hour"
    assert duration_in_words(0) == "0 seconds"


def test_a_cost_axis_writes_its_ticks_alike() -> None:
    assert [cost_axis(1.0)(v) for v in (0, 0.5, 1.0)] == ["$0", "$0.50", "$1.00"]
    assert [cost_axis(0.025)(v) for v in (0, 0.0125, 0.025)] == ["$0", "$0.0125", "$0.0250"]
    assert [cost_axis(5e-05)(v) for v in (2.5e-05, 5e-05)] == ["$0.000025", "$0.000050"]
    assert [cost_axis(2000.0)(v) for v in (1000.0, 2000.0)] == ["$1,000.00", "$2,000.00"]


def test_the_dashboard_of_a_cheap_first_trace_has_a_cost_axis_that_reads(ui: UI, server) -> None:
    """One trace of $0.00003, a first try with a small model: the axis said "<$0.0001"
    at its middle and at its top."""
    turn = Turn(new_trace_id(), "Hi", "Hello!", (time.time_ns() // S - 60) * S, 300, 12, 3, 3e-05)
    send(server, turn_spans(turn, "s-cheap", "una"))
    page = ui.go("/dashboard")
    for chart in ("cost", "cost_by_model"):
        axis = page.locator(f"[data-chart={chart}] text.axis")
        ticks = axis.evaluate_all("ts => ts.map(t => t.textContent)")  # SVG: no innerText
        assert ticks[:3] == ["$0", "$0.000025", "$0.000050"], (chart, ticks)
        # Whole, inside the chart: the plot starts where the longest label ends.
        inside = (
            "t => t.getBoundingClientRect().left >= t.ownerSVGElement.getBoundingClientRect().left"
        )
        assert axis.evaluate_all(f"ts => ts.every({inside})"), chart
    ui.shot("laptop")


def test_a_percent_axis_writes_its_ticks_alike() -> None:
    assert [percent_axis(0.1)(v) for v in (0, 0.05, 0.1)] == ["0%", "5%", "10%"]
    assert [percent_axis(0.25)(v) for v in (0, 0.125, 0.25)] == ["0%", "12.5%", "25.0%"]
    assert [percent_axis(1.0)(v) for v in (0.5, 1.0)] == ["50%", "100%"]
    assert [percent_axis(0.001)(v) for v in (0.0005, 0.001)] == ["0.05%", "0.10%"]


def test_the_dashboard_writes_a_rates_axis_alike(ui: UI, server) -> None:
    """One trace in ten failed: the rate's axis read "0%", "5.0%", "10%"."""
    start = (time.time_ns() // S - 600) * S
    spans = []
    for i in range(10):
        error = "timeout" if i == 0 else None
        turn = Turn(new_trace_id(), "Hi", "Hello!", start + i * S, 300, 12, 3, 0.001, error)
        spans += turn_spans(turn, f"s-rate-{i}", "una")
    send(server, spans)
    page = ui.go("/dashboard")
    for chart in ("trace_error_rate", "session_error_rate"):
        axis = page.locator(f"[data-chart={chart}] text.axis")
        ticks = axis.evaluate_all("ts => ts.map(t => t.textContent)")  # SVG: no innerText
        assert ticks[:3] == ["0%", "5%", "10%"], (chart, ticks)
    ui.shot("laptop")


def test_a_count_axis_has_whole_ticks() -> None:
    def ticks(top: float) -> list[str]:
        chart = bar_chart(
            "sessions",
            "Sessions",
            [datetime(2026, 1, 1, tzinfo=UTC)],
            [Series(None, [top])],
            stacked=True,
            fmt=str,
            bucket_label=str,
            href=lambda bucket, group: "",
            grouped=False,
            counts=True,
        )
        return [t.label for t in chart.y_ticks]

    assert ticks(1) == ["0.0", "1.0", "2.0"]
    assert ticks(3) == ["0.0", "2.0", "4.0"]
    assert ticks(5) == ["0.0", "3.0", "6.0"]
    assert ticks(21) == ["0.0", "15.0", "30.0"]
    assert ticks(25) == ["0.0", "15.0", "30.0"]
    assert ticks(2_400) == ["0.0", "1500.0", "3000.0"]


def test_the_dashboard_counts_in_whole_ticks(ui: UI, server) -> None:
    """Three sessions of one user, one with an error: the axes read "0, 2.5, 5" sessions
    and "0, 0.5, 1" users."""
    start = (time.time_ns() // S - 600) * S
    spans = []
    for i in range(3):
        error = "timeout" if i == 0 else None
        turn = Turn(new_trace_id(), "Hi", "Hello!", start + i * S, 300, 12, 3, 0.001, error)
        spans += turn_spans(turn, f"s-count-{i}", "una")
    send(server, spans)
    page = ui.go("/dashboard")
    expected = {
        "sessions": ["0", "2", "4"],
        "traces": ["0", "2", "4"],
        "active_users": ["0", "1", "2"],
        "error_sessions": ["0", "1", "2"],
        "tokens": ["0", "25", "50"],
        "tokens_by_model": ["0", "25", "50"],
    }
    for chart, wanted in expected.items():
        axis = page.locator(f"[data-chart={chart}] text.axis")
        ticks = axis.evaluate_all("ts => ts.map(t => t.textContent)")  # SVG: no innerText
        assert ticks[:3] == wanted, (chart, ticks)
    ui.shot("laptop")


def test_the_settings_heading_is_spaced_as_the_other_pages_are(ui: UI) -> None:
    """ "Settings" sat right on "Retention", where the Evaluators page leaves room."""
    gap = "h => h.parentElement.nextElementSibling.getBoundingClientRect().top"
    gap += " - h.getBoundingClientRect().bottom"
    page = ui.go("/evaluators")
    expected = page.locator("h1").evaluate(gap)
    page = ui.go("/settings")
    assert abs(page.locator("h1").evaluate(gap) - expected) <= 1, expected
    ui.shot("laptop")


def test_the_evaluators_page_says_the_idle_time_as_a_sentence_does(ui: UI) -> None:
    page = ui.go("/evaluators")
    main = page.locator("main")
    expect(main).to_contain_text("once it has been idle for 10 minutes;")
    expect(page.get_by_test_id("evaluators-help")).to_contain_text("no new trace for 10 minutes;")
    assert "min 00 s" not in (main.text_content() or "")


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_every_select_of_the_new_evaluator_form_shows_its_whole_choice(
    ui: UI, viewport: dict[str, int]
) -> None:
    page = _at(ui, viewport)
    ui.go("/evaluators")
    form = page.locator("form.evaluator-form")
    selects = form.locator("select")
    assert selects.count() >= 3  # Judges, Score type, Also judge sessions that ended
    cut: list[tuple[str, str, float]] = []
    for n in range(selects.count()):
        select = selects.nth(n)
        for value in select.locator("option").evaluate_all("os => os.map(o => o.value)"):
            select.select_option(value)
            shortfall = select.evaluate(SELECT_SHORTFALL)
            if shortfall > 0.5:
                cut.append((select.get_attribute("name") or "", value, shortfall))
    ui.shot(f"form-{viewport['width']}")
    assert not cut, f"cut off (name, option, px short): {cut}"
    assert not _broken_words(form)


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_the_share_form_breaks_no_word_and_stays_in_the_window(
    ui: UI, scenario: Scenario, viewport: dict[str, int]
) -> None:
    page = _at(ui, viewport)
    ui.go("/sessions/sess-alpha")
    page.get_by_test_id("share-menu").locator("summary").click()
    form = page.get_by_test_id("share-form")
    expect(form).to_be_visible()
    ui.shot(f"share-{viewport['width']}")
    assert not _broken_words(form)
    box: Any = form.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"], box
    # Each field's words on one line ("Expires after [7] days"), not one word a line.
    for label in form.locator("label").all():
        lines = label.evaluate(LINES_OF_OWN_TEXT)
        assert lines == 1, (label.inner_text(), lines)


def test_the_context_table_on_a_phone_scrolls_rather_than_break_its_words(
    ui: UI, scenario: Scenario
) -> None:
    page = _at(ui, PHONE)
    ui.go("/sessions/sess-alpha")
    table = page.get_by_test_id("context-turns")
    expect(table.locator("tbody tr")).to_have_count(3)
    ui.shot("phone")
    assert not _broken_words(table)  # "Window", "128,000", "gpt-4o-mini" whole
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_a_shared_sessions_banner_says_all_it_says_on_a_phone(
    ui: UI, browser: Browser, scenario: Scenario
) -> None:
    page = ui.go("/sessions/sess-alpha")
    page.get_by_test_id("share-menu").locator("summary").click()
    page.get_by_test_id("share-create").click()
    url = page.get_by_test_id("link-url").input_value()
    stranger = browser.new_context(viewport=PHONE)
    try:
        shared = stranger.new_page()
        shared.goto(url)
        banner = shared.get_by_test_id("shared-banner")
        expect(banner).to_contain_text("read-only · link expires")
        shared.screenshot(path=str(ARTIFACTS / f"{ui.test_name}-phone.png"), full_page=True)
        # Nothing of it clipped behind an ellipsis: the reader sees until when.
        assert banner.evaluate("b => b.scrollWidth <= b.clientWidth")
        assert not _broken_words(banner)
    finally:
        stranger.close()


def test_a_phone_breaks_no_user_id_or_shared_session_id_and_keeps_each_box(
    ui: UI, scenario: Scenario
) -> None:
    page = ui.go("/sessions/sess-alpha")
    page.get_by_test_id("share-menu").locator("summary").click()
    page.get_by_test_id("share-create").click()
    expect(page.get_by_test_id("new-link")).to_be_visible()
    _at(ui, PHONE)
    ui.go("/traces?range=all")
    users = page.locator("#live-rows td:has(> a[href*='user_id='])")
    expect(users.first).to_be_visible()
    assert not [w for n in range(users.count()) for w in _broken_words(users.nth(n))]
    failed = page.locator("#live-rows .badge.err")
    expect(failed).to_have_count(1)  # sess-beta's second turn
    assert not _broken_words(failed)  # "error", not "erro" / "r"
    ui.go("/shares")
    target = page.locator("td:has(> a.mono)").first
    expect(target).to_contain_text("session sess-alpha")
    assert not _broken_words(target)
    assert not _broken_words(page.get_by_test_id("state").first)  # "active"
    ui.go("/settings")
    boxes = page.locator("input[type=checkbox][name^=detector_]")
    expect(boxes).to_have_count(4)
    widths = boxes.evaluate_all("bs => bs.map(b => Math.round(b.getBoundingClientRect().width))")
    ui.shot("settings")
    assert len(set(widths)) == 1 and widths[0] >= 12, widths  # none squeezed to a dot


def test_a_phone_breaks_a_span_attributes_name_after_a_dot(ui: UI, scenario: Scenario) -> None:
    page = _at(ui, PHONE)
    ui.go(f"/traces/{scenario.sessions['sess-alpha'][0].trace_id}")
    names = page.locator("#span-detail .kv-table th")
    expect(names.filter(has_text="threadline.metadata.plan")).to_have_count(1)
    ui.shot("phone")
    # "threadline." then "metadata.plan" on the next line, never "threadline.meta" / "data".
    parts = r"[^.]+\.?"
    assert not [w for n in range(names.count()) for w in _broken_words(names.nth(n), parts)]


def test_a_new_projects_first_page_shows_the_sdk_as_the_docs_do(ui: UI, server) -> None:
    """Someone coming from Langfuse or Phoenix looks for the SDK's decorator first: the
    empty Sessions list shows it, with this server's address, beside the demo and OTLP."""
    page = ui.go("/sessions")
    sample = page.get_by_test_id("empty-state").locator("pre").inner_text()
    for line in (
        "from threadline import Threadline, observe",
        f'base_url="{server.base_url}")',
        "@observe()",
        "Threadline.set_trace_session_id(conversation_id)",
        f"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT={server.base_url}/v1/traces",
    ):
        assert line in sample, line
    ui.shot("laptop")
    _at(ui, PHONE)
    ui.go("/sessions")
    ui.shot("phone")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_a_phone_stacks_a_sessions_evaluation_runs_rather_than_break_their_words(
    ui: UI, server, scenario: Scenario
) -> None:
    with FakeJudge() as judge:
        evaluator = {
            "name": "resolved-on-phone",
            "prompt": "Did the assistant resolve the user's problem?\n{{transcript}}",
            "judge": {"base_url": judge.base_url, "model": "gpt-4o-mini"},
            "score": {"name": "resolved-on-phone", "data_type": "boolean"},
            "online": False,
        }
        assert server.http.post("/api/v1/evaluators", json=evaluator).status_code == 201
        run = {"evaluator": "resolved-on-phone", "session_id": "sess-alpha"}
        asked = server.http.post("/api/v1/evaluation-runs", json=run)
        assert asked.status_code in (200, 201, 202), asked.text
        page = _at(ui, PHONE)
        ui.go("/sessions/sess-alpha")
        runs = page.get_by_test_id("evaluation-runs")
        expect(runs.locator("tr[data-status=done]")).to_have_count(1, timeout=30_000)
    ui.shot("phone")
    assert not _broken_words(runs)  # "Evaluator", "resolved-on-phone", "session", "done"
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def _broken_words(element: Locator, word: str = r"[^\s-]+-?") -> list[str]:
    """The words of the element's text split over two lines: by default a word runs to a
    space or after a hyphen (where a line may end)."""
    broken: list[str] = element.evaluate(BROKEN_WORDS, word)
    return broken


def test_a_laptop_shows_the_sessions_and_traces_beside_four_score_columns(ui: UI, server) -> None:
    """With four score columns the Sessions table scrolled, "Last output" past the
    window's edge and "maximilian" broken in two, and the Traces table scrolled by its
    last column's edge (a fifth and sixth column may scroll)."""
    start = (time.time_ns() // S - 600) * S
    question = "Could you tell me where my order is? " * 6
    answer = "It left our warehouse this morning and should arrive by Friday. " * 4
    turn = Turn(new_trace_id(), question, answer, start, 65_000, 12_345, 678, 0.0123)
    send(server, turn_spans(turn, "s-four-scores", "maximilian"))
    scores = {"helpfulness": 4, "resolved": True, "tone": 0.75, "correctness": 1}
    for name, value in scores.items():
        for target in ({"session_id": "s-four-scores"}, {"trace_id": turn.trace_id}):
            body = {"name": name, "value": value} | target
            assert server.http.post("/api/v1/scores", json=body).status_code == 200
    page = _at(ui, LAPTOP)
    for tab in ("sessions", "traces"):
        ui.go(f"/{tab}?range=all")
        table = page.locator(f"#{tab}-table")
        expect(table.locator("th.score-col")).to_have_count(4)
        ui.shot(f"laptop-{tab}")
        wrap = page.locator(".table-wrap")
        assert wrap.evaluate("w => w.scrollWidth <= w.clientWidth"), f"the {tab} table scrolls"
        assert not _broken_words(table), tab  # "maximilia" / "n"
    last = page.locator("#traces-table th").last
    assert last.evaluate("th => th.getBoundingClientRect().right") <= LAPTOP["width"]
    ui.go("/sessions?range=all")
    last = page.locator("#sessions-table th", has_text="Last output")
    assert last.evaluate("th => th.getBoundingClientRect().right") <= LAPTOP["width"]


def test_a_reader_picks_the_score_columns_a_laptop_shows(ui: UI, server) -> None:
    """Five score columns scrolled the Sessions table at 1366 px, with no way to show
    fewer: the Columns menu hides one, in this browser, on every tab and reload."""
    start = (time.time_ns() // S - 600) * S
    question = "Could you tell me where my order is? " * 6
    answer = "It left our warehouse this morning and should arrive by Friday. " * 4
    turn = Turn(new_trace_id(), question, answer, start, 65_000, 12_345, 678, 0.0123)
    send(server, turn_spans(turn, "s-five-scores", "maximilian"))
    scores = {"helpfulness": 4, "resolved": True, "tone": 0.75, "correctness": 1, "zeal": 2}
    for name, value in scores.items():
        body = {"name": name, "value": value, "session_id": "s-five-scores"}
        assert server.http.post("/api/v1/scores", json=body).status_code == 200
    page = _at(ui, LAPTOP)
    ui.go("/sessions?range=all")
    table, wrap = page.locator("#sessions-table"), page.locator(".table-wrap")
    expect(table.locator("th.score-col")).to_have_count(5)
    assert wrap.evaluate("w => w.scrollWidth > w.clientWidth")  # five columns scroll

    menu = page.get_by_test_id("columns-menu")
    menu.locator("summary").click()
    boxes = menu.locator("label")
    assert boxes.all_inner_texts() == sorted(scores)
    boxes.filter(has_text="tone").locator("input").uncheck()
    boxes.filter(has_text="zeal").locator("input").uncheck()
    ui.shot("laptop-columns-menu")
    tone = '[data-col="score:tone"]'
    expect(table.locator(f"th{tone}")).to_be_hidden()
    expect(table.locator(f"td{tone}")).to_be_hidden()
    assert wrap.evaluate("w => w.scrollWidth <= w.clientWidth"), "the table still scrolls"

    page.reload()  # kept by this browser
    expect(table.locator(f"th{tone}")).to_be_hidden()
    expect(table.locator("th.score-col:visible")).to_have_count(3)
    assert wrap.evaluate("w => w.scrollWidth <= w.clientWidth"), "the table scrolls again"
    menu.locator("summary").click()
    assert not menu.locator("label", has_text="tone").locator("input").is_checked()
    menu.locator("label", has_text="tone").locator("input").check()
    expect(table.locator(f"td{tone}")).to_be_visible()
    # On a phone the menu stays inside the window.
    page.set_viewport_size(PHONE)
    box = menu.locator(".menu").bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
    ui.shot("phone-columns-menu")
