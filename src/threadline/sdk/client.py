"""``Threadline``: initialise the SDK and act on the current span or trace.

Everything here is a class method on a namespace class (``Threadline.flush()``), the
shape Laminar users know. Every public method logs and swallows its own failures: an
observability SDK that raises into the host program is worse than no SDK.
"""

from __future__ import annotations

import atexit
import functools
import logging
import threading
import time
import weakref
from collections.abc import Callable, Collection, Iterable, Mapping
from contextlib import AbstractContextManager
from typing import Any, TypeVar

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter

from threadline.sdk import config, refusals, scores, state
from threadline.sdk.context import TRACER_NAME, TraceAssociationProcessor, update_current_trace
from threadline.sdk.instrument import INSTRUMENTORS, disable_instrumentors, enable_instrumentors
from threadline.sdk.observe import Observer, make_options
from threadline.sdk.propagation import continue_trace, get_context_carrier
from threadline.sdk.serialize import to_attribute_value
from threadline.sdk.span_type import SpanType
from threadline.sdk.spans import MISSING, set_output

logger = logging.getLogger("threadline")

T = TypeVar("T")

# Providers this SDK created. After _reset_for_tests the global provider is still one
# of ours (OTel allows setting it once); it must not be mistaken for the application's.
_OUR_PROVIDERS: weakref.WeakSet[TracerProvider] = weakref.WeakSet()

#: How long shutdown waits for queued scores to be sent before dropping them.
SHUTDOWN_SCORE_TIMEOUT_S = 5.0
# Two threads scoring first at once must start one sender between them.
_SENDER_LOCK = threading.Lock()


