"""Trace view and Traces tab in a real browser, against the API's numbers."""

from __future__ import annotations

import json
import re

from playwright.sync_api import expect

from tests.otlp import SpanSpec, new_trace_id

from .conftest import UI, Scenario, cells, close, send
from .turns import MS


def test_trace_view_select_span(ui: UI, server, scenario: Scenario) -> None:
    turn = scenario.sessions["sess-beta"][1]  # the failed one
    api = server.get(f"/api/v1/traces/{turn.trace_id}")
    page = ui.go(f"/traces/{turn.trace_id}")
    rows = page.locator(".span-row")
    expect(rows).to_have_count(len(api["spans"]))
    assert cells(page.locator(".head"))["span_count"] == str(api["span_count"])
    assert close(cells(page.locator(".head"))["cost_usd"], api["cost_usd"])
    # The session and user link to their pages.
    expect(page.get_by_test_id("trace-session")).to_have_attribute("href", "/sessions/sess-beta")
    expect(page.get_by_test_id("trace-user")).to_have_attribute("href", "/sessions?user_id=bob")
    # The root is selected first: its JSON input, pretty-printed.
    expect(page.get_by_test_id("span-name")).to_have_text("handle_turn")
    expect(page.get_by_test_id("span-input")).to_contain_text('"message": "Refund my last order"')
    # Select the child span: its detail replaces the panel, and the URL follows.
    child = next(s for s in api["spans"] if s["parent_span_id"])
    rows.filter(has_text="generate").click()
    expect(page.get_by_test_id("span-name")).to_have_text("generate")
    page.wait_for_url(re.compile(rf".*span={child['span_id']}"))
    detail = page.locator(".span-detail")
    expect(detail).to_contain_text("gen_ai.usage.input_tokens")
    expect(detail.locator(".events .exception")).to_contain_text("TimeoutError: order service")
    expect(detail.locator("pre.stack")).to_contain_text('File "app.py", line 42')
    ui.shot("trace-error-span")
    # Collapsing the root hides its subtree; expanding shows it again.
    page.locator(".span-row .twisty").first.click()
    expect(rows.filter(has_text="generate")).to_be_hidden()
    expect(page.get_by_test_id("span-name")).to_have_text("generate")  # selection unchanged
    page.locator(".span-row .twisty").first.click()
    expect(rows.filter(has_text="generate")).to_be_visible()


def test_chat_messages_render_as_messages(ui: UI, server, scenario: Scenario) -> None:
    turn = scenario.sessions["sess-alpha"][1]
    page = ui.go(f"/traces/{turn.trace_id}")
    page.locator(".span-row", has_text="chat gpt-4o-mini").click()
    inputs = page.get_by_test_id("span-input")
    expect(inputs.locator(".msg .role")).to_have_text(["system", "user", "assistant", "user"])
    expect(inputs.locator(".msg.role-user").last).to_contain_text(turn.question)
    expect(page.get_by_test_id("span-output").locator(".msg.role-assistant")).to_have_text(
        re.compile(turn.answer)
    )
    ui.shot("trace-chat-span")


def test_script_in_span_input_is_inert(ui: UI, server) -> None:
    trace_id = new_trace_id()
    evil = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">'
    span = SpanSpec(
        "<b>bold</b> name",
        10**18,
        10**18 + 50 * MS,
        trace_id=trace_id,
        attributes={
            "threadline.span.input": json.dumps({"message": evil}),
            "threadline.span.output": evil,
            "session.id": "<i>s</i>",
            "user.id": "<u>x</u>",
        },
    )
    send(server, [span])
    for path in (  # the span is from 2001: the lists over all time
        f"/traces/{trace_id}",
        "/traces?range=all",
        "/sessions?range=all",
        "/sessions/%3Ci%3Es%3C%2Fi%3E",
        "/users?range=all",
    ):
        page = ui.go(path)
        if path == "/sessions?range=all":
            page.locator("tr.session-row .caret").first.click()
            expect(page.locator("tr.inner-trace")).to_have_count(1)
        assert page.evaluate("window.__xss") is None, path
        assert page.locator("script:not([src])").count() == 0, path
        assert page.locator("b, i, u").filter(has_text=re.compile("bold|^s$|^x$")).count() == 0
    page = ui.go(f"/traces/{trace_id}")
    expect(page.get_by_test_id("span-output")).to_contain_text(evil)  # shown as text
    expect(page.get_by_test_id("span-name")).to_have_text("<b>bold</b> name")


def test_traces_tab_filters_match_api(ui: UI, server, scenario: Scenario) -> None:
    page = ui.go("/traces")
    api = server.get("/api/v1/traces")["items"]
    rows = page.locator("tr.trace-row")
    expect(rows).to_have_count(len(api))
    assert rows.evaluate_all("rs => rs.map(r => r.dataset.id)") == [t["trace_id"] for t in api]
    for i, trace in enumerate(api):
        values = cells(rows.nth(i))
        assert values["span_count"] == str(trace["span_count"])
        assert values["total_tokens"] == str(trace["total_tokens"])
        assert close(values["cost_usd"], trace["cost_usd"])
        assert close(values["duration_ms"], trace["duration_ms"], 3)
    ui.shot("traces")
    checks = [
        ({"user_id": "bob"}, "user_id=bob"),
        ({"session_id": "sess-alpha"}, "session_id=sess-alpha"),
        ({"status": "error"}, "status=error"),
        ({"tag": "vip"}, "tag=vip"),
        ({"metadata": "plan=free"}, "metadata=plan%3Dfree"),
        ({"q": "Lisbon"}, "q=Lisbon"),
    ]
    for params, query in checks:
        page = ui.go("/traces?" + query)
        shown = page.locator("tr.trace-row").evaluate_all("rs => rs.map(r => r.dataset.id)")
        api_params = dict(params)
        expected = [t["trace_id"] for t in server.get("/api/v1/traces", **api_params)["items"]]
        assert shown == expected and shown, query
    # The filter bar's text search, as a user types it.
    page = ui.go("/traces")
    page.fill("input[name=q]", "Osaka")
    page.press("input[name=q]", "Enter")
    page.wait_for_url(re.compile(r".*q=Osaka"))
    expect(page.locator("tr.trace-row")).to_have_count(1)
    expect(page.locator("tr.trace-row")).to_contain_text("sess-beta")
    # Time preset: last 24 hours leaves out the week-old trace.
    page = ui.go("/traces?range=24h")
    expect(page.locator("tr.trace-row")).to_have_count(len(api) - 1)


def test_traces_cursor_paging(ui: UI, server) -> None:
    base = 10**18
    ids = []
    for i in range(53):  # the page size is 50
        trace_id = new_trace_id()
        ids.append(trace_id)
        send(
            server,
            [
                SpanSpec(
                    f"job-{i}", base + i * 1000 * MS, base + i * 1000 * MS + MS, trace_id=trace_id
                )
            ],
        )
    page = ui.go("/traces?range=all")  # traces from 2001
    expect(page.locator("tr.trace-row")).to_have_count(50)
    page.get_by_test_id("next-page").click()
    expect(page.locator("tr.trace-row")).to_have_count(3)
    shown = page.locator("tr.trace-row").evaluate_all("rs => rs.map(r => r.dataset.id)")
    assert shown == list(reversed(ids))[50:]
    expect(page.get_by_test_id("next-page")).to_have_count(0)
