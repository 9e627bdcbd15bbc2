"""Search and numeric filters through the JSON API, on spans sent over OTLP to the real
server: a word of a later turn finds its session, a phrase, a CJK word, a word of a
tool's result; search inside a session; each numeric filter alone and combined with the
other filters; bad filters are 400s; OpenAPI documents them."""

from __future__ import annotations

import json

from tests.otlp import BASE_NS, new_span_id, new_trace_id, span

MS = 1_000_000
SECOND = 1000 * MS


def _chat(*messages: tuple[str, str]) -> str:
    return json.dumps([{"role": role, "content": content} for role, content in messages])


def _conversation(server, session_id: str, turns: list[tuple[str, str]], **extra) -> list[str]:
    """One trace per turn, each an LLM call whose input is the whole history so far;
    ``tool`` (a city) adds a weather tool call to the first turn."""
    history: list[tuple[str, str]] = [("system", "Be brief.")]
    spans, trace_ids = [], []
    start = extra.get("start", BASE_NS)
    for number, (said, replied) in enumerate(turns):
        history.append(("user", said))
        trace_id, root = new_trace_id(), new_span_id()
        trace_ids.append(trace_id)
        begin = start + number * 10 * SECOND
        spans.append(
            span(
                trace_id,
                root,
                name="chat",
                start_ns=begin,
                end_ns=begin + (number + 1) * SECOND,
                error=extra.get("error", False),
                attributes={
                    "threadline.session.id": session_id,
                    "threadline.user.id": extra.get("user", "u1"),
                    "threadline.span.input": _chat(*history),
                    "threadline.span.output": _chat(("assistant", replied)),
                    "gen_ai.request.model": "gpt-4o-mini",
                    "gen_ai.usage.input_tokens": 100 * (number + 1),
                    "gen_ai.usage.output_tokens": 10,
                },
            )
        )
        if number == 0 and "tool" in extra:
            spans.append(
                span(
                    trace_id,
                    new_span_id(),
                    parent=root,
                    name="get_weather",
                    start_ns=begin + 100 * MS,
                    end_ns=begin + 200 * MS,
                    attributes={
                        "threadline.span.type": "TOOL",
                        "threadline.span.input": json.dumps({"city": extra["tool"]}),
                        "threadline.span.output": json.dumps(
                            {"forecast": "drizzle, then a sirocco gust"}
                        ),
                    },
                )
            )
        history.append(("assistant", replied))
    server.send(spans)
    return trace_ids


def _fill(server) -> dict[str, list[str]]:
    return {
        "trip": _conversation(
            server,
            "trip",
            [
                ("Plan me a weekend away", "Sure. Where to?"),
                ("Somewhere by the sea, with a good café", "Noted."),
                ("How about Valparaíso in March?", "Valparaíso is a fine choice."),
            ],
            tool="Lisboa",
        ),
        "tokyo": _conversation(
            server,
            "tokyo",
            [("京都から大阪までの行き方", "電車で約三十分です")],
            start=BASE_NS + 100 * SECOND,
            user="u2",
        ),
        "broken": _conversation(
            server,
            "broken",
            [("first try", "failed"), ("second try", "failed again")],
            start=BASE_NS + 200 * SECOND,
            error=True,
        ),
    }


# The data is at a fixed time, long before the lists' default window: all time.
def _sessions(server, **params) -> list[str]:
    return [
        s["session_id"] for s in server.get("/api/v1/sessions", window="all", **params)["items"]
    ]


def _traces(server, **params) -> list[str]:
    return [t["trace_id"] for t in server.get("/api/v1/traces", window="all", **params)["items"]]


def test_search_finds_later_turns_phrases_cjk_and_tool_results(server):
    ids = _fill(server)
    # A word of the third turn: the session, and the one trace that said it.
    assert _sessions(server, q="valparaiso") == ["trip"]
    assert _traces(server, q="Valparaíso") == [ids["trip"][2]]
    assert _sessions(server, q='"weekend away"') == ["trip"]
    assert _sessions(server, q='"away weekend"') == []
    assert _sessions(server, q="大阪") == ["tokyo"]
    assert _sessions(server, q="sirocco") == ["trip"]  # a tool's result
    assert _traces(server, q="lisboa") == [ids["trip"][0]]  # a tool's argument
    assert _sessions(server, q="valpar*") == ["trip"]
    assert _sessions(server, q="cafe sea") == ["trip"]
    # The snippet marks the match.
    [found] = server.get("/api/v1/sessions", q="sirocco", window="all")["items"]
    text, marks = found["snippet"]["text"], found["snippet"]["highlights"]
    assert [text[a:b] for a, b in marks] == ["sirocco"]
    # Relevance is a sort order of both lists.
    assert _sessions(server, q="try", sort="relevance") == ["broken"]
    assert _traces(server, q="try", sort="relevance") and set(
        _traces(server, q="try", sort="relevance")
    ) == set(ids["broken"])


