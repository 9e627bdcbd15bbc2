"""A stored preview read as text (server/preview_text.py): what was said, cut JSON
closed where it was cut, lone surrogates made U+FFFD; the web UI's one line of it."""

from __future__ import annotations

import json

from threadline.server.preview_text import PREVIEW_CHARS, readable
from threadline.server.web.present import preview


def _chat(*messages: tuple[str, str]) -> str:
    return json.dumps([{"role": role, "content": content} for role, content in messages])


def test_what_was_said_is_read_out_of_its_json() -> None:
    assert readable(None) is None
    assert readable("") == ""
    assert readable('"My invoice is wrong"') == "My invoice is wrong"
    assert readable('{"reply": "Merci, Montr\\u00e9al"}') == "Merci, Montréal"
    assert readable(_chat(("user", "hi"), ("assistant", "yo"), ("user", "bye"))) == "bye"
    assert readable(_chat(("assistant", "only a reply"))) == "only a reply"
    calls = [{"role": "assistant", "content": "", "tool_calls": [{"name": "f", "arguments": "{}"}]}]
    assert readable(json.dumps(calls)) == "→ f({})"
    assert readable('{"turn": 3, "ok": true}') == '{"turn": 3, "ok": true}'
    assert readable("plain text, not JSON") == "plain text, not JSON"
    assert readable("[INFO] a log line") == "[INFO] a log line"
    assert readable('"a \\ud800 lone surrogate"') == "a \ufffd lone surrogate"
    assert readable('"a pair \\ud83d\\ude00"') == "a pair \U0001f600"


def test_json_cut_at_the_bound_reads_as_its_text_up_to_the_cut() -> None:
    answer = 'Said "this" and \\ that, in Montréal \U0001f600. ' * 100
    for stored in (
        _chat(("assistant", answer)),
        json.dumps({"reply": answer}),
        json.dumps(answer),
        json.dumps(answer, ensure_ascii=True),  # escapes (a pair too) to cut inside
    ):
        for cut in range(PREVIEW_CHARS, PREVIEW_CHARS + 13):
            text = readable(stored[:cut])
            assert text is not None and text.endswith("…"), (cut, text)
            said = text[:-1].replace("\ufffd", "")  # a pair cut in two: its first half
            assert answer.startswith(said) and len(said) > PREVIEW_CHARS // 3, (cut, text)


def test_json_cut_anywhere_closes_and_keeps_what_was_whole() -> None:
    tail = json.dumps(
        {"k": [1, 2.5, True, None, {"x": "y\\u0041"}], "said": 'a \\\\ b "c"', "n": -12}
    )
    for at in range(len(tail)):
        # A filler first, so that the bound falls at ``at`` in the tail.
        filler = "f" * (PREVIEW_CHARS - len('[{"filler": "", "tail": ') - at)
        stored = f'[{{"filler": "{filler}", "tail": {tail}}}]'[:PREVIEW_CHARS]
        text = readable(stored)
        assert text is not None and text.endswith("…") and filler in text, (at, text)
        assert '"tail"' in text or at == 0, (at, text)
    # The cut falls in a key: the members before it stay.
    assert readable('{"a": "b", "long_ke'.ljust(PREVIEW_CHARS, "y")) == "b…"
    # In an escaped backslash: it stays whole; in an escape: the escape is dropped.
    a = "a" * (PREVIEW_CHARS - 4)
    assert readable(f'"a{a}\\\\') == f"a{a}\\…"
    assert readable(f'"{a}\\u0') == f"{a}…"
    assert readable(f'"aa{a}\\') == f"aa{a}…"
    # Text that is not JSON is shown as it is, however long.
    assert readable("{not json " * 300) == "{not json " * 300


def test_the_web_ui_shows_one_line_of_the_same_text() -> None:
    stored = _chat(("user", "line one\n\n  line   two"))
    assert readable(stored) == "line one\n\n  line   two"
    assert preview(stored) == "line one line two"
    assert preview(stored, limit=8) == "line on…"
    assert preview(None) == ""
