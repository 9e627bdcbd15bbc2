"""Inferred sessions and context growth in a real browser, against the API's numbers."""

from __future__ import annotations

import random

from playwright.sync_api import expect

from tests.chat_turns import BASE, conversation, turn_spans
from tests.otlp import request

from .conftest import UI


def send(server, spans: list) -> None:
    response = server.export(request(spans).SerializeToString())
    assert response.status_code == 200, response.text


def test_inferred_sessions_are_marked_in_the_list_and_on_their_page(ui: UI, server) -> None:
    rng = random.Random(7)
    inferred = conversation("inferred", BASE, rng=rng)
    sent = conversation("sent", BASE + 1_000_000_000, rng=rng)
    for turn in inferred:
        send(server, turn_spans(inferred, turn))
    for turn in sent:
        send(server, turn_spans(sent, turn, session_id="sent-by-app"))
    inferred_id = f"inferred-{inferred[0].trace_id}"
    page = ui.go("/sessions")
    rows = page.locator("tr.session-row")
    expect(rows).to_have_count(2)
    mark = rows.filter(has_text=inferred_id).locator("[data-col=inferred]")
    expect(mark).to_have_attribute("data-value", "history")
    expect(mark).to_have_text("inferred · history")
    expect(rows.filter(has_text="sent-by-app").locator("[data-col=inferred]")).to_have_count(0)
    ui.shot("sessions")
    rows.filter(has_text=inferred_id).locator("a[data-col=session_id]").click()
    page.wait_for_url(f"**/sessions/{inferred_id}")
    expect(page.get_by_test_id("inferred")).to_contain_text("inferred · history")
    expect(page.locator("[data-testid=session-totals] [data-col=trace_count]")).to_have_text("3")
    ui.shot("session")
