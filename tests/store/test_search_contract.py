"""The search part of the storage contract, on every backend: full-text search over every
span (later turns, tool results, errors, phrases, prefixes, accents, CJK), snippets,
relevance, search inside a session, numeric filters, and an index that follows
deletion."""

from __future__ import annotations

import json

from tests.store import test_contract
from tests.store.test_contract import record
from threadline.server.model import NumericFilter, SessionQuery, SpanRecord, TraceQuery
from threadline.server.store import Store

# The contract suite's fixtures: every test here runs on every backend.
backend = test_contract.backend
store = test_contract.store


def chat(*messages: tuple[str, str]) -> str:
    return json.dumps([{"role": role, "content": content} for role, content in messages])


def conversation() -> list[SpanRecord]:
    """s-paris: three turns, each an LLM call with the whole history as its input (a
    city named in the third), and a weather tool called in the second; s-tokyo: one turn
    in Japanese; s-broken: a failed turn; trace 9 in no session."""
    history = [("system", "You are a travel agent.")]
    spans = []
    turns = [
        ("I need a holiday in late spring", "Where would you like to go?"),
        ("Somewhere warm, the café culture matters", "Let me check the weather."),
        ("What about Marseille then?", "Marseille is lovely in May."),
    ]
    for turn, (said, replied) in enumerate(turns, start=1):
        history.append(("user", said))
        spans.append(
            record(
                turn,
                turn * 10,
                start=turn * 1000,
                length=400 * turn,
                session="s-paris",
                user="u1",
                tokens=(100 * turn, 10),
                cost=0.01 * turn,
                input=chat(*history),
                output=chat(("assistant", replied)),
            )
        )
        history.append(("assistant", replied))
    spans.append(
        record(
            2,
            21,
            20,
            start=2100,
            length=50,
            input=json.dumps({"city": "Nice"}),
            output=json.dumps({"forecast": "sunny with a mistral wind"}),
        )
    )
    spans.append(
        record(
            4,
            40,
            start=5000,
            session="s-tokyo",
            user="u2",
            input=chat(("user", "東京で美味しいラーメン屋を教えて")),
            output=chat(("assistant", "一蘭がおすすめです")),
        )
    )
    spans.append(
        record(
            5,
            50,
            start=6000,
            session="s-broken",
            error=True,
            status_message="upstream timeout from provider",
            input='"plain words here"',
        )
    )
    spans.append(record(9, 90, start=7000, input='"orphan marseille trace"'))
    return spans


def sessions(store: Store, project: int, **query) -> list[str]:
    return [s.session_id for s in store.list_sessions(project, SessionQuery(**query)).items]


def traces(store: Store, project: int, **query) -> list[str]:
    return [t.trace_id for t in store.list_traces(project, TraceQuery(**query)).items]


def tid(n: int) -> str:
    return f"{n:032x}"


def _filled(store: Store) -> int:
    project = store.create_project("search").id
    store.write_spans(project, conversation())
    return project


def test_a_word_of_a_later_turn_finds_its_session_and_trace(store: Store):
    project = _filled(store)
    assert sessions(store, project, q="marseille") == ["s-paris"]
    # Traces: the turn that said it, and the trace outside any session.
    assert traces(store, project, q="marseille") == [tid(9), tid(3)]
    # A word of turn 1 is not found again in later turns' histories.
    assert traces(store, project, q="holiday") == [tid(1)]


