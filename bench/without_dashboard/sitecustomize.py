"""Loaded by every Python process started with this directory on ``PYTHONPATH`` (the
server, its spawned ingest workers, ``threadline keys create``): each SQLite store
opened loses what the dashboard adds (``no_dashboard.drop_schema``, a no-op once done)
and writes keep no aggregates (``no_dashboard.skip_upkeep``), exactly as
``bench/dashboard.py``'s store without the dashboard. The "without" side of
``bench/dashboard_server.py``; never used by the product."""

import sys
from pathlib import Path

# After everything else, so that no bench module hides a module of the same name.
sys.path.append(str(Path(__file__).resolve().parent.parent))

import no_dashboard

from threadline.server.store.sqlite import SQLiteStore

_open = SQLiteStore.__init__


def _open_without_dashboard(self: SQLiteStore, path: str | Path) -> None:
    _open(self, path)
    no_dashboard.drop_schema(self)


SQLiteStore.__init__ = _open_without_dashboard  # type: ignore[assignment,method-assign]
no_dashboard.skip_upkeep()
