"""How many connections a server process keeps open, from its open-file limit.

Every connection is a file descriptor, and so are the SQLite database, its WAL and
the pipes to the ingest worker processes. A flood of connections must never take the
last descriptors from the store ("unable to open database file"): connections are
capped below the open-file limit, with a reserve kept for the store and the workers.
"""

from __future__ import annotations

import resource

from threadline.server.settings import Settings

# Descriptors kept out of the connections' reach: the SQLite files of the writer, the
# readers and the checkpointer (3 each), the pipes to the ingest workers, the event
# loop's and gRPC's own descriptors, the log.
RESERVED_FILES = 256
_FLOOR = 16


def raise_open_file_limit() -> int:
    """Raise this process's soft open-file limit to its hard limit; the soft limit after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = 1 << 16 if hard == resource.RLIM_INFINITY else hard
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def connection_limit(settings: Settings) -> int:
    """Connections per process for each of HTTP and gRPC (``max_connections``, or half of
    what the open-file limit leaves after the reserve)."""
    if settings.max_connections > 0:
        return settings.max_connections
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return max(_FLOOR, (soft - RESERVED_FILES) // 2)
