"""Auto-instrumentation of LLM client libraries through maintained OTel instrumentors.

We do not write our own OpenAI/Anthropic patches: the OpenTelemetry community maintains
instrumentors that follow the GenAI semantic conventions (``gen_ai.*``), which the server
already normalises. Each is an optional extra; a missing package is skipped silently.
Their spans get the session and user from our span processor like any other span.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Collection
from typing import Any

from opentelemetry.trace import TracerProvider

logger = logging.getLogger("threadline")

#: name -> (module, class). Names are what ``initialize(instrument=[...])`` accepts.
INSTRUMENTORS: dict[str, tuple[str, str]] = {
    # PyPI: opentelemetry-instrumentation-openai-v2 (OpenTelemetry contrib, gen_ai.* conventions)
    "openai": ("opentelemetry.instrumentation.openai_v2", "OpenAIInstrumentor"),
    # PyPI: opentelemetry-instrumentation-anthropic (OpenLLMetry)
    "anthropic": ("opentelemetry.instrumentation.anthropic", "AnthropicInstrumentor"),
}


def enable_instrumentors(names: Collection[str], tracer_provider: TracerProvider) -> list[Any]:
    """Instrument every library in ``names`` whose instrumentor and client are installed.

    Returns the instrumentors we turned on (so shutdown can turn them off again). An
    instrumentor the application already enabled is left alone.
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
            instrumentor.instrument(tracer_provider=tracer_provider)
            enabled.append(instrumentor)
        except Exception:
            logger.warning("threadline: could not enable %s instrumentation", name, exc_info=True)
    return enabled


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
