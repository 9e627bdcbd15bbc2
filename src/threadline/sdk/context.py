"""Trace-level association: the session, user, metadata and tags of a whole trace.

Sessions are trace-level (``docs/conventions.md``, ``docs/architecture.md``): a user calls
``Threadline.set_trace_session_id(conversation_id)`` somewhere inside a turn and expects
the whole turn to belong to the conversation. The server already assigns a whole trace
to a session if *any* of its spans carries the id, so the SDK's job is to put the id on
as many spans as it cheaply can:

* the span that is current when ``set_trace_*`` is called;
* every span started afterwards in that context, whoever starts it (our decorator, an
  LLM client instrumentor, a web framework): a :class:`TraceAssociationProcessor`
  installed on the tracer provider stamps them in ``on_start``;
* our own spans that are still open (the root, typically) are re-stamped when they end.

The association lives in the OpenTelemetry :class:`~opentelemetry.context.Context` (a
contextvar), so it follows the span context wherever OTel propagates it: into child
spans, asyncio tasks, ``asyncio.to_thread`` and ``contextvars.copy_context().run``. It is
a *mutable* object shared by every context of the trace in this process, so a session id
set deep inside a helper is still seen by the helper's later siblings; a new trace gets
a new object, so one turn's session never leaks into the next turn.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.util.types import AttributeValue

from threadline import semconv
from threadline.sdk.serialize import to_attribute_value

logger = logging.getLogger("threadline")

_ASSOCIATION_KEY = otel_context.create_key("threadline.trace_association")
#: Instrumentation scope of the spans this SDK creates itself.
TRACER_NAME = "threadline"


class TraceAssociation:
    """Session, user, metadata and tags of one trace, as seen by this process.

    Updates are rare and readers are many (every span start), so updates replace values
    under a lock (copy-on-write) and readers use a cached attribute dict keyed by
    ``version`` without locking. One lock serves all instances: a root span creates an
    instance on every call, updates almost never happen, so a lock per trace would be
    paid for on the hot path and never contended.
    """

    __slots__ = (
        "_cache",
        "_cache_version",
        "metadata",
        "session_id",
        "tags",
        "trace_id",
        "user_id",
        "version",
    )
    _lock = threading.Lock()

    def __init__(
        self, trace_id: int, session_id: str | None = None, user_id: str | None = None
    ) -> None:
        self.trace_id = trace_id
        self.session_id = session_id
        self.user_id = user_id
        self.metadata: Mapping[str, Any] = {}
        self.tags: tuple[str, ...] = ()
        # Bumped on every change; an open span remembers the version it was stamped with
        # and is re-stamped at its end only if the association changed meanwhile.
        # Version 0 means "nothing set", which lets the common case skip all work.
        self.version = 0 if session_id is None and user_id is None else 1
        self._cache: dict[str, AttributeValue] = {}
        self._cache_version = -1

    def update(
        self,
        *,
        session_id: str | None = None,
        user_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        tags: Iterable[str] | None = None,
    ) -> None:
        """Set the given fields; ``None`` leaves a field unchanged. Metadata is merged
        key by key; tags replace the trace's tag list."""
        with self._lock:
            if session_id is not None:
                self.session_id = str(session_id)
            if user_id is not None:
                self.user_id = str(user_id)
            if metadata:
                self.metadata = {**self.metadata, **{str(k): v for k, v in metadata.items()}}
            if tags is not None:
                self.tags = _unique(str(tag) for tag in tags)
            self.version += 1

    def attributes(self) -> dict[str, AttributeValue]:
        """The span attributes this association stands for (cached per version)."""
        if self._cache_version != self.version:
            attrs: dict[str, AttributeValue] = {}
            if self.session_id is not None:
                attrs[semconv.SESSION_ID] = self.session_id
            if self.user_id is not None:
                attrs[semconv.USER_ID] = self.user_id
            for key, value in self.metadata.items():
                attrs[semconv.METADATA_PREFIX + key] = to_attribute_value(value)
            if self.tags:
                attrs[semconv.TAGS] = list(self.tags)
            self._cache, self._cache_version = attrs, self.version
        return self._cache

    def attributes_with(self, own_tags: tuple[str, ...] = ()) -> dict[str, AttributeValue]:
        """A new dict: the association's attributes, with ``own_tags`` (a span's own tags)
        kept alongside the trace's tags in ``threadline.tags``."""
        attrs = dict(self.attributes()) if self.version else {}  # version 0: nothing set
        if own_tags:
            attrs[semconv.TAGS] = list(_unique((*self.tags, *own_tags)))
        return attrs

    def stamp(self, span: trace.Span, own_tags: tuple[str, ...] = ()) -> None:
        """Write the association onto ``span``."""
        attrs = self.attributes_with(own_tags) if own_tags else self.attributes()
        if attrs:
            span.set_attributes(attrs)


