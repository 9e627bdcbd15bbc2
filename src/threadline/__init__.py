"""Threadline: OpenTelemetry-native observability for LLM apps, with sessions first-class.

The public SDK surface is exactly these three names; everything else is internal::

    from threadline import Threadline, observe, SpanType

This package must stay importable with only the SDK's dependencies installed
(opentelemetry-api/-sdk/-exporter-otlp-proto-http): never import ``threadline.server``
from here (tests/sdk/test_import_isolation.py checks it).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from threadline.sdk.client import Threadline
    from threadline.sdk.observe import observe
    from threadline.sdk.span_type import SpanType

__all__ = ["SpanType", "Threadline", "observe"]

# Imported on first use, not with the package: the server's modules live under this
# package too, and neither the server nor its ingest worker processes use the SDK,
# whose OpenTelemetry SDK import costs each process ~10 MB.
_HOMES = {
    "Threadline": "threadline.sdk.client",
    "observe": "threadline.sdk.observe",
    "SpanType": "threadline.sdk.span_type",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'threadline' has no attribute {name!r}")
    value = getattr(import_module(_HOMES[name]), name)
    globals()[name] = value
    return value
