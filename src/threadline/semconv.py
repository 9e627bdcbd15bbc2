"""Attribute keys Threadline writes on spans.

The SDK writes these keys and the server's normaliser reads them first (before the
keys of other conventions: see ``threadline.server.ingest.conventions``). They live
here, in one module without dependencies, so that both sides agree by construction.
"""

from typing import Final

PREFIX: Final = "threadline."

# Trace-level association. A span carrying any of these assigns its whole trace.
SESSION_ID: Final = "threadline.session.id"
USER_ID: Final = "threadline.user.id"
# One attribute per metadata key: ``threadline.metadata.<key>``; values that are not
# OTel primitives are written as JSON strings.
METADATA_PREFIX: Final = "threadline.metadata."
# A list of strings.
TAGS: Final = "threadline.tags"

# Span-level fields.
SPAN_TYPE: Final = "threadline.span.type"  # one of SpanType's values
SPAN_INPUT: Final = "threadline.span.input"  # JSON string
SPAN_OUTPUT: Final = "threadline.span.output"  # JSON string

# W3C baggage keys that carry the trace-level association across process boundaries.
BAGGAGE_SESSION_ID: Final = SESSION_ID
BAGGAGE_USER_ID: Final = USER_ID

# Values of SPAN_TYPE; the same names Laminar uses for ``lmnr.span.type``.
SPAN_TYPES: Final = ("DEFAULT", "LLM", "TOOL", "EXECUTOR", "EVALUATOR", "EVALUATION")
