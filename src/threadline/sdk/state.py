"""The SDK's process-wide state: which tracer our spans go to, and whether we trace at all.

Kept apart from :mod:`threadline.sdk.client` so that the decorator can read it without
importing the client (and its exporter imports) and so that tests can reset it.

Why our own tracer provider reference rather than ``trace.get_tracer(...)``: OpenTelemetry
lets the *global* provider be set only once per process. Tracing through the provider we
hold means a test (or an application that re-initialises) gets a fresh provider each
time, and it means we never depend on whoever else sets the global.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from threadline.sdk.context import TRACER_NAME, TraceAssociationProcessor

if TYPE_CHECKING:
    from threadline.sdk.config import Settings
    from threadline.sdk.score_sender import ScoreSender

ENV_DISABLED = "THREADLINE_DISABLED"
_TRUE = frozenset({"1", "true", "yes", "on"})


def env_disabled(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether ``THREADLINE_DISABLED`` asks to turn tracing off."""
    return environ.get(ENV_DISABLED, "").strip().lower() in _TRUE


@dataclass
class Runtime:
    """What :meth:`Threadline.initialize` set up, and how to undo it."""

    initialized: bool = False
    disabled: bool = field(default_factory=env_disabled)
    provider: TracerProvider | None = None
    #: True if we created ``provider`` (then flush/shutdown act on all of it); False if we
    #: added our processors to the application's provider (then we touch only ours).
    owns_provider: bool = False
    tracer: trace.Tracer | None = None
    #: Our one processor on ``provider``: stamps trace association, then exports.
    processor: TraceAssociationProcessor | None = None
    instrumentors: list[Any] = field(default_factory=list)
    #: Where scores go (resolved at ``initialize``); None before it or when disabled.
    settings: Settings | None = None
    #: Started by the first score, so an application that never scores runs no thread.
    score_sender: ScoreSender | None = None

    def active_tracer(self) -> trace.Tracer | None:
        """The tracer for our spans, or None when tracing is disabled.

        Before ``initialize`` the global API's tracer is used, so that ``@observe`` still
        produces spans in an application that configured OpenTelemetry itself (it is a
        proxy: a no-op until a provider is set).
        """
        if self.disabled:
            return None
        return self.tracer if self.tracer is not None else _GLOBAL_TRACER


_GLOBAL_TRACER = trace.get_tracer(TRACER_NAME)

#: The one instance; replaced wholesale by ``Threadline._reset_for_tests``.
runtime = Runtime()


def reset_runtime() -> Runtime:
    """Forget everything (the caller has shut the old state down)."""
    global runtime
    runtime = Runtime()
    return runtime
