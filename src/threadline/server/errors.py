"""Errors that carry their HTTP status (one handler in ``app.py`` renders them), and the
error of a configuration that cannot work (the CLI says so and exits)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar


class ConfigurationError(Exception):
    """A setting, flag or store URL that cannot work. Library code raises it; only the
    CLI turns it into an exit (``threadline: <message>``, status 1)."""


class ThreadlineError(Exception):
    status = 500
    headers: ClassVar[dict[str, str] | None] = None

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


# A query parameter at fault: its name, and the one value of several that is, or None
# when every value of it is.
Fault = tuple[str, str | None]


class BadRequest(ThreadlineError):
    status = 400

    def __init__(self, message: str, *, faults: Iterable[Fault] = ()):
        super().__init__(message)
        # What of the address is wrong, when the reader knows: a page's way back from its
        # 400 keeps the rest of the address (``web/error_pages.py``).
        self.faults = frozenset(faults)


class Unauthorized(ThreadlineError):
    status = 401
    headers: ClassVar[dict[str, str] | None] = {"WWW-Authenticate": 'Bearer realm="threadline"'}


class Forbidden(ThreadlineError):
    status = 403


class NotFound(ThreadlineError):
    status = 404


class Conflict(ThreadlineError):
    status = 409


class PayloadTooLarge(ThreadlineError):
    status = 413
    # The rest of a refused body is never read: the connection cannot be reused.
    headers: ClassVar[dict[str, str] | None] = {"Connection": "close"}


class UnsupportedMediaType(ThreadlineError):
    status = 415


class Overloaded(ThreadlineError):
    """Too much in flight: OTLP exporters retry a 503 after ``Retry-After`` (gRPC
    ``RESOURCE_EXHAUSTED`` with that delay as its ``RetryInfo``)."""

    status = 503
    headers: ClassVar[dict[str, str] | None] = {"Retry-After": "1"}


class Unavailable(Overloaded):
    """Not the work in hand but the server or its storage that cannot take an export
    now (stopping, a worker process lost, ClickHouse out of reach): a 503 too, and gRPC
    ``UNAVAILABLE``, on which exporters also reconnect."""


class RequestTimeout(ThreadlineError):
    """A request body that did not arrive in time; the connection is closed after."""

    status = 408
    headers: ClassVar[dict[str, str] | None] = {"Connection": "close"}


class StorageFull(Unavailable):
    """The disk under the store is full. Exporters retry a 503 (gRPC ``UNAVAILABLE``),
    and the server takes their exports again by itself once there is space."""

    headers: ClassVar[dict[str, str] | None] = {"Retry-After": "5"}
