"""The gRPC status of a refused export: its code, and for a refusal to retry, the delay.

The OTLP specification (https://opentelemetry.io/docs/specs/otlp/#failures-1) has a
client retry ``UNAVAILABLE``, and ``RESOURCE_EXHAUSTED`` only when the status carries a
``google.rpc.RetryInfo``, the server's word that the exhaustion will pass. So work in hand
past its bound (``Overloaded``) is ``RESOURCE_EXHAUSTED`` with a ``RetryInfo`` of the
delay HTTP sends as ``Retry-After``; a server or storage that cannot take exports now
(``Unavailable``, ``StorageFull``) is ``UNAVAILABLE`` with the same. The ``RetryInfo``
travels twice in the trailers: in the standard status details
(``grpc-status-details-bin``, read by the Go and Java exporters and the Collector),
and alone as ``google.rpc.retryinfo-bin``, the trailer the Python exporter reads.
"""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2

from threadline.server.errors import (
    BadRequest,
    Forbidden,
    Overloaded,
    PayloadTooLarge,
    RequestTimeout,
    ThreadlineError,
    Unauthorized,
    Unavailable,
    UnsupportedMediaType,
)

Trailers = tuple[tuple[str, bytes], ...]

# Most specific first: Unavailable (and StorageFull, one of its kinds) is an Overloaded.
_CODES: tuple[tuple[type[ThreadlineError], grpc.StatusCode], ...] = (
    (BadRequest, grpc.StatusCode.INVALID_ARGUMENT),
    (UnsupportedMediaType, grpc.StatusCode.INVALID_ARGUMENT),
    (Unauthorized, grpc.StatusCode.UNAUTHENTICATED),
    (Forbidden, grpc.StatusCode.PERMISSION_DENIED),
    # Too large is not retried: without RetryInfo, exporters following the spec drop it.
    (PayloadTooLarge, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (RequestTimeout, grpc.StatusCode.DEADLINE_EXCEEDED),
    (Unavailable, grpc.StatusCode.UNAVAILABLE),
    (Overloaded, grpc.StatusCode.RESOURCE_EXHAUSTED),
)


def refusal(error: ThreadlineError) -> tuple[grpc.StatusCode, Trailers]:
    """The status code of ``error`` and the trailers that go with it."""
    code = next((code for kind, code in _CODES if isinstance(error, kind)), None)
    if code is None:
        return grpc.StatusCode.INTERNAL, ()
    if not isinstance(error, Overloaded):
        return code, ()
    seconds = int((error.headers or {}).get("Retry-After", "1"))
    retry = error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=seconds))
    detail = any_pb2.Any()
    detail.Pack(retry)
    status = status_pb2.Status(code=code.value[0], message=error.message, details=[detail])
    return code, (
        ("grpc-status-details-bin", status.SerializeToString()),
        ("google.rpc.retryinfo-bin", retry.SerializeToString()),
    )
