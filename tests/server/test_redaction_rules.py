"""The redaction rules and detectors, on text: what each built-in detector removes and
what it leaves, user patterns, and the checks that refuse bad rules."""

from __future__ import annotations

import time

import pytest

from threadline.server.errors import BadRequest
from threadline.server.model import SpanRecord
from threadline.server.redaction.detectors import luhn_valid
from threadline.server.redaction.project_rules import ProjectRules
from threadline.server.redaction.redactor import Redactor, redact_spans
from threadline.server.redaction.rules import NO_RULES, RedactionRules, parse
from threadline.server.store import open_store


def redact(text: str, *detectors: str, patterns: tuple[tuple[str, str], ...] = ()) -> str:
    return Redactor(parse(list(detectors), list(patterns))).text(text)


@pytest.mark.parametrize(
    ("detector", "text", "expected"),
    [
        ("email", "mail jane.doe+x@mail.example.co.uk now", "mail [email] now"),
        ("email", '{"to": "a@b.io"}', '{"to": "[email]"}'),
        ("phone", "call +1 415 555 0134 today", "call [phone] today"),
        ("phone", "call +44 20 7946 0958", "call [phone]"),
        ("phone", "or (415) 555-0134.", "or [phone]."),
        ("phone", "or 415-555-0134", "or [phone]"),
        ("card", "card 4111 1111 1111 1111 ok", "card [card] ok"),
        ("card", "card 4111-1111-1111-1111", "card [card]"),
        ("card", "amex 378282246310005", "amex [card]"),
        ("secret", "key sk-proj-abcdefghijklmnopqrstuvwxyz123", "key [secret]"),
        ("secret", "aws AKIAABCDEFGHIJKLMNOP.", "aws [secret]."),
        ("secret", "gh ghp_" + "a" * 36, "gh [secret]"),
        ("secret", "Authorization: Bearer abcdefghijklmnop1234", "Authorization: Bearer [secret]"),
        ("secret", '{"api_key": "zzzzzz123456"}', '{"api_key": "[secret]"}'),
        ("secret", "password=hunter2222 next", "password=[secret] next"),
        ("secret", "tl_" + "x" * 43, "[secret]"),
    ],
)
def test_each_detector_removes_what_it_names(detector: str, text: str, expected: str) -> None:
    assert redact(text, detector) == expected


@pytest.mark.parametrize(
    ("detector", "text"),
    [
        ("email", "no at sign here, just words"),
        ("email", "user@localhost is not an address with a domain"),
        ("phone", "released 2026-12-05, build 12345, version 1.2.3"),
        ("phone", "order 4155550134567 is too long for a phone"),
        # Fails the Luhn check: an order number, not a card.
        ("card", "order 4111 1111 1111 1112"),
        ("card", "12 digits 411111111111 are too few"),
        ("card", "pi 3.14111111111111111111 is a number"),
        ("secret", "the tokens were counted: 512 input tokens"),
        ("secret", "sk-short"),
    ],
)
def test_detectors_leave_what_they_do_not_name(detector: str, text: str) -> None:
    assert redact(text, detector) == text


def test_luhn() -> None:
    assert luhn_valid("4111111111111111") and luhn_valid("5500005555555559")
    assert not luhn_valid("4111111111111112")


def test_only_the_chosen_detectors_run() -> None:
    text = "a@b.io, 4111 1111 1111 1111, +1 415 555 0134"
    assert redact(text, "email") == "[email], 4111 1111 1111 1111, +1 415 555 0134"
    assert redact(text, "card", "phone") == "a@b.io, [card], [phone]"
    assert redact(text, "email", "card", "phone") == "[email], [card], [phone]"


def test_user_patterns_label_what_they_remove() -> None:
    rules = (("ticket", r"TCK-\d+"), ("codename", r"(?i)project\s+falcon"))
    assert (
        redact("TCK-12 is about Project  Falcon; TCK-9 too", patterns=rules)
        == "[ticket] is about [codename]; [ticket] too"
    )
    # Anchors keep their meaning in each text.
    assert redact("hello\nworld", patterns=(("start", "^hello"),)) == "[start]\nworld"


def test_a_pattern_cannot_backtrack_catastrophically() -> None:
    # (a+)+$ takes Python's re exponential time on "aaa...b"; RE2 answers in linear time.
    redactor = Redactor(parse([], [("evil", r"(a+)+$")]))
    text = "a" * 100_000 + "b"
    began = time.perf_counter()
    assert redactor.text(text) == text
    assert time.perf_counter() - began < 1.0


