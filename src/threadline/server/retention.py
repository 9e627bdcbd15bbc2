"""Retention: a background thread that deletes expired traces, a small batch at a time.

Each project keeps its traces for its own number of days if it set one (``threadline
projects retention``, ``PUT /api/v1/settings/retention``), else for the server's
``--retention-days`` (0: forever). A trace expires when it *ended* that long ago, so a
session that is partly expired loses its old traces only, and is rolled up again from
the ones it keeps.

- **The one delete path.** Expired traces go through ``Store.delete_traces``, as a user's
  delete does: spans, rollups, live feed, scores and notes and every index or rollup that
  path keeps stay exact, and so do the ones added to it later.
- **Ingest first.** A batch is one write transaction. While spans arrive, a batch is
  100 traces and the thread then pauses four times as long as it took, so it holds the
  writer for at most about a fifth of the time and ingest's transactions take their
  turns in between; in a lull of ingest, batches grow to about half a second each with
  hardly a pause, so a backlog goes at nearly the full speed of deleting
  (``retention_pace.py``).
- **Space.** After each batch, ``Store.reclaim_space`` hands up to ``RECLAIM_PAGES``
  freed pages for each 100 traces deleted back to the file system (SQLite in
  incremental auto-vacuum mode).
- **GenAI log events** that waited ``genai_event_wait_seconds`` for their span are
  deleted at the start of each pass, whatever the retention (their span took them, or
  never came); those kept beside a span go with its trace.
- **One deleter per server.** The one server process runs the thread (``--workers``
  are ingest worker processes, which run none). ClickHouse servers on several
  machines each delete (deletes are idempotent); there the table TTL already drops what
  the server's ``--retention-days`` expires, so only projects with a shorter retention
  of their own are deleted by this thread (``Store.expires_by_itself``).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable

from threadline.server.errors import StorageFull
from threadline.server.retention_pace import BUSY_BATCH, MIN_PAUSE_S, PACE, RetentionPace
from threadline.server.store import Store

log = logging.getLogger("threadline.retention")

DAY_NS = 86_400 * 10**9
RECLAIM_PAGES = 256  # 1 MiB of 4 KiB pages a step (per 100 traces deleted)
IDLE_PAUSE_S = 5.0  # between passes that found nothing to delete


def effective_days(default_days: int, overrides: dict[int, int], project_id: int) -> int:
    return overrides.get(project_id, default_days)


class RetentionService:
    def __init__(
        self,
        store: Store,
        default_days: int,
        clock_ns: Callable[[], int] = time.time_ns,
        ingest_quiet: Callable[[], float] = lambda: math.inf,
        event_wait_seconds: int = 900,
    ) -> None:
        self._store = store
        self._event_wait_ns = event_wait_seconds * 10**9
        self.deleted_events = 0
        self._default_days = default_days
        self._clock_ns = clock_ns
        self._ingest_quiet = ingest_quiet
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="threadline-retention", daemon=True)
        self.deleted_traces = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join()

    def wake(self) -> None:
        """Start a pass now (a project's retention changed)."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_pass()
            except StorageFull as error:
                # Expected, and said once per pass: deleting needs a little space too.
                log.warning("retention waits for disk space (%s)", error.message)
            except Exception:
                # A full disk, ClickHouse away: the next pass tries again.
                log.exception("retention pass failed; retrying in %.0f s", IDLE_PAUSE_S)
            self._wake.wait(IDLE_PAUSE_S)
            self._wake.clear()

    def run_pass(self) -> None:
        """Delete the GenAI events that waited too long, then every project's expired
        traces, batch by batch."""
        self.deleted_events += self._store.delete_waiting_genai_events(
            self._clock_ns() - self._event_wait_ns
        )
        overrides = self._store.retention_overrides()
        for project in self._store.list_projects():
            days = effective_days(self._default_days, overrides, project.id)
            if days <= 0 or self._store.expires_by_itself(days):
                continue
            cutoff = self._clock_ns() - days * DAY_NS
            pace = RetentionPace()
            while not self._stop.is_set():
                began = time.monotonic()
                batch = pace.next_batch(self._ingest_quiet())
                expired = self._store.expired_traces(project.id, cutoff, batch)
                if not expired:
                    break
                self.deleted_traces += self._store.delete_traces(project.id, expired)
                self._store.reclaim_space(RECLAIM_PAGES * max(1, len(expired) // BUSY_BATCH))
                took = time.monotonic() - began
                self._stop.wait(pace.pause_after(took, len(expired), self._ingest_quiet()))
        # What is left free after the last batch, a step at a time, still yielding.
        while not self._stop.is_set():
            began = time.monotonic()
            if self._store.reclaim_space(RECLAIM_PAGES) < RECLAIM_PAGES:
                break
            self._stop.wait(max(MIN_PAUSE_S, (time.monotonic() - began) * PACE))
