"""What a newcomer sees in the first hour: values shown as they filter, previews and
transcripts that show what the user said, a session page that follows the
conversation live, and one way of writing each thing."""

from __future__ import annotations

from urllib.parse import quote

from playwright.sync_api import expect

from .conftest import UI, send
from .otlp import Turn, new_trace_id, turn_spans

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