@pytest.mark.parametrize(
    ("detectors", "patterns", "says"),
    [
        (["emails"], [], "unknown detector(s) emails"),
        ([], [("ticket", r"(a)\1")], "not an RE2 regular expression"),
        ([], [("look", r"(?=x)y")], "not an RE2 regular expression"),
        ([], [("Bad Name", "x")], "pattern name 'Bad Name'"),
        ([], [("t", "x"), ("t", "y")], "two patterns named 't'"),
        ([], [("empty", "")], "1 to 500 characters"),
        ([], [("long", "x" * 501)], "1 to 500 characters"),
        ([], [("any", "x*")], "matches the empty text"),
        ([], [(f"p{i}", "x") for i in range(33)], "at most 32"),
        ([], [("huge", "((((x{100}){100}){100}){100})")], "not an RE2 regular expression"),
    ],
)
def test_bad_rules_are_refused_with_the_reason(detectors, patterns, says) -> None:
    with pytest.raises(BadRequest) as refused:
        parse(detectors, patterns)
    assert says in refused.value.message


def test_rules_are_plain_data_that_round_trip() -> None:
    rules = parse(["phone", "email"], [("ticket", r"TCK-\d+")])
    assert rules.detectors == ("email", "phone")  # one order, whatever was asked
    assert RedactionRules.from_json(rules.to_json()) == rules
    assert hash(rules) == hash(RedactionRules.from_json(rules.to_json()))
    assert NO_RULES.to_json() == "" and RedactionRules.from_json("") == NO_RULES


def _span(**fields) -> SpanRecord:
    base = {
        "trace_id": "0" * 31 + "1",
        "span_id": "0" * 15 + "1",
        "parent_span_id": None,
        "name": "turn",
        "kind": "INTERNAL",
        "start_ns": 1,
        "end_ns": 2,
        "status": "ok",
    }
    return SpanRecord(**{**base, **fields})


def test_every_text_of_a_span_is_redacted_and_ids_are_kept() -> None:
    resource = {"service.name": "app", "owner": "ops@example.com"}
    span = _span(
        input='{"q": "mail me at a@b.io"}',
        output="sure, a@b.io",
        status_message="failed for a@b.io",
        attributes={"note": "a@b.io", "list": ["x", "c@d.io"], "n": 5, "map": {"k": "e@f.io"}},
        events=[{"name": "exception", "time_ns": 1, "attributes": {"message": "a@b.io"}}],
        metadata={"contact": "a@b.io"},
        resource=resource,
        session_id="a@b.io",
        user_id="a@b.io",
    )
    other = _span(span_id="0" * 15 + "2", resource=resource)
    redact_spans([span, other], parse(["email"], []))
    assert span.input == '{"q": "mail me at [email]"}' and span.output == "sure, [email]"
    assert span.status_message == "failed for [email]"
    assert span.attributes == {
        "note": "[email]",
        "list": ["x", "[email]"],
        "n": 5,
        "map": {"k": "[email]"},
    }
    assert span.events[0]["attributes"] == {"message": "[email]"}
    assert span.metadata == {"contact": "[email]"}
    assert span.resource["owner"] == "[email]" and other.resource is span.resource
    assert resource["owner"] == "ops@example.com"  # the decoded original is not changed
    # Ids key the data: kept as sent.
    assert (span.session_id, span.user_id) == ("a@b.io", "a@b.io")


def test_no_rules_change_nothing() -> None:
    span = _span(input="a@b.io")
    redact_spans([span], NO_RULES)
    assert span.input == "a@b.io"


def test_the_attribute_an_input_came_from_is_redacted_as_the_input() -> None:
    text = '[{"role": "user", "content": "I am a@b.io"}]'
    span = _span(
        input=text,
        output="ok",
        input_source="gen_ai.input.messages",
        attributes={"gen_ai.input.messages": text, "other": "c@d.io"},
    )
    redact_spans([span], parse(["email"], []))
    assert span.input == '[{"role": "user", "content": "I am [email]"}]'
    assert span.attributes == {"gen_ai.input.messages": span.input, "other": "[email]"}


def test_project_rules_answer_from_the_cache_without_a_store_read(tmp_path):
    """The ingest path asks ``cached`` on the event loop: it must never read the store,
    and it hands back exactly what ``get`` read while that is fresh."""
    store = open_store(f"sqlite://{tmp_path / 'rules.db'}")
    try:
        project = store.create_project("p").id
        store.set_redaction_rules(project, parse(["email"], []))
        reads: list[int] = []
        read = store.redaction_rules

        def counted(project_id: int) -> RedactionRules:
            reads.append(project_id)
            return read(project_id)

        store.redaction_rules = counted  # type: ignore[method-assign]
        rules = ProjectRules(store, fresh_s=0.2)
        assert rules.cached(project) is None
        assert reads == []
        got = rules.get(project)
        assert reads == [project]
        assert rules.cached(project) is got
        assert rules.get(project) is got
        assert reads == [project]
        time.sleep(0.25)
        assert rules.cached(project) is None
        assert reads == [project]
        rules.get(project)
        assert reads == [project, project]
    finally:
        store.close()
