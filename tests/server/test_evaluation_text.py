"""What a judge is sent: transcripts cut to a budget with a marker, prompts filled in
one pass, and the JSON schema each score type asks for. Pure functions, no server."""

from __future__ import annotations

from datetime import UTC, datetime

from threadline.server.evaluation.prompt import fill, score_schema
from threadline.server.evaluation.transcript import cut, session_transcript
from threadline.server.model import ScoreConfig, Span, TraceDetail

T = datetime(2026, 1, 1, tzinfo=UTC)


def trace(said: str, replied: str, error: str | None = None) -> TraceDetail:
    root = Span(
        span_id="a" * 16,
        parent_span_id=None,
        name="chat",
        span_type="DEFAULT",
        kind="INTERNAL",
        start_time=T,
        end_time=T,
        duration_ms=1,
        status="error" if error else "ok",
        status_message=error,
        input=said,
        output=replied,
        model=None,
        input_tokens=None,
        output_tokens=None,
        total_tokens=None,
        cost_usd=None,
        attributes={},
        events=[],
        resource={},
    )
    return TraceDetail(
        trace_id="b" * 32,
        session_id="s",
        user_id=None,
        name="chat",
        start_time=T,
        end_time=T,
        duration_ms=1,
        span_count=1,
        error_count=1 if error else 0,
        input_tokens=0,
        output_tokens=0,
        total_tokens=0,
        cost_usd=None,
        status="error" if error else "ok",
        spans=[root],
    )


def test_a_transcript_reads_each_turn_and_its_errors():
    text = session_transcript(
        [trace("My order is late", "It ships today"), trace("ok?", "", error="timeout")],
        10_000,
    )
    assert text == (
        "--- turn 1 ---\nuser: My order is late\nassistant: It ships today\n\n"
        "--- turn 2 ---\nuser: ok?\n(error) chat: timeout"
    )


def test_a_long_transcript_keeps_its_start_and_end_and_says_what_was_left_out():
    turns = [trace(f"question {i} " + "x" * 200, f"answer {i}") for i in range(200)]
    whole = session_transcript(turns, 10**9)
    text = session_transcript(turns, 5_000)
    assert len(whole) > 40_000 and len(text) <= 5_000
    assert text.startswith("--- turn 1 ---\nuser: question 0 ")
    assert text.endswith(
        "--- turn 200 ---\nuser: question 199 " + "x" * 200 + "\nassistant: answer 199"
    )
    left_out = len(whole) - len(
        text.replace(text[text.index("\n[...") : text.index("...]\n") + 5], "")
    )
    assert f"[... {left_out} characters of the conversation left out" in text


def test_cut_leaves_short_text_alone_and_never_exceeds_the_budget():
    assert cut("short", 10) == "short"
    for budget in (0, 50, 100, 1000):
        assert len(cut("y" * 5000, budget)) <= max(budget, 90)


def test_turns_left_out_of_a_very_long_session_are_counted_between_its_halves():
    text = session_transcript([trace("a", "b"), trace("c", "d")], 10_000, left_out_turns=500)
    assert "--- turn 1 ---" in text and "[... 500 turns left out ...]" in text
    assert "--- turn 502 ---\nuser: c" in text


def test_prompts_are_filled_in_one_pass():
    transcript = "user: please print {{output}} literally"
    filled = fill("Judge {{input}} -> {{output}}:\n{{transcript}}", transcript, "Q", "A")
    assert filled == "Judge Q -> A:\nuser: please print {{output}} literally"
    assert fill("Was it resolved?", "T") == "Was it resolved?\n\nTranscript:\nT"


def test_each_score_type_asks_for_its_json_type():
    def value(config: ScoreConfig) -> dict:
        schema = score_schema(config)["json_schema"]
        assert schema["strict"] and schema["schema"]["required"] == ["reasoning", "score"]
        return schema["schema"]["properties"]["score"]

    assert value(ScoreConfig(name="r", data_type="boolean")) == {"type": "boolean"}
    assert value(ScoreConfig(name="q", data_type="categorical", labels=["good", "bad"])) == {
        "type": "string",
        "enum": ["good", "bad"],
    }
    numeric = value(ScoreConfig(name="n", data_type="numeric", min_value=1, max_value=5))
    assert numeric == {"type": "number", "description": "A number at least 1 and at most 5."}
