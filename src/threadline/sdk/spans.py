"""One Threadline span from its start to its single end.

:class:`SpanRun` is shared by ``@observe`` and ``Threadline.start_as_current_span`` so
that both write the same attributes the same way, and so that "a span ends exactly once"
is enforced in one place (``finish`` is idempotent), whatever mix of exceptions,
early ``close()`` and garbage collection a generator goes through.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from threadline import semconv
from threadline.sdk.context import TraceAssociation, get_association, with_association
from threadline.sdk.serialize import to_json

logger = logging.getLogger("threadline")


# Spans whose output was set explicitly. A weak set rather than reading the span's
# attributes back: that lookup costs about as much as writing an attribute, and this
# check runs at the end of every span while the set is almost always empty.
_EXPLICIT_OUTPUT: weakref.WeakSet[trace.Span] = weakref.WeakSet()


def set_output(span: trace.Span, output: Any) -> None:
    """Record ``output`` on ``span`` so that the function's return value won't replace it."""
    if span.is_recording():
        span.set_attribute(semconv.SPAN_OUTPUT, to_json(output))
        _EXPLICIT_OUTPUT.add(span)


class _Missing:
    """Sentinel type: "no output" (``None`` is a legitimate output)."""

    def __repr__(self) -> str:
        return "<missing>"


MISSING: Final = _Missing()


@dataclass(frozen=True, slots=True)
class SpanOptions:
    """What a span records, resolved once (at decoration time for ``@observe``)."""

    name: str | None = None
    session_id: str | None = None
    user_id: str | None = None
    metadata: Mapping[str, Any] | None = None
    tags: tuple[str, ...] = ()
    span_type: str = "DEFAULT"
    ignore_input: bool = False
    ignore_output: bool = False
    ignore_inputs: frozenset[str] = frozenset()
    input_formatter: Callable[..., Any] | None = None
    output_formatter: Callable[[Any], Any] | None = None


class SpanRun:
    """A started span, the context that makes it current, and its trace association."""

    __slots__ = ("_ended", "_stamped_version", "association", "context", "options", "span")

    def __init__(
        self,
        span: trace.Span,
        context: otel_context.Context,
        association: TraceAssociation,
        options: SpanOptions,
    ) -> None:
        self.span = span
        self.context = context
        self.association = association
        self.options = options
        self._stamped_version = -1
        self._ended = False

    @classmethod
    def start(
        cls,
        tracer: trace.Tracer,
        name: str,
        options: SpanOptions,
        input_value: Callable[[], Any] | None = None,
    ) -> SpanRun:
        """Start a span as a child of the current context (not yet made current).

        ``input_value`` is a thunk so that inputs are only serialised for spans that are
        actually recorded (sampled in, tracing configured). This runs on every call of
        every decorated function, hence the hand-inlined steps.
        """
        parent = otel_context.get_current()
        # Attributes are set after the start, in one set_attributes call: passing them to
        # start_span costs more (the sampler gets its own copy), and the input is only
        # worth serialising if the span is recorded.
        span = tracer.start_span(name, context=parent)
        context = trace.set_span_in_context(span, parent)
        trace_id = span.get_span_context().trace_id
        association = get_association(parent)
        if association is None or association.trace_id != trace_id:
            # A new root, or a remote parent without Threadline baggage: a new trace.
            association = TraceAssociation(trace_id)
            context = with_association(association, context)
        if options.session_id is not None or options.user_id is not None or options.metadata:
            # observe(session_id=...) means "this span and everything after it belongs to
            # the session", i.e. exactly set_trace_session_id called first thing inside.
            association.update(
                session_id=options.session_id, user_id=options.user_id, metadata=options.metadata
            )
        run = cls(span, context, association, options)
        if span.is_recording():
            run._stamped_version = association.version
            attributes = association.attributes_with(options.tags)
            attributes[semconv.SPAN_TYPE] = options.span_type
            if input_value is not None and not options.ignore_input:
                attributes[semconv.SPAN_INPUT] = to_json(input_value())
            span.set_attributes(attributes)
        return run

    def attach(self) -> object:
        """Make this span current; returns the token for :meth:`detach`."""
        return otel_context.attach(self.context)

    @staticmethod
    def detach(token: object) -> None:
        otel_context.detach(token)  # type: ignore[arg-type]

    def finish(self, output: Any = MISSING, error: BaseException | None = None) -> None:
        """Record the outcome and end the span; later calls do nothing.

        Never raises: the span is ended even if recording the outcome fails.
        """
        if self._ended:
            return
        self._ended = True
        span = self.span
        try:
            if span.is_recording():
                if error is not None and not isinstance(error, GeneratorExit):
                    span.record_exception(error)
                    span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
                elif output is not MISSING and not self.options.ignore_output:
                    self._record_output(output)
                if self.association.version != self._stamped_version:
                    # set_trace_* was called after this span started (typically from a
                    # child): carry the trace-level association onto it before export.
                    self._stamp()
        except Exception:
            logger.debug("threadline: failed to record the outcome of a span", exc_info=True)
        finally:
            span.end()

    def _record_output(self, output: Any) -> None:
        # An explicit Threadline.set_span_output() inside the span wins over the return value.
        if _EXPLICIT_OUTPUT and self.span in _EXPLICIT_OUTPUT:
            _EXPLICIT_OUTPUT.discard(self.span)
            return
        formatter = self.options.output_formatter
        if formatter is not None:
            try:
                output = formatter(output)
            except Exception:
                logger.warning(
                    "threadline: output_formatter raised; recording the raw output", exc_info=True
                )
        self.span.set_attribute(semconv.SPAN_OUTPUT, to_json(output))

    def _stamp(self) -> None:
        self._stamped_version = self.association.version
        self.association.stamp(self.span, self.options.tags)