def get_association(ctx: Context | None = None) -> TraceAssociation | None:
    """The association stored in ``ctx`` (default: the current context), if any."""
    value = otel_context.get_value(_ASSOCIATION_KEY, ctx)
    return value if isinstance(value, TraceAssociation) else None


def with_association(association: TraceAssociation, ctx: Context | None = None) -> Context:
    """A copy of ``ctx`` carrying ``association``."""
    return otel_context.set_value(_ASSOCIATION_KEY, association, ctx)


def update_current_trace(caller: str, **fields: Any) -> bool:
    """Apply ``fields`` (see :meth:`TraceAssociation.update`) to the current trace.

    Returns False (and logs a warning) outside a span context, where there is no trace to
    apply them to; the caller's program continues either way.
    """
    span = trace.get_current_span()
    span_context = span.get_span_context()
    if not span_context.is_valid:
        logger.warning(
            "threadline: %s called outside a span context; ignored. Call it inside an "
            "@observe'd function or a Threadline.start_as_current_span block.",
            caller,
        )
        return False
    association = get_association()
    if association is None or association.trace_id != span_context.trace_id:
        # A span started by someone else (a web framework's instrumentation, plain OTel):
        # no Threadline association yet. Attach one for the rest of this span's context.
        # The token is deliberately not kept: when the enclosing span's own context is
        # detached (OTel's use_span does this on exit), ours goes with it.
        association = TraceAssociation(span_context.trace_id)
        otel_context.attach(with_association(association))
    association.update(**fields)
    if span.is_recording():
        existing = getattr(span, "attributes", None) or {}
        own = existing.get(semconv.TAGS) or ()
        association.stamp(span, tuple(own) if "tags" in fields else ())
    return True


class TraceAssociationProcessor(SpanProcessor):
    """Stamps the trace association of the parent context on every span that starts,
    then hands spans to ``exporting`` (the processor that exports them).

    Stamping is what makes spans from third-party instrumentation (OpenAI, Anthropic,
    HTTP clients) carry the session and user without knowing about Threadline. Wrapping
    the exporting processor, rather than registering two processors, saves the provider
    a round of calls on every span start and end.
    """

    def __init__(self, exporting: SpanProcessor) -> None:
        self.exporting = exporting
        # A processor cannot be removed from a TracerProvider we do not own, so shutdown
        # makes it inert.
        self.active = True

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        if not self.active:
            return
        try:
            scope = span.instrumentation_scope
            if scope is None or scope.name != TRACER_NAME:  # ours are stamped by SpanRun
                association = get_association(parent_context)
                if association is not None and association.trace_id == span.context.trace_id:
                    association.stamp(span)
        except Exception:  # a processor must never raise into the code starting a span
            logger.debug("threadline: failed to stamp trace association", exc_info=True)
        self.exporting.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        if self.active:
            self.exporting.on_end(span)

    def shutdown(self) -> None:
        if self.active:
            self.active = False
            self.exporting.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.exporting.force_flush(timeout_millis) if self.active else True


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    """Deduplicate, keeping first-seen order (tags read better in the order given)."""
    return tuple(dict.fromkeys(items))
