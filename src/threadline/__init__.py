"""Threadline: OpenTelemetry-native observability for LLM apps, with sessions first-class.

The public SDK surface is exactly these three names; everything else is internal::

    from threadline import Threadline, observe, SpanType

This package must stay importable with only the SDK's dependencies installed
(opentelemetry-api/-sdk/-exporter-otlp-proto-http): never import ``threadline.server``
from here (tests/sdk/test_import_isolation.py checks it).
"""

from threadline.sdk.client import Threadline
from threadline.sdk.observe import observe
from threadline.sdk.span_type import SpanType

__all__ = ["SpanType", "Threadline", "observe"]
