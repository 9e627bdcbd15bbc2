"""The kinds of span Threadline distinguishes (``threadline.span.type``)."""

from __future__ import annotations

import enum
import logging

from threadline import semconv

logger = logging.getLogger("threadline")


class SpanType(enum.StrEnum):
    """What a span represents; the server uses it to pick how to render the span.

    The values are the ones Laminar uses for ``lmnr.span.type`` (see ``semconv.SPAN_TYPES``),
    so traces from either SDK read the same. A ``StrEnum`` so that plain strings
    (``span_type="LLM"``) and members are interchangeable.
    """

    DEFAULT = "DEFAULT"
    LLM = "LLM"
    TOOL = "TOOL"
    EXECUTOR = "EXECUTOR"
    EVALUATOR = "EVALUATOR"
    EVALUATION = "EVALUATION"


def normalize_span_type(value: SpanType | str | None) -> str:
    """Return the attribute value for ``value``; unknown names are kept (upper-cased) with a
    warning rather than rejected, because a typo in a span type must not break the program."""
    if value is None:
        return SpanType.DEFAULT.value
    text = str(value).upper()
    if text not in semconv.SPAN_TYPES:
        logger.warning("threadline: unknown span type %r (known: %s)", value, semconv.SPAN_TYPES)
    return text
