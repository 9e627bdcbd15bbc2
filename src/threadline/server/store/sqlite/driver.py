"""The SQLite engine the whole project links: ``from ...sqlite.driver import sqlite3``.

The standard library's ``sqlite3`` is tied to whatever SQLite the Python build was
linked with (3.40.1 on Debian 12's Python 3.11). ``pysqlite3-binary`` is the same DB-API
module bundling a current SQLite (3.51 at the time of writing), with FTS5; it is preferred
when installed. It is a dependency of the server extra only where it has a wheel (Linux
x86_64); elsewhere the standard module is used, whose SQLite is often recent anyway
(Python 3.12+ on Windows and macOS ship 3.43 or newer). So a missing wheel never stops a
server: what needs a newer engine than the one linked is detected (``supports``) and
waits (a migration stays pending, see ``database.migrate``) rather than failing.

``THREADLINE_SQLITE=stdlib`` forces the standard module (to compare the engines, or to
test the older one's path); ``THREADLINE_SQLITE=pysqlite3`` requires the bundled one.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

from threadline.server.store.sqlite.binding import skip_adaptation

if TYPE_CHECKING:
    import sqlite3
else:
    _CHOSEN = os.environ.get("THREADLINE_SQLITE", "").strip().lower()
    if _CHOSEN not in ("", "stdlib", "pysqlite3"):
        raise ImportError(f"THREADLINE_SQLITE={_CHOSEN!r}: expected 'stdlib' or 'pysqlite3'")
    if _CHOSEN == "stdlib":
        import sqlite3
    else:
        try:
            from pysqlite3 import dbapi2 as sqlite3
        except ImportError:
            if _CHOSEN == "pysqlite3":
                raise
            import sqlite3

# None and bytes bound without the adaptation protocol's detour (binding.py).
skip_adaptation(sqlite3)

__all__ = ["MODULE", "VERSION", "describe", "sqlite3", "supports", "unmet_requirement"]

# Which module is linked: "pysqlite3" or "sqlite3" (the standard library's).
MODULE: str = sqlite3.__name__.split(".")[0]
VERSION: tuple[int, int, int] = sqlite3.sqlite_version_info

# A migration script may open with "-- requires SQLite 3.43": it is applied only by an
# engine at least that recent.
_REQUIRES = re.compile(r"^\s*--\s*requires SQLite (\d+)\.(\d+)(?:\.(\d+))?\s*$", re.MULTILINE)


def describe() -> str:
    """The engine in words, e.g. ``SQLite 3.51.1 (pysqlite3)``."""
    return f"SQLite {sqlite3.sqlite_version} ({MODULE})"


def supports(major: int, minor: int, patch: int = 0) -> bool:
    """Whether the linked SQLite is at least this version."""
    return (major, minor, patch) <= VERSION


def unmet_requirement(script: str) -> str | None:
    """The version a migration script requires (its ``-- requires SQLite X.Y`` line)
    when the linked engine is older; None when it has none or it is met."""
    found = _REQUIRES.search(script)
    if found is None:
        return None
    major, minor, patch = (int(part or 0) for part in found.groups())
    if supports(major, minor, patch):
        return None
    return f"{major}.{minor}.{patch}"
