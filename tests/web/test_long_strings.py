"""Long unbreakable strings (no space to wrap at) must not widen any page.

A span's name, ids, tags, metadata, attributes, inputs, outputs, chat messages and
error texts are whatever a client sent. Each page is loaded in Chromium at a 1,400 px
viewport and must be no wider than it: a long string wraps or is clipped.
"""

from __future__ import annotations

import json
import time
from urllib.parse import quote

from tests.otlp import SpanSpec, new_trace_id

from .conftest import UI, send
from .turns import MS

LONG = "x" * 20_000  # at 7 px a character, about 140,000 px unbroken
VIEWPORT = 1400


def _long_trace(trace_id: str, start_ns: int) -> list[SpanSpec]:
    root = SpanSpec(
        "root-" + LONG,
        start_ns,
        start_ns + 900 * MS,
        trace_id=trace_id,
        attributes={
            "session.id": "sess-" + LONG[:3000],
            "user.id": "user-" + LONG[:3000],
            "threadline.tags": ["tag-" + LONG[:3000]],
            "threadline.metadata.k" + LONG[:2000]: "v" + LONG[:3000],
            "threadline.span.input": "in-" + LONG,
            "threadline.span.output": json.dumps({"out": LONG}),
            "key-" + LONG[:3000]: "value-" + LONG,
        },
        error="status-" + LONG,
        events=[
            (
                "exception",
                start_ns + 10 * MS,
                {
                    "exception.type": "Type" + LONG[:3000],
                    "exception.message": "message-" + LONG,
                    "exception.stacktrace": "stack-" + LONG,
                },
            ),
            ("note", start_ns + 20 * MS, {"detail": LONG}),
        ],
    )
    child = SpanSpec(
        "child-" + LONG,
        start_ns + 5 * MS,
        start_ns + 800 * MS,
        trace_id=trace_id,
        parent_span_id=root.span_id,
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.input.messages": json.dumps([{"role": "user", "content": "ask-" + LONG}]),
            "gen_ai.output.messages": json.dumps(
                [{"role": "assistant", "content": "answer-" + LONG}]
            ),
        },
    )
    return [root, child]


def test_long_unbreakable_strings_do_not_widen_pages(ui: UI, server) -> None:
    trace_id = new_trace_id()
    start_ns = time.time_ns() - 60_000 * MS
    spans = _long_trace(trace_id, start_ns)
    send(server, spans)
    session_id = "sess-" + LONG[:3000]
    child_id = spans[1].span_id
    pages = {
        "sessions": "/sessions",
        "traces": "/traces",
        "users": "/users",
        "session": "/sessions/" + quote(session_id, safe=""),
        "trace": f"/traces/{trace_id}",
        "trace-child": f"/traces/{trace_id}?span={child_id}",
        "session-expanded": "/sessions",
    }
    widths = {}
    for name, path in pages.items():
        page = ui.go(path)
        page.wait_for_load_state("load")
        if name == "session-expanded":
            page.locator("tr.session-row").first.click()
            page.locator("tr.expansion").first.wait_for()
        if name == "trace":
            # Every long text shown in full, as a reader who clicks "Show all" sees it.
            for button in page.locator(".expander").all():
                button.click()
        widths[name] = page.evaluate(
            "Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
        )
        if widths[name] <= VIEWPORT:  # a page 100,000 px wide is too big to screenshot
            ui.shot(name)
    wide = {name: width for name, width in widths.items() if width > VIEWPORT}
    assert not wide, f"pages wider than the {VIEWPORT} px viewport: {wide}"
