"""An evaluator's prompt filled in, and the JSON schema its judge must answer in.

The judge answers ``{"reasoning": "...", "score": ...}``: reasoning first, so that a
model writing left to right thinks before it scores; the score's JSON type follows
the evaluator's score type (a number, true/false, or one of its labels).
"""

from __future__ import annotations

from typing import Any

from threadline.server.model import ScoreConfig

SYSTEM = (
    "You are an evaluator of conversations between users and an AI application. "
    "Judge only from the transcript you are given. Answer in the JSON format required: "
    "first your reasoning (brief), then the score."
)


def fill(template: str, transcript: str, input: str = "", output: str = "") -> str:
    """The template with {{transcript}}, {{input}} and {{output}} replaced; without a
    {{transcript}} placeholder the transcript follows the instructions. Replaced in one
    pass, so text in a transcript that looks like a placeholder stays as it is."""
    values = {"{{transcript}}": transcript, "{{input}}": input, "{{output}}": output}
    out: list[str] = []
    rest = template
    while rest:
        found = [(rest.find(key), key) for key in values if key in rest]
        if not found:
            out.append(rest)
            break
        at, key = min(found)
        out += [rest[:at], values[key]]
        rest = rest[at + len(key) :]
    filled = "".join(out)
    if "{{transcript}}" not in template:
        filled += f"\n\nTranscript:\n{transcript}"
    return filled


def score_schema(score: ScoreConfig) -> dict[str, Any]:
    """The ``response_format`` of a chat completion asking for this score."""
    value: dict[str, Any]
    if score.data_type == "boolean":
        value = {"type": "boolean"}
    elif score.data_type == "categorical":
        value = {"type": "string", "enum": list(score.labels)}
    else:
        value = {"type": "number"}
        bounds = []
        if score.min_value is not None:
            bounds.append(f"at least {score.min_value:g}")
        if score.max_value is not None:
            bounds.append(f"at most {score.max_value:g}")
        if bounds:
            value["description"] = "A number " + " and ".join(bounds) + "."
    if score.description:
        value["description"] = (score.description + " " + value.get("description", "")).strip()
    return {
        "type": "json_schema",
        "json_schema": {
            "name": "evaluation",
            "strict": True,
            "schema": {
                "type": "object",
                "properties": {"reasoning": {"type": "string"}, "score": value},
                "required": ["reasoning", "score"],
                "additionalProperties": False,
            },
        },
    }
