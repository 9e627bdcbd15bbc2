"""uvicorn's httptools protocol with the guards uvicorn does not have.

uvicorn times out only idle keep-alive connections: a client that opens a connection
and sends its headers (or its body) a byte at a time holds a descriptor for as long as
it likes, and ``limit_concurrency`` answers 503 only once headers have arrived. So:

- **Headers** must arrive within ``header_timeout`` seconds of the connection opening
  or of the request's first byte; otherwise the connection is closed.
- **Header size**: a request's line and headers past ``MAX_HEADER_BYTES`` get ``431``
  and the connection is closed. httptools keeps whatever arrives before the headers
  end: one connection sending 512 MiB of header lines within ``header_timeout`` took
  the server from 152 to 629 MB.
- **Bodies**: the app refuses a body not received within ``body_timeout`` with 408
  (``request_bounds.py``). A body the app never reads (a route that takes none) is cut
  off here, a little later, by closing the connection.
- **Connections** are capped (``connections.py``). At the cap, a new connection evicts
  one that is not in the middle of a request: the oldest that never finished one (a
  slow-header client), else the oldest idle keep-alive one. So a flood of unfinished
  connections cannot lock out clients that send whole requests, nor close their
  keep-alive connections; if every connection is busy, the new one is closed.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from threadline.server.http.connections import connection_limit
from threadline.server.settings import Settings

log = logging.getLogger("threadline.server.http")

# Seconds after ``body_timeout`` before an unread body's connection is closed: the app's
# own 408 comes first when it reads the body.
_BODY_GRACE = 5.0

# A request line and headers, together: browsers send a few KiB (cookies at most 4 KiB
# each); other servers allow 8-64 KiB. Fixed, like the other bounds of a request.
MAX_HEADER_BYTES = 64 * 1024

# Seconds a connection refused with 431 stays open after the answer, dropping what
# arrives, before it is closed.
_REFUSED_LINGER = 1.0

_settings: Settings | None = None


def _resolved() -> Settings:
    # Each worker process builds its settings from THREADLINE_* (see cli.serve).
    global _settings
    if _settings is None:
        _settings = Settings.resolve()
    return _settings


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = _resolved()
        self._header_timeout = float(settings.header_timeout)
        self._body_timeout = float(settings.body_timeout) + _BODY_GRACE
        self._limit = connection_limit(settings)
        self._timer: asyncio.TimerHandle | None = None
        self._opened = 0.0
        self._busy = False  # headers in, response not yet complete
        self._served = 0  # responses completed on this connection
        self._header_bytes = 0  # received since the request began, its headers unfinished
        self._refused = False  # answered 431: what arrives now is dropped unread

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._opened = self.loop.time()
        if len(self.connections) > self._limit and not self._evict_one():
            log.warning("%d connections open: closing a new one", len(self.connections) - 1)
            transport.close()
            return
        self._arm(self._header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._timer is None:  # a keep-alive connection's next request
            self._arm(self._header_timeout)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if not self._busy:
            # Counted before the parser takes the chunk, whose end may be the body's: a
            # request's headers are held to the bound plus one read (at most 256 KiB).
            if self._header_bytes > MAX_HEADER_BYTES:
                self._refuse_headers()
                return
            self._header_bytes += len(data)
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._busy = True
        self._header_bytes = 0
        self._arm(self._body_timeout)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        self._busy = False
        self._served += 1
        super().on_response_complete()

    def _refuse_headers(self) -> None:
        """431, then the connection closed a little later: the answer is sent and the
        sending side shut first, so that the client reads it rather than a reset (a
        socket closed with data unread resets the connection), while whatever else it
        sends is dropped unread."""
        self._refused = True
        body = json.dumps(
            {"error": f"the request line and headers pass {MAX_HEADER_BYTES} bytes"}
        ).encode()
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: application/json\r\nconnection: close\r\n"
            + f"content-length: {len(body)}\r\n\r\n".encode()
            + body
        )
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._arm(_REFUSED_LINGER)

    def _evict_one(self) -> bool:
        """Close another connection not in a request, False if there is none: first the
        oldest that never finished a request (a flood's), then the oldest idle one."""
        idle = [
            c
            for c in self.connections
            if c is not self and isinstance(c, GuardedHttpToolsProtocol) and c._evictable()
        ]
        if not idle:
            return False
        min(idle, key=lambda c: (c._served > 0, c._opened))._expire()
        return True

    def _evictable(self) -> bool:
        # Still sending its headers, or idle between requests: closing it loses no work.
        return not self._busy

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._timer = self.loop.call_later(seconds, self._expire)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self) -> None:
        self._disarm()
        if not self.transport.is_closing():
            self.transport.close()