def _safely(default: Any) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Decorator: log any exception of an SDK method and return ``default`` instead."""

    def wrap(method: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(method)
        def guarded(*args: Any, **kwargs: Any) -> T:
            try:
                return method(*args, **kwargs)
            except Exception:
                logger.warning("threadline: %s failed", method.__qualname__, exc_info=True)
                return default

        return guarded

    return wrap


class Threadline:
    """The SDK's entry points. Not instantiated: all methods are class methods."""

    # ---- lifecycle -----------------------------------------------------------------

    @classmethod
    @_safely(None)
    def initialize(
        cls,
        project_api_key: str | None = None,
        base_url: str | None = None,
        *,
        disabled: bool | None = None,
        instrument: bool | Collection[str] = True,
        capture_content: bool | None = None,
        service_name: str | None = None,
        span_exporter: SpanExporter | None = None,
        span_processor: SpanProcessor | None = None,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        """Start exporting spans to a Threadline server. Call once, at startup.

        * ``project_api_key``: default ``$THREADLINE_API_KEY``; sent as a Bearer token.
        * ``base_url``: default ``$THREADLINE_BASE_URL`` or ``http://127.0.0.1:8000``;
          spans go to ``{base_url}/v1/traces`` over OTLP/HTTP (protobuf), batched.
        * ``disabled``: default ``$THREADLINE_DISABLED``; if true, decorated code runs
          untouched and no span is created.
        * ``instrument``: enable the installed LLM client instrumentors (True), none
          (False), or only the named ones (e.g. ``["openai"]``).
        * ``capture_content``: record the messages of instrumented OpenAI calls on their
          spans (``gen_ai.input.messages`` / ``gen_ai.output.messages``). Default
          ``$THREADLINE_CAPTURE_CONTENT``, else on unless
          ``$OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` is false.
        * ``span_exporter``: export there instead (synchronously, one span at a time:
          meant for tests and debugging); ``span_processor``: full control instead.
        * ``tracer_provider``: add our processors to this provider instead of the global one.

        With no ``tracer_provider``, an OpenTelemetry SDK provider already set globally by
        the application is reused (our processors are added to it); otherwise we create
        one and make it global. A second call does nothing.
        """
        runtime = state.runtime
        if runtime.initialized:
            logger.debug("threadline: already initialized; initialize() ignored")
            return
        settings = config.resolve(project_api_key, base_url, disabled)
        runtime.initialized = True
        runtime.disabled = settings.disabled
        if settings.disabled:
            logger.debug("threadline: disabled; no spans will be created")
            return
        runtime.settings = settings
        if span_processor is None:
            span_processor = (
                SimpleSpanProcessor(span_exporter)
                if span_exporter is not None
                else BatchSpanProcessor(_otlp_exporter(settings))
            )
        provider, runtime.owns_provider = _choose_provider(tracer_provider, service_name)
        runtime.processor = TraceAssociationProcessor(span_processor)
        provider.add_span_processor(runtime.processor)
        runtime.provider = provider
        runtime.tracer = provider.get_tracer(TRACER_NAME)
        if instrument:
            names = list(INSTRUMENTORS) if instrument is True else list(instrument)
            runtime.instrumentors = enable_instrumentors(
                names, provider, config.capture_content_enabled(capture_content)
            )

    @classmethod
    @_safely(False)
    def flush(cls, timeout_millis: int = 30_000) -> bool:
        """Export every finished span and send every score now (e.g. before a short
        script exits). Returns False if the timeout passed first."""
        runtime = state.runtime
        deadline = time.monotonic() + timeout_millis / 1000
        spans_done = True
        if runtime.provider is not None and runtime.processor is not None:
            target = runtime.provider if runtime.owns_provider else runtime.processor
            spans_done = bool(target.force_flush(timeout_millis))
        if runtime.score_sender is None:
            return spans_done
        return runtime.score_sender.flush(deadline - time.monotonic()) and spans_done

    @classmethod
    @_safely(None)
    def shutdown(cls) -> None:
        """Flush and stop exporting; decorated code then runs untraced until the next
        ``initialize``. A provider the application owns is left running."""
        _teardown(state.runtime)
        state.reset_runtime().disabled = True

    @classmethod
    def _reset_for_tests(cls) -> None:
        """Shut down and forget all state, so the next ``initialize`` starts afresh with a
        new tracer provider (the global one can only be set once per process)."""
        _teardown(state.runtime)
        state.reset_runtime()

    # ---- trace-level association -------------------------------------------------------

    @classmethod
    @_safely(None)
    def set_trace_session_id(cls, session_id: str) -> None:
        """Put the current trace in session ``session_id`` (e.g. a conversation id).

        Applies to the current span and every span started after it in this context;
        the server then assigns the whole trace. Outside a span: a warning, no effect.
        """
        update_current_trace("Threadline.set_trace_session_id", session_id=session_id)

    @classmethod
    @_safely(None)
    def set_trace_user_id(cls, user_id: str) -> None:
        """Attribute the current trace to ``user_id`` (same scope as the session id)."""
        update_current_trace("Threadline.set_trace_user_id", user_id=user_id)

    @classmethod
    @_safely(None)
    def set_trace_metadata(cls, metadata: Mapping[str, Any]) -> None:
        """Merge ``metadata`` into the trace's metadata (``threadline.metadata.<key>``)."""
        update_current_trace("Threadline.set_trace_metadata", metadata=dict(metadata))

    @classmethod
    @_safely(None)
    def set_trace_tags(cls, tags: Iterable[str]) -> None:
        """Replace the trace's tags (``threadline.tags``, alongside each span's own)."""
        update_current_trace("Threadline.set_trace_tags", tags=list(tags))

    # ---- scores --------------------------------------------------------------------

    @classmethod
    @_safely(None)
    def score(
        cls,
        name: str,
        value: bool | float | str,
        *,
        session_id: str | None = None,
        trace_id: str | None = None,
        span_id: str | None = None,
        comment: str | None = None,
        id: str | None = None,
    ) -> str | None:
        """Score a session, a trace, or a span of a trace (give ``trace_id`` with
        ``span_id``): ``value`` is a number, True/False, or a label (categorical).

        Sent in the background; :meth:`flush` waits for it. Returns the score's id (the
        given ``id``, or a new one): scoring again with that id replaces the score, e.g.
        when a user changes their vote. Returns None, with a warning logged, when the
        score cannot be sent (no target, a bad value, the queue full, not initialised).
        """
        return _send_score(
            name,
            value,
            session_id=session_id,
            trace_id=trace_id,
            span_id=span_id,
            comment=comment,
            score_id=id,
        )

    @classmethod
    @_safely(None)
    def score_current_trace(
        cls,
        name: str,
        value: bool | float | str,
        *,
        comment: str | None = None,
        id: str | None = None,
    ) -> str | None:
        """Score the current trace (inside an ``@observe``'d function or a span block).
        The trace's session id, if set by then, goes with it."""
        trace_id, _, session_id = scores.current_ids()
        if trace_id is None:
            _outside_span("Threadline.score_current_trace")
            return None
        return _send_score(
            name, value, session_id=session_id, trace_id=trace_id, comment=comment, score_id=id
        )

    @classmethod
    @_safely(None)
    def score_current_span(
        cls,
        name: str,
        value: bool | float | str,
        *,
        comment: str | None = None,
        id: str | None = None,
    ) -> str | None:
        """Score the current span (it counts towards its trace's scores)."""
        trace_id, span_id, session_id = scores.current_ids()
        if trace_id is None:
            _outside_span("Threadline.score_current_span")
            return None
        return _send_score(
            name,
            value,
            session_id=session_id,
            trace_id=trace_id,
            span_id=span_id,
            comment=comment,
            score_id=id,
        )

    @classmethod
    @_safely(None)
    def score_current_session(
        cls,
        name: str,
        value: bool | float | str,
        *,
        comment: str | None = None,
        id: str | None = None,
    ) -> str | None:
        """Score the current trace's session, the one set with
        :meth:`set_trace_session_id` or ``@observe(session_id=...)``: a judgement of the
        whole conversation rather than of this turn."""
        trace_id, _, session_id = scores.current_ids()
        if trace_id is None:
            _outside_span("Threadline.score_current_session")
            return None
        if session_id is None:
            logger.warning(
                "threadline: Threadline.score_current_session: the current trace has no "
                "session id (set one with Threadline.set_trace_session_id); score %r not sent",
                name,
            )
            return None
        return _send_score(name, value, session_id=session_id, comment=comment, score_id=id)

    # ---- spans ---------------------------------------------------------------------

    @classmethod
    def start_as_current_span(
        cls,
        name: str,
        input: Any = None,
        *,
        span_type: SpanType | str = SpanType.DEFAULT,
        session_id: str | None = None,
        user_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        tags: Iterable[str] | None = None,
    ) -> AbstractContextManager[trace.Span]:
        """``with Threadline.start_as_current_span("step", input=...) as span:`` — a span
        for a block; set its output with :meth:`set_span_output`. Exceptions leaving the
        block are recorded and propagate."""
        try:
            options = make_options(
                name=name,
                span_type=span_type,
                session_id=session_id,
                user_id=user_id,
                metadata=metadata,
                tags=tags,
            )
        except Exception:
            logger.warning("threadline: bad span options for %r", name, exc_info=True)
            options = make_options(name=name)
        return Observer(options, MISSING if input is None else input)

    @classmethod
    @_safely(None)
    def set_span_output(cls, output: Any) -> None:
        """Record ``output`` as the current span's output (wins over a return value)."""
        set_output(trace.get_current_span(), output)

    @classmethod
    @_safely(None)
    def set_span_attributes(cls, attributes: Mapping[str, Any]) -> None:
        """Set attributes on the current span; non-primitive values become JSON strings."""
        span = trace.get_current_span()
        if span.is_recording():
            span.set_attributes({str(k): to_attribute_value(v) for k, v in attributes.items()})

    @classmethod
    @_safely(None)
    def event(cls, name: str, attributes: Mapping[str, Any] | None = None) -> None:
        """Add a timestamped event to the current span."""
        span = trace.get_current_span()
        if span.is_recording():
            span.add_event(
                name, {str(k): to_attribute_value(v) for k, v in (attributes or {}).items()}
            )

    @classmethod
    @_safely(None)
    def get_trace_id(cls) -> str | None:
        """The current trace id as 32 hex digits, or None outside a span context."""
        span_context = trace.get_current_span().get_span_context()
        return trace.format_trace_id(span_context.trace_id) if span_context.is_valid else None

    # ---- distributed traces --------------------------------------------------------

    @classmethod
    def get_context_carrier(cls) -> dict[str, str]:
        """W3C ``traceparent`` + ``baggage`` (session, user) for another process."""
        return get_context_carrier()

    @classmethod
    def continue_trace(cls, carrier: Mapping[str, str] | None) -> AbstractContextManager[None]:
        """``with Threadline.continue_trace(carrier):`` — resume a trace, its session and
        user from :meth:`get_context_carrier`'s output, in another process or thread."""
        return continue_trace(carrier)


def _send_score(
    name: str, value: bool | float | str, *, score_id: str | None = None, **target: str | None
) -> str | None:
    """Check a score and queue it for the sender; its id, or None (with a warning)."""
    runtime = state.runtime
    if runtime.disabled:
        return None
    if runtime.settings is None:
        logger.warning("threadline: score %r not sent: call Threadline.initialize() first", name)
        return None
    try:
        body = scores.build(name, value, score_id=score_id, **target)
    except scores.ScoreError as error:
        logger.warning("threadline: %s; not sent", error)
        return None
    sender = runtime.score_sender
    # A forked child inherits the sender but not its thread: it starts its own.
    if sender is None or not sender.in_this_process():
        with _SENDER_LOCK:
            sender = runtime.score_sender
            if sender is None or not sender.in_this_process():
                # Imported here: urllib's HTTP stack is needless until the first score.
                from threadline.sdk.score_sender import ScoreSender

                settings = runtime.settings
                sender = ScoreSender(settings.scores_endpoint, settings.headers())
                runtime.score_sender = sender
                _send_scores_at_exit()
    return str(body["id"]) if sender.submit(body) else None


_AT_EXIT: list[bool] = []


def _send_scores_at_exit() -> None:
    """Once per process: at interpreter exit, send the queued scores (for up to
    ``SHUTDOWN_SCORE_TIMEOUT_S``), as OpenTelemetry's provider flushes its spans, so a
    short script that scores and ends without ``flush`` loses nothing."""
    if _AT_EXIT:
        return
    _AT_EXIT.append(True)

    def at_exit() -> None:
        sender = state.runtime.score_sender
        if sender is not None and sender.in_this_process():
            sender.shutdown(SHUTDOWN_SCORE_TIMEOUT_S)

    atexit.register(at_exit)


def _outside_span(caller: str) -> None:
    logger.warning(
        "threadline: %s called outside a span context; ignored. Call it inside an "
        "@observe'd function or a Threadline.start_as_current_span block.",
        caller,
    )


def _otlp_exporter(settings: config.Settings) -> SpanExporter:
    # Imported here: it pulls in requests and protobuf, needless for disabled or test runs.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    if not settings.api_key:
        logger.warning(
            "threadline: no API key (argument or $%s); the server will reject "
            "spans unless it runs without authentication",
            config.ENV_API_KEY,
        )
    # requests comes with the exporter. A session of our own, so that a refused key is
    # logged with the setting to fix rather than only as OpenTelemetry's bare status.
    import requests

    session = requests.Session()
    session.hooks["response"].append(refusals.SpanRefusals(settings.traces_endpoint))
    return OTLPSpanExporter(
        endpoint=settings.traces_endpoint, headers=settings.headers(), session=session
    )


def _choose_provider(
    given: TracerProvider | None, service_name: str | None
) -> tuple[TracerProvider, bool]:
    """The provider to add our processors to, and whether we own it."""
    if given is not None:
        return given, False
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider) and current not in _OUR_PROVIDERS:
        return current, False  # the application's: cooperate rather than replace it
    resource = Resource.create({SERVICE_NAME: service_name} if service_name else {})
    provider = TracerProvider(resource=resource)
    _OUR_PROVIDERS.add(provider)
    if isinstance(current, trace.ProxyTracerProvider):  # nobody set one yet
        trace.set_tracer_provider(provider)
    else:
        logger.debug(
            "threadline: a global tracer provider is already set (%r); using a private one", current
        )
    return provider, True


def _teardown(runtime: state.Runtime) -> None:
    """Undo what initialize did, touching only what we created."""
    try:
        if runtime.score_sender is not None:
            runtime.score_sender.shutdown(SHUTDOWN_SCORE_TIMEOUT_S)
    except Exception:
        logger.warning("threadline: stopping the score sender failed", exc_info=True)
    try:
        disable_instrumentors(runtime.instrumentors)
        if runtime.provider is not None and runtime.owns_provider:
            runtime.provider.shutdown()
        elif runtime.processor is not None:
            runtime.processor.shutdown()  # the application's provider keeps running
    except Exception:
        logger.warning("threadline: shutdown failed", exc_info=True)
