"""A long session's page in headless Chromium shows one page of turns and steps through
the rest: a turn link beyond the first page (``turn=``) opens the page holding it with
that turn's scores, a search inside the session jumps to a match on a later page, and
the pager reads on to the session's last turn."""

from __future__ import annotations

import time

from playwright.sync_api import expect

from tests.otlp import new_trace_id

from .conftest import UI, send
from .turns import MS, Turn, turn_spans

TURNS = 130
PER_PAGE = 50
SESSION = "paged-ui"


def _session(server) -> list[Turn]:
    start = time.time_ns() - 3_600_000 * MS
    made = [
        Turn(
            new_trace_id(),
            f"question zeta{i:04d}",
            f"answer {i}",
            start + i * 1000 * MS,
            500,
            3,
            2,
            0.0,
        )
        for i in range(TURNS)
    ]
    send(server, [s for turn in made for s in turn_spans(turn, SESSION, "u")])
    return made


def test_a_long_sessions_turns_beyond_the_first_page(ui: UI, server) -> None:
    made = _session(server)
    late = made[119]  # turn 120
    answer = server.http.post(
        "/api/v1/scores",
        json={"name": "helpful", "value": 0.75, "trace_id": late.trace_id, "session_id": SESSION},
    )
    assert answer.status_code == 200, answer.text

    page = ui.go(f"/sessions/{SESSION}")
    turns = page.locator("article.turn")
    expect(turns).to_have_count(PER_PAGE)
    expect(page.get_by_test_id("turn-pager")).to_contain_text(f"Turns 1–{PER_PAGE} of {TURNS}")
    page.get_by_test_id("later-turns").click()
    expect(turns.first).to_have_attribute("id", f"turn-{PER_PAGE + 1}")
    expect(turns).to_have_count(PER_PAGE)

    # A link to turn 120: the page holding it, with the turn's score.
    page = ui.go(f"/sessions/{SESSION}?turn=120#turn-120")
    shown = page.locator("#turn-120")
    expect(shown).to_have_attribute("data-trace", late.trace_id)
    expect(shown.locator(".score-chip[data-name='helpful']")).to_have_attribute(
        "data-value", "0.75"
    )
    expect(page.get_by_test_id("turn-pager")).to_contain_text(f"Turns 120–{TURNS} of {TURNS}")
    expect(turns).to_have_count(TURNS - 119)
    expect(page.get_by_test_id("later-turns")).to_have_count(0)
    page.get_by_test_id("earlier-turns").click()
    expect(turns.first).to_have_attribute("id", "turn-70")

    # Search inside the session: the match on turn 126 opens the page of turns 101-130.
    page = ui.go(f"/sessions/{SESSION}?find=zeta0125")
    found = page.get_by_test_id("found-turn")
    expect(found).to_have_attribute("id", "turn-126")
    expect(found).to_have_attribute("data-trace", made[125].trace_id)
    expect(turns.first).to_have_attribute("id", "turn-101")
    ui.shot("found-on-a-later-page")
    assert not ui.errors, ui.errors
