"""Text from clients and people may hold bidirectional overrides (U+202E makes what
follows read right to left): shown in the UI, such text is isolated, so the override
turns nothing around it. Measured in headless Chromium: what follows the text on its
line stays to its right."""

from __future__ import annotations

import html
import time

import httpx

from tests.otlp import SpanSpec, new_trace_id
from threadline.server.web.auth import COOKIE

from .conftest import UI, Scenario, send

RLO = "\u202e"


def test_an_override_in_a_span_name_turns_nothing_beside_it(ui: UI, server) -> None:
    now = time.time_ns()
    root = SpanSpec(
        RLO + "evil name",
        now - 2_000_000_000,
        now - 1_000_000_000,
        trace_id=new_trace_id(),
        attributes={"threadline.tags": ["first-tag", "second-tag"]},
    )
    send(server, [root])
    page = ui.go("/traces")
    cell = page.locator("tr.trace-row td.name").first
    name = cell.locator("a").first.bounding_box()
    chips = [cell.locator(".chip").nth(i).bounding_box() for i in range(2)]
    assert name is not None and all(chips)
    # Left to right, as written: the name, then its tags in order.
    assert name["x"] + name["width"] <= chips[0]["x"] + 0.5, (name, chips)  # type: ignore[index]
    assert chips[0]["x"] < chips[1]["x"], chips  # type: ignore[index]
    ui.shot("override-in-a-span-name")


def test_a_score_tooltip_isolates_its_comment(server, scenario: Scenario) -> None:
    # A tooltip is plain text, where no element can isolate: FSI ... PDI do.
    comment = RLO + "looks fine"
    answer = server.http.post(
        "/api/v1/scores",
        json={"name": "stars", "value": 3, "session_id": "sess-alpha", "comment": comment},
    )
    assert answer.status_code == 200, answer.text
    cookies = {COOKIE: server.api_key}
    with httpx.Client(base_url=server.base_url, cookies=cookies, timeout=30) as web:
        page = web.get("/sessions/sess-alpha").text
    assert "\u2068" + html.escape(comment) + "\u2069" in page
