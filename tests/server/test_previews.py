"""A trace's input preview is the turn's new user message (server/previews.py)."""

from __future__ import annotations

import json

from threadline.server.model import PREVIEW_CHARS
from threadline.server.previews import input_preview


def _chat(*messages: tuple[str, str]) -> str:
    return json.dumps([{"role": role, "content": content} for role, content in messages])


def test_a_chat_history_previews_as_its_new_messages_however_long() -> None:
    history = [("system", "Be brief. " * 300)]
    for n in range(20):
        history += [("user", f"question {n} " * 40), ("assistant", f"answer {n} " * 40)]
    text = _chat(*history, ("user", "the newest question"))
    assert len(text) > 10 * PREVIEW_CHARS
    assert json.loads(input_preview(text)) == [{"role": "user", "content": "the newest question"}]
    # A tool result after the last reply is new input too; the system prompt never is.
    text = _chat(("system", "s"), ("user", "q"), ("assistant", "a"), ("tool", "t"), ("user", "u"))
    assert [m["role"] for m in json.loads(input_preview(text))] == ["tool", "user"]


def test_instructions_alone_are_no_input() -> None:
    assert input_preview(_chat(("system", "You are a weather bot."))) is None


def test_arguments_preview_as_their_one_text_beside_the_trace_ids() -> None:
    named = json.dumps({"conversation_id": "c1", "user_message": "hi", "history": []})
    assert input_preview(named, ["c1"]) == '"hi"'
    assert input_preview(json.dumps(["c1", "hi"]), ["c1"]) == '"hi"'  # in order
    # Two texts, neither an id: no guess, the arguments as sent.
    both = json.dumps({"a": "x", "b": "y"})
    assert input_preview(both, ["c1"]) == both
    # Arguments holding a chat read as that chat.
    wrapped = json.dumps({"conversation_id": "c1", "messages": [{"role": "user", "content": "q"}]})
    assert json.loads(input_preview(wrapped, ["c1"])) == [{"role": "user", "content": "q"}]


def test_other_inputs_keep_their_first_characters_as_sent() -> None:
    assert input_preview(None) is None
    assert input_preview('"plain"') == '"plain"'
    assert input_preview("not json " * 500) == ("not json " * 500)[:PREVIEW_CHARS]
    assert input_preview('{"turn": 3}') == '{"turn": 3}'


def test_long_or_odd_messages_stay_within_bounds_and_storable() -> None:
    huge = _chat(("user", "ü" * 50_000))
    preview = input_preview(huge)
    assert len(preview) <= PREVIEW_CHARS and json.loads(preview)[0]["content"].startswith("üüü")
    controls = _chat(("user", "\x01" * 5000))
    assert len(input_preview(controls)) <= PREVIEW_CHARS
    lone = '[{"role": "user", "content": "bad \\ud800 text"}]'
    preview = input_preview(lone)
    preview.encode("utf-8")  # a lone surrogate travels escaped
    assert json.loads(preview)[0]["content"] == "bad \ud800 text"
