"""Scores as the SDK sends them: checked on the caller's thread, targets read from context.

A score names what it judges: a session, a trace, or a span of a trace. The
``score_current_*`` forms read the ids from the active OpenTelemetry context (the current
span) and from the trace's association (the session set with ``set_trace_session_id``,
``@observe(session_id=...)`` or a continued trace's carrier). The checks here are the
cheap ones the server would otherwise refuse a whole request for; the server still
checks everything (configured ranges and labels included).
"""

from __future__ import annotations

import math
import re
import uuid
from typing import Any

from opentelemetry import trace

from threadline.sdk.context import get_association

_HEX = re.compile(r"^[0-9a-f]+$")
#: What the server accepts (its ``ScoreIn``); longer is refused here, not there.
MAX_NAME = 200
MAX_ID = 200
MAX_COMMENT = 10_000
SOURCE = "sdk"


class ScoreError(ValueError):
    """A score that cannot be sent as given; the message says why."""


def build(
    name: str,
    value: bool | float | str,
    *,
    session_id: str | None = None,
    trace_id: str | None = None,
    span_id: str | None = None,
    comment: str | None = None,
    score_id: str | None = None,
) -> dict[str, Any]:
    """The JSON body of one score for ``POST /api/v1/scores``, or ``ScoreError``."""
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        raise ScoreError(f"a score name is text of 1 to {MAX_NAME} characters, not {name!r}")
    if isinstance(value, bool | str):
        pass
    elif isinstance(value, int | float) and math.isfinite(value):
        value = float(value)
    else:
        raise ScoreError(
            f"score {name!r}: the value must be a finite number, True/False or a label, "
            f"not {value!r}"
        )
    if isinstance(value, str) and not value.strip():
        raise ScoreError(f"score {name!r}: a label cannot be empty")
    trace_hex = _hex_id(trace_id, 32, "trace_id", name)
    span_hex = _hex_id(span_id, 16, "span_id", name)
    if span_hex and not trace_hex:
        raise ScoreError(f"score {name!r}: a span_id needs its trace_id")
    if session_id is not None and (not isinstance(session_id, str) or not session_id):
        raise ScoreError(f"score {name!r}: session_id must be non-empty text")
    if not session_id and not trace_hex:
        raise ScoreError(f"score {name!r} names nothing to score: give session_id or trace_id")
    if comment is not None and (not isinstance(comment, str) or len(comment) > MAX_COMMENT):
        raise ScoreError(f"score {name!r}: a comment is text of at most {MAX_COMMENT} characters")
    if score_id is not None and (not isinstance(score_id, str) or not 0 < len(score_id) <= MAX_ID):
        raise ScoreError(f"score {name!r}: an id is text of 1 to {MAX_ID} characters")
    body: dict[str, Any] = {
        "id": score_id or uuid.uuid4().hex,  # made here, so a retried request replaces it
        "name": name,
        "value": value,
        "source": SOURCE,
    }
    for key, field in (
        ("session_id", session_id),
        ("trace_id", trace_hex),
        ("span_id", span_hex),
        ("comment", comment),
    ):
        if field is not None:
            body[key] = field
    return body


def current_ids() -> tuple[str | None, str | None, str | None]:
    """(trace id, span id, session id) of the current context; Nones outside a span."""
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None, None, None
    association = get_association()
    session_id = (
        association.session_id
        if association is not None and association.trace_id == span_context.trace_id
        else None
    )
    return (
        trace.format_trace_id(span_context.trace_id),
        trace.format_span_id(span_context.span_id),
        session_id,
    )


def _hex_id(given: str | None, digits: int, what: str, name: str) -> str | None:
    if given is None:
        return None
    text = given.lower() if isinstance(given, str) else ""
    if len(text) != digits or not _HEX.match(text):
        raise ScoreError(f"score {name!r}: {what} {given!r} is not {digits} hex digits")
    return text
