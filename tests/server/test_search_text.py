"""What of a trace's spans one document of the search index is given
(``search/text.py``'s ``document_text``): each text once, and no text that another span's
longer text holds whole, as long as that one is indexed whole."""

from __future__ import annotations

import re

from threadline.server.search.text import (
    MAX_INDEXED_CHARS,
    QUOTED_MIN_CHARS,
    SPAN_BREAK,
    document_text,
    index_form,
)

RESULT = "a tool's result: the quince orchards of Aragon, their soil and the harvest"
PROMPT = f"Context:\n{RESULT}\n\nQuestion: where do quinces grow best?"


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def test_a_text_another_span_holds_whole_is_left_out():
    text = document_text([["tool", RESULT], ["chat", PROMPT]])
    assert _words(text) == _words(f"tool {SPAN_BREAK} chat {PROMPT}")


def test_every_word_left_out_is_in_a_text_kept():
    """A text held by one that is itself held by a third: the first two go, and the
    third, kept, holds both."""
    middle = f"{RESULT} and the late frost of the spring"
    outer = f"Context:\n{middle}\n\nQuestion: what of them?"
    text = document_text([["a", RESULT], ["b", middle], ["c", outer]])
    assert _words(text).count("quince") == 1
    assert set(_words(RESULT)) | set(_words(middle)) <= set(_words(text))


def test_what_is_kept():
    # A span's own texts (an input that echoes its output): both kept.
    assert _words(document_text([["chat", PROMPT, RESULT]])).count("quince") == 2
    # A text shorter than the bound is not looked for.
    short = RESULT[: QUOTED_MIN_CHARS - 1]
    assert _words(document_text([["tool", short], ["chat", PROMPT]])).count("quince") == 2
    # A span whose text the bound cuts holds nothing whole: what it quotes may be past
    # the cut, and is kept in the other span.
    long_prompt = "x " * (MAX_INDEXED_CHARS // 2) + PROMPT
    text = document_text([["tool", RESULT], ["chat", long_prompt]])
    assert _words(text).count("quince") == 1


def test_the_same_spans_give_the_same_document():
    spans = [["tool", RESULT], ["chat", PROMPT], ["reply", RESULT.upper()]]
    assert document_text(spans) == document_text([list(parts) for parts in spans])


def test_a_text_is_found_held_after_its_beginning_recurs():
    """The container says the text's first words earlier, followed by other words."""
    opening = "Orchard report for the season: "
    result = opening + "the quince harvest was early and plentiful in Aragon this year"
    prompt = f"{opening}nothing yet.\n{result}\nWhat changed?"
    assert _words(document_text([["tool", result], ["chat", prompt]])).count("quince") == 1
    missing = f"{opening}nothing yet.\n{result[:-4]}\nWhat changed?"
    assert _words(document_text([["tool", result], ["chat", missing]])).count("quince") == 2


def test_a_text_said_again_is_kept_once_and_another_as_long_is_kept():
    """Long texts are told apart by their length first, then compared: the same text
    again (another object, as each parse makes) is left out, another text of the same
    length is kept."""
    again = "".join(list(RESULT))
    other = RESULT.replace("quince", "medlar")
    assert again is not RESULT and len(other) == len(RESULT) >= QUOTED_MIN_CHARS
    text = document_text([["tool", RESULT], ["chat", again, other], ["reply", "tool", other]])
    assert text == f"tool\n{RESULT}\n{SPAN_BREAK}\nchat\n{other}\n{SPAN_BREAK}\nreply"


def test_a_document_is_given_cjk_characters_apart_and_no_lone_surrogate():
    # Non-ASCII text without CJK or a surrogate (accents, dashes, box drawing, a flag)
    # is given as it is.
    plain = "Café — naïve ─│ ‘quoted’ \U0001f1e6\U0001f1ff ā"
    assert index_form(plain) is plain
    assert index_form("东京 ramen ─ 店\ud800end") == " 东  京  ramen ─  店  end"
    assert index_form("a\udfffb") == "a b"
    # The spans' texts are joined once, in order, a break between two spans.
    assert document_text([["tool", "─ 东京"], ["chat", "réponse"]]) == (
        f"tool\n─  东  京 \n{SPAN_BREAK}\nchat\nréponse"
    )