def test_search_inside_a_session_counts_and_orders_matches(server):
    ids = _fill(server)
    matches = server.get("/api/v1/session-search", session_id="trip", q="s*")
    # Sure; Somewhere, sea; (the tool:) sirocco; (turn 3: none).
    assert [(m["turn"], m["trace_id"]) for m in matches] == [
        (1, ids["trip"][0]),
        (1, ids["trip"][0]),
        (2, ids["trip"][1]),
    ]
    assert [m["span_name"] for m in matches] == ["chat", "get_weather", "chat"]
    assert server.get("/api/v1/session-search", session_id="trip", q="大阪") == []
    bad = server.http.get("/api/v1/session-search", params={"session_id": "trip"})
    assert bad.status_code == 422 and "error" in bad.json()


def test_numeric_filters_alone_and_combined(server):
    ids = _fill(server)
    assert _sessions(server, filter="turns>=3") == ["trip"]
    assert _sessions(server, filter="turns=2") == ["broken"]
    assert _sessions(server, filter="spans>3") == ["trip"]
    assert _sessions(server, filter="tokens<200") == ["tokyo"]
    assert _sessions(server, filter="errors>0") == ["broken"]
    assert _sessions(server, filter="errors=0") == ["tokyo", "trip"]
    assert _sessions(server, filter="duration>20") == ["trip"]  # 0 s to 23 s
    assert _sessions(server, filter="duration<=12s") == ["broken", "tokyo"]
    assert _traces(server, filter="duration>=3") == [ids["trip"][2]]
    assert _traces(server, filter="tokens>300") == [ids["trip"][2]]
    # Cost is known for the model's tokens: every session has some.
    costs = {
        s["session_id"]: s["cost_usd"]
        for s in server.get("/api/v1/sessions", window="all")["items"]
    }
    assert all(cost is not None and cost > 0 for cost in costs.values()), costs
    cheapest = min(costs, key=lambda s: costs[s])
    assert _sessions(server, filter=f"cost<={costs[cheapest]}") == [cheapest]
    assert _traces(server, filter=f"cost>{max(costs.values())}") == []
    # Combinations: with each other, with a search, with a user, a status, a time window.
    assert _sessions(server, filter=["turns>1", "errors=0"]) == ["trip"]
    assert _sessions(server, filter=["turns>1", "errors=0", "tokens<100"]) == []
    assert _sessions(server, q="try", filter="turns=2") == ["broken"]
    assert _sessions(server, q="try", filter="turns=3") == []
    assert _sessions(server, user_id="u2", filter="turns<2") == ["tokyo"]
    assert _sessions(server, status="error", filter="spans=2") == ["broken"]
    assert _traces(server, session_id="trip", filter="tokens<250") == ids["trip"][1::-1]
    assert _traces(server, status="error", filter="duration>1.5") == [ids["broken"][1]]


def test_bad_filters_are_400_with_a_reason(server):
    for bad, word in (
        ("turns", "field op number"),
        ("turns>many", "not a number"),
        ("color=3", "no field"),
        ("turns>inf", "finite"),
        # Past what a duration in nanoseconds holds (an int64): it overflowed to a 500.
        ("duration>1e300", "at most"),
        ("duration<-1e10s", "at most"),
    ):
        response = server.http.get("/api/v1/sessions", params={"filter": bad})
        assert response.status_code == 400, bad
        assert word in response.json()["error"], response.json()
    # A session's field that traces do not have.
    response = server.http.get("/api/v1/traces", params={"filter": "turns>1"})
    assert response.status_code == 400 and "no field" in response.json()["error"]
    for path in ("/api/v1/traces", "/api/v1/export/traces", "/api/v1/export/sessions"):
        response = server.http.get(path, params={"filter": "duration>1e12"})
        assert response.status_code == 400 and "at most" in response.json()["error"], path
    # The largest bound a duration can hold still filters.
    response = server.http.get("/api/v1/traces", params={"filter": "duration<9223372036"})
    assert response.status_code == 200, response.text


def test_openapi_documents_search_filters_and_session_search(server):
    spec = server.http.get("/openapi.json").json()
    params = {p["name"]: p for p in spec["paths"]["/api/v1/sessions"]["get"]["parameters"]}
    assert "turns" in params["filter"]["description"] and ">=" in params["filter"]["description"]
    assert "phrase" in params["q"]["description"]
    traces = {p["name"]: p for p in spec["paths"]["/api/v1/traces"]["get"]["parameters"]}
    assert "duration" in traces["filter"]["description"]
    assert "/api/v1/session-search" in spec["paths"]
