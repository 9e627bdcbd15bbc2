"""A project's redaction rules applied to the free text people and SDKs send beside
spans: a score's comment and a note's body, on every route that writes one (the JSON
API, Langfuse's routes, the web UI's forms, the LLM judges), before it is stored; and
the reason an evaluation run gives (a judge's answer that did not parse is quoted).

The same compiled redactor as for spans (``redactor.redactor``), so a comment says
``[email]`` where a span's input would. Names, labels, ids and authors are left as
they are: they key or sign the annotation, as a span's ids and names do. A retried
score is redacted the same way, so it still equals the one stored."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from threadline.server.model import NoteIn, ScoreRecord
from threadline.server.redaction.redactor import redactor
from threadline.server.redaction.rules import RedactionRules


def redact_scores(records: Sequence[ScoreRecord], rules: RedactionRules) -> list[ScoreRecord]:
    if not rules.active:
        return list(records)
    apply = redactor(rules)
    return [
        dataclasses.replace(r, comment=apply.text(r.comment)) if r.comment else r for r in records
    ]


def redact_text(text: str | None, rules: RedactionRules) -> str | None:
    return redactor(rules).text(text) if text and rules.active else text


def redact_note(note: NoteIn, rules: RedactionRules) -> NoteIn:
    if not rules.active:
        return note
    return note.model_copy(update={"body": redactor(rules).text(note.body)})
