"""Context growth per turn, from turns sent through the real server with known token
counts, cache reads and histories: the figures the session page charts (read from the
API's traces, as the page reads them) and the rollups the Sessions list sorts by."""

from __future__ import annotations

import random

from tests.chat_turns import BASE, SYSTEM, conversation, turn_spans
from tests.conftest import ProjectClient
from threadline.server.context_growth import context_growth
from threadline.server.model import TraceDetail

CACHE_READ = "gen_ai.usage.cache_read_input_tokens"  # OpenLLMetry's key for cache reads


def growth(server: ProjectClient, session_id: str) -> list[tuple]:
    detail = server.get(f"/api/v1/sessions/{session_id}")
    traces = [
        TraceDetail.model_validate(server.get(f"/api/v1/traces/{t['trace_id']}"))
        for t in detail["traces"]
    ]
    return [
        (
            t.turn,
            t.model,
            t.input_tokens,
            t.context_window,
            t.use,
            t.cached_share,
            t.history_dropped,
        )
        for t in context_growth(traces)
    ]


def test_context_use_cache_share_and_dropped_history_per_turn(server: ProjectClient) -> None:
    turns = conversation("long", BASE, turns=5, rng=random.Random(11))
    for turn, tokens in zip(turns, (12_800, 25_600, 6_400, 9_600, 1_000), strict=True):
        turn.input_tokens = tokens
    summary = [("system", SYSTEM), ("system", "Summary: a trip to Lisbon was planned.")]
    server.send(turn_spans(turns, turns[0], session_id="ctx", **{CACHE_READ: 3_200}))
    server.send(turn_spans(turns, turns[1], session_id="ctx", **{CACHE_READ: 12_800}))
    # The third turn replaces the first two with a summary; the fourth continues it.
    server.send(turn_spans(turns, turns[2], session_id="ctx", history=summary))
    after = [*summary, ("user", turns[2].question), ("assistant", turns[2].reply)]
    server.send(turn_spans(turns, turns[3], session_id="ctx", history=after))
    # The fifth keeps only the last exchange (a window of the conversation), with a
    # model genai-prices does not know.
    window = [("system", SYSTEM), ("user", turns[3].question), ("assistant", turns[3].reply)]
    server.send(
        turn_spans(turns, turns[4], session_id="ctx", history=window, model="no-such-model")
    )
    m = "gpt-4o-mini"
    assert growth(server, "ctx") == [
        (1, m, 12_800, 128_000, 0.1, 0.25, False),
        (2, m, 25_600, 128_000, 0.2, 0.5, False),
        (3, m, 6_400, 128_000, 0.05, None, True),
        (4, m, 9_600, 128_000, 0.075, None, False),
        (5, "no-such-model", 1_000, None, None, None, True),
    ]
    session = server.get("/api/v1/sessions/ctx")
    assert [t["context_use"] for t in session["traces"]] == [0.1, 0.2, 0.05, 0.075, None]
    assert session["peak_context_use"] == 0.2


def test_turns_that_never_resend_history_show_no_drop(server: ProjectClient) -> None:
    # As with the Responses API: each turn sends the system prompt and its question only.
    turns = conversation("stateless", BASE, rng=random.Random(12))
    for turn in turns:
        server.send(turn_spans(turns, turn, session_id="stateless", history=[("system", SYSTEM)]))
    assert [row[-1] for row in growth(server, "stateless")] == [False, False, False]


def test_the_sessions_list_sorts_and_filters_by_peak_context(server: ProjectClient) -> None:
    rng = random.Random(13)
    for name, tokens in (("low", 1_280), ("high", 115_200), ("mid", 64_000)):
        turns = conversation(name, BASE, turns=1, rng=rng)
        turns[0].input_tokens = tokens
        server.send(turn_spans(turns, turns[0], session_id=name))
    listed = server.get("/api/v1/sessions", sort="context", window="all")["items"]
    assert [(s["session_id"], s["peak_context_use"]) for s in listed] == [
        ("high", 0.9),
        ("mid", 0.5),
        ("low", 0.01),
    ]
    found = server.get("/api/v1/sessions", min_context_use=0.5, window="all")["items"]
    assert sorted(s["session_id"] for s in found) == ["high", "mid"]
    bad = server.http.get("/api/v1/sessions", params={"min_context_use": "-1"})
    assert bad.status_code == 422 and "error" in bad.json()
