"""uvicorn's httptools protocol with the guards uvicorn does not have.

uvicorn times out only idle keep-alive connections: a client that opens a connection
and sends its headers (or its body) a byte at a time holds a descriptor for as long as
it likes, and ``limit_concurrency`` answers 503 only once headers have arrived. So:

- **Headers** must arrive within ``header_timeout`` seconds of the connection opening
  or of the request's first byte; otherwise the connection is closed.
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
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from threadline.server.http.connections import connection_limit
from threadline.server.settings import Settings

log = logging.getLogger("threadline.server.http")

# Seconds after ``body_timeout`` before an unread body's connection is closed: the app's
# own 408 comes first when it reads the body.
_BODY_GRACE = 5.0

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

    def on_headers_complete(self) -> None:
        self._busy = True
        self._arm(self._body_timeout)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        self._busy = False
        self._served += 1
        super().on_response_complete()

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
