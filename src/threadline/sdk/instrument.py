"""Auto-instrumentation of LLM client libraries through maintained OTel instrumentors.

We do not write our own OpenAI/Anthropic patches: the OpenTelemetry community maintains
instrumentors that follow the GenAI semantic conventions (``gen_ai.*``), which the server
already normalises. Each is an optional extra; a missing package is skipped silently.
Their spans get the session and user from our span processor like any other span.

OpenAI's instrumentor sends the messages of a call as log events rather than span
attributes, and only when OpenTelemetry's content variable is true when it is enabled:
with content capture on, we enable it with that variable set and a logger provider of
our own whose processor (``genai_events``) writes the messages onto the call's span.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Collection
from typing import Any

from opentelemetry.trace import TracerProvider

from threadline.sdk.config import OTEL_CAPTURE_CONTENT

logger = logging.getLogger("threadline")

#: name -> (module, class). Names are what ``initialize(instrument=[...])`` accepts.
INSTRUMENTORS: dict[str, tuple[str, str]] = {
    # PyPI: opentelemetry-instrumentation-openai-v2 (OpenTelemetry contrib, gen_ai.* conventions)
    "openai": ("opentelemetry.instrumentation.openai_v2", "OpenAIInstrumentor"),
    # PyPI: opentelemetry-instrumentation-anthropic (OpenLLMetry)
    "anthropic": ("opentelemetry.instrumentation.anthropic", "AnthropicInstrumentor"),
}
#: Instrumentors that send message content as GenAI log events (see the module docstring).
CONTENT_AS_EVENTS = frozenset({"openai"})


def enable_instrumentors(
    names: Collection[str], tracer_provider: TracerProvider, capture_content: bool = True
) -> list[Any]:
    """Instrument every library in ``names`` whose instrumentor and client are installed.

    Returns the instrumentors we turned on (so shutdown can turn them off again). An
    instrumentor the application already enabled is left alone. ``capture_content``:
    record the messages of the calls of those in ``CONTENT_AS_EVENTS`` on their spans.
    """
    enabled = []
    for name in names:
        spec = INSTRUMENTORS.get(name)
        if spec is None:
            logger.warning(
                "threadline: unknown instrumentation %r (known: %s)", name, ", ".join(INSTRUMENTORS)
            )
            continue
        try:
            instrumentor = getattr(importlib.import_module(spec[0]), spec[1])()
        except ImportError:
            logger.debug("threadline: %s instrumentation not installed; skipped", name)
            continue
        except Exception:
            logger.warning("threadline: could not load %s instrumentation", name, exc_info=True)
            continue
        if getattr(instrumentor, "is_instrumented_by_opentelemetry", False):
            continue
        if not _client_installed(instrumentor):
            logger.debug("threadline: %s client library not installed; skipped", name)
            continue
        try:
            if capture_content and name in CONTENT_AS_EVENTS:
                _instrument_with_content(instrumentor, tracer_provider)
            else:
                instrumentor.instrument(tracer_provider=tracer_provider)
            enabled.append(instrumentor)
        except Exception:
            logger.warning("threadline: could not enable %s instrumentation", name, exc_info=True)
    return enabled


def _instrument_with_content(instrumentor: Any, tracer_provider: TracerProvider) -> None:
    """Enable an instrumentor that reads OpenTelemetry's content variable once, when it
    is enabled: the variable is true only meanwhile, so that no other instrumentor of
    the process changes its behaviour because of us."""
    # Imported here: OpenTelemetry's logs SDK is needed only by an application that
    # records OpenAI content, and costs every other one its import time.
    from opentelemetry import _logs
    from opentelemetry.sdk._logs import LoggerProvider

    from threadline.sdk.genai_events import EventsToSpanAttributes

    # The application's own logger provider still gets the events, as it would have.
    application = _logs.get_logger_provider()
    logger_provider = LoggerProvider(
        resource=getattr(tracer_provider, "resource", None), shutdown_on_exit=False
    )
    logger_provider.add_log_record_processor(
        EventsToSpanAttributes(application if isinstance(application, LoggerProvider) else None)
    )
    previous = os.environ.get(OTEL_CAPTURE_CONTENT)
    os.environ[OTEL_CAPTURE_CONTENT] = "true"
    try:
        instrumentor.instrument(tracer_provider=tracer_provider, logger_provider=logger_provider)
    finally:
        if previous is None:
            os.environ.pop(OTEL_CAPTURE_CONTENT, None)
        else:
            os.environ[OTEL_CAPTURE_CONTENT] = previous


def disable_instrumentors(instrumentors: list[Any]) -> None:
    for instrumentor in instrumentors:
        try:
            instrumentor.uninstrument()
        except Exception:
            logger.debug("threadline: could not uninstrument %r", instrumentor, exc_info=True)


def _client_installed(instrumentor: Any) -> bool:
    """Whether the instrumented library (e.g. ``openai``) is installed in a version the
    instrumentor supports. Checked here because ``instrument()`` would log an *error*
    for a perfectly normal situation (instrumentation extra installed, client not used)."""
    try:
        from opentelemetry.instrumentation.dependencies import get_dependency_conflicts

        return get_dependency_conflicts(instrumentor.instrumentation_dependencies()) is None
    except Exception:
        return True  # cannot tell: let instrument() decide
