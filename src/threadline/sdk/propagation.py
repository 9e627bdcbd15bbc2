"""Sessions across process boundaries: W3C ``traceparent`` plus ``baggage``.

A turn that starts in a web process and continues in a worker must stay one trace in one
session. ``traceparent`` (W3C Trace Context) carries the trace and parent span;
the session and user travel as W3C Baggage entries (keys ``semconv.BAGGAGE_*``), because
baggage is the standard carrier for "context that is not a span". Both are plain string
dicts, so they fit in HTTP headers, message-queue headers or a JSON job payload.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from opentelemetry import baggage, trace
from opentelemetry import context as otel_context
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from threadline import semconv
from threadline.sdk.context import TraceAssociation, get_association, with_association

logger = logging.getLogger("threadline")

# Explicit rather than opentelemetry.propagate's global propagator: the application may
# have configured B3 or none at all, and our carrier must always be readable by
# continue_trace on the other side.
_PROPAGATOR = CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])


def get_context_carrier() -> dict[str, str]:
    """Headers (``traceparent``, ``baggage``) that let another process continue the
    current trace, session and user. Empty outside a span context; never raises."""
    try:
        ctx = otel_context.get_current()
        association = get_association(ctx)
        if association is not None:
            for key, value in (
                (semconv.BAGGAGE_SESSION_ID, association.session_id),
                (semconv.BAGGAGE_USER_ID, association.user_id),
            ):
                if value is not None:
                    ctx = baggage.set_baggage(key, value, ctx)
        carrier: dict[str, str] = {}
        _PROPAGATOR.inject(carrier, context=ctx)
        return carrier
    except Exception:
        logger.warning("threadline: could not build a context carrier", exc_info=True)
        return {}


@contextmanager
def continue_trace(carrier: Mapping[str, str] | None) -> Iterator[None]:
    """Run the block as part of the trace (and session/user) described by ``carrier``.

    Spans started inside are children of the remote span and carry its session and user.
    A missing or malformed carrier just runs the block outside any trace.
    """
    token = None
    try:
        ctx = _PROPAGATOR.extract(dict(carrier or {}))
        span_context = trace.get_current_span(ctx).get_span_context()
        if span_context.is_valid:
            session = baggage.get_baggage(semconv.BAGGAGE_SESSION_ID, ctx)
            user = baggage.get_baggage(semconv.BAGGAGE_USER_ID, ctx)
            association = TraceAssociation(
                span_context.trace_id,
                session_id=str(session) if session is not None else None,
                user_id=str(user) if user is not None else None,
            )
            ctx = with_association(association, ctx)
        token = otel_context.attach(ctx)
    except Exception:
        logger.warning("threadline: could not continue the trace from %r", carrier, exc_info=True)
    try:
        yield
    finally:
        if token is not None:
            otel_context.detach(token)