def test_tool_results_errors_phrases_prefixes_accents_and_cjk(store: Store):
    project = _filled(store)
    assert traces(store, project, q="mistral") == [tid(2)]  # a tool's result
    assert traces(store, project, q="Nice") == [tid(2)]  # a tool's argument
    assert sessions(store, project, q="timeout") == ["s-broken"]  # an error message
    assert sessions(store, project, q='"late spring"') == ["s-paris"]
    assert sessions(store, project, q='"spring late"') == []
    assert sessions(store, project, q="marseil*") == ["s-paris"]
    assert sessions(store, project, q="marseil") == []
    assert sessions(store, project, q="CAFE") == ["s-paris"]
    assert sessions(store, project, q="ラーメン") == ["s-tokyo"]
    assert sessions(store, project, q="東京") == ["s-tokyo"]
    assert sessions(store, project, q="京東") == []
    # Every term must match, in one turn (its spans between them), not across turns.
    assert sessions(store, project, q="marseille lovely") == ["s-paris"]
    assert sessions(store, project, q="marseille ramen") == []
    assert traces(store, project, q="weather mistral") == [tid(2)]
    assert traces(store, project, q="holiday mistral") == []
    # Operators of the index are words, and text with no word finds only ids.
    assert sessions(store, project, q="marseille OR nothing") == []
    assert sessions(store, project, q='" * ( -') == []
    # Ids: any part of a session's id (any ASCII case), a trace's whole id.
    assert sessions(store, project, q="s-pa") == ["s-paris"]
    assert sessions(store, project, q="PARIS") == ["s-paris"]
    assert traces(store, project, q=tid(4)) == [tid(4)]


def test_snippets_mark_the_matches(store: Store):
    project = _filled(store)
    [found] = store.list_sessions(project, SessionQuery(q="marseille")).items
    assert found.snippet is not None
    marked = [found.snippet.text[a:b] for a, b in found.snippet.highlights]
    assert marked and all(m.lower() == "marseille" for m in marked)
    [trace] = store.list_traces(project, TraceQuery(q="東京")).items
    assert trace.snippet is not None
    assert [trace.snippet.text[a:b] for a, b in trace.snippet.highlights] == ["東京"]
    # Without a search, no snippet.
    assert all(s.snippet is None for s in store.list_sessions(project, SessionQuery()).items)


def test_relevance_ranks_the_better_match_first_and_pages(store: Store):
    project = store.create_project("rank").id
    spans = [
        record(1, 1, start=0, session="weak", input='"the weather is fine, said the report"'),
        record(2, 2, start=10, session="strong", input='"weather weather weather"'),
        record(3, 3, start=20, session="none", input='"nothing to see"'),
    ]
    store.write_spans(project, spans)
    assert sessions(store, project, q="weather", sort="relevance") == ["strong", "weak"]
    assert sessions(store, project, q="weather") == ["strong", "weak"]  # latest first
    first = store.list_sessions(project, SessionQuery(q="weather", sort="relevance", limit=1))
    assert [s.session_id for s in first.items] == ["strong"] and first.next_cursor
    second = store.list_sessions(
        project,
        SessionQuery(q="weather", sort="relevance", limit=1, cursor=first.next_cursor),
    )
    assert [s.session_id for s in second.items] == ["weak"] and second.next_cursor is None
    assert traces(store, project, q="weather", sort="relevance") == [tid(2), tid(1)]


def test_search_inside_a_session_lists_every_match_in_order(store: Store):
    project = _filled(store)
    matches = store.find_in_session(project, "s-paris", "marseille")
    # Turn 3's input said it and its output repeated it: one span, found once.
    assert [(m.turn, m.trace_id, m.span_id) for m in matches] == [(3, tid(3), f"{30:016x}")]
    # Terms are found together in one turn: its spans that hold any of them are listed.
    weather = store.find_in_session(project, "s-paris", "weather mistral")
    assert [(m.turn, m.span_id) for m in weather] == [(2, f"{20:016x}"), (2, f"{21:016x}")]
    assert store.find_in_session(project, "s-paris", "holiday mistral") == []
    # Where, would; warm; with, wind (the tool); What: turn by turn, span by span.
    found = store.find_in_session(project, "s-paris", "w*")
    assert [(m.turn, m.span_id) for m in found] == [
        (1, f"{10:016x}"),
        (2, f"{20:016x}"),
        (2, f"{21:016x}"),
        (3, f"{30:016x}"),
    ]
    assert store.find_in_session(project, "s-tokyo", "marseille") == []


def test_numeric_filters_on_sessions_and_traces(store: Store):
    project = _filled(store)

    def numbers(field: str, op: str, value: float) -> list[NumericFilter]:
        return [NumericFilter(field=field, op=op, value=value)]

    assert sessions(store, project, numbers=numbers("turns", ">=", 3)) == ["s-paris"]
    assert sessions(store, project, numbers=numbers("turns", "=", 1)) == ["s-broken", "s-tokyo"]
    assert sessions(store, project, numbers=numbers("spans", ">", 3)) == ["s-paris"]
    assert sessions(store, project, numbers=numbers("tokens", ">", 500)) == ["s-paris"]
    # Sessions of unknown cost match no cost filter.
    assert sessions(store, project, numbers=numbers("cost", "<", 0.07)) == ["s-paris"]
    assert sessions(store, project, numbers=numbers("cost", ">", 0.07)) == []
    assert sessions(store, project, numbers=numbers("errors", ">", 0)) == ["s-broken"]
    # s-paris runs from 1.0 s to 3.0 + 1.2 s.
    assert sessions(store, project, numbers=numbers("duration", ">", 3.1)) == ["s-paris"]
    assert sessions(store, project, numbers=numbers("duration", "<=", 3.1)) == [
        "s-broken",
        "s-tokyo",
    ]
    assert traces(store, project, numbers=numbers("duration", ">=", 0.8)) == [tid(3), tid(2)]
    assert traces(store, project, numbers=numbers("tokens", ">", 250)) == [tid(3)]
    assert traces(store, project, numbers=numbers("cost", ">", 0.015)) == [tid(3), tid(2)]
    # Combined with each other, with a search and with other filters.
    both = [
        NumericFilter(field="turns", op=">", value=1),
        NumericFilter(field="cost", op="<", value=1),
    ]
    assert sessions(store, project, numbers=both) == ["s-paris"]
    assert sessions(store, project, q="lovely", numbers=numbers("errors", "=", 0)) == ["s-paris"]
    assert sessions(store, project, q="lovely", numbers=numbers("errors", ">", 0)) == []
    assert sessions(store, project, user_id="u2", numbers=numbers("turns", "<", 2)) == ["s-tokyo"]
    assert traces(store, project, q="marseille", numbers=numbers("duration", ">", 1)) == [tid(3)]
    assert traces(store, project, status="error", numbers=numbers("tokens", "=", 0)) == [tid(5)]


def test_deletion_takes_words_out_of_the_index(store: Store):
    project = _filled(store)
    store.delete_sessions(project, ["s-paris"])
    assert sessions(store, project, q="marseille") == []
    assert traces(store, project, q="marseille") == [tid(9)]
    store.delete_traces(project, [tid(9)])
    assert traces(store, project, q="marseille") == []
    assert store.find_in_session(project, "s-paris", "marseille") == []
    # Written again, found again.
    store.write_spans(project, conversation())
    assert sessions(store, project, q="marseille") == ["s-paris"]


def test_a_retried_export_is_indexed_once_and_late_spans_join(store: Store):
    project = _filled(store)
    store.write_spans(project, conversation())
    assert len(store.find_in_session(project, "s-paris", "marseille")) == 1
    store.write_spans(project, [record(3, 31, 30, start=3100, input='"a late span about Avignon"')])
    assert sessions(store, project, q="avignon") == ["s-paris"]
    assert [m.span_id for m in store.find_in_session(project, "s-paris", "avignon")] == [
        f"{31:016x}"
    ]


def test_projects_search_only_their_own(store: Store):
    project = _filled(store)
    other = store.create_project("other").id
    store.write_spans(other, [record(1, 10, session="s-paris", input='"marseille elsewhere"')])
    assert sessions(store, other, q="marseille") == ["s-paris"]
    assert [m.trace_id for m in store.find_in_session(other, "s-paris", "lovely")] == []
    assert traces(store, project, q="elsewhere") == []
