"""A background thread that keeps the ClickHouse dashboard's figures fresh.

On ClickHouse the dashboard as it opens reads per-slice figures derived from the
merged rollups (``store/clickhouse/metric_slices.py``); this thread runs
``Store.refresh_metrics`` every ``metrics_refresh_seconds``. Every server runs one: a
pass is idempotent, so several servers, or one lagging behind, converge on the same
figures, and one server down leaves the others refreshing. A pass's cost grows with
what was written since the last one, so the thread pauses at least four times as long
as the pass took: a busy store refreshes less often rather than spend more than a fifth
of the time on it. SQLite keeps its figures on write: there the thread ends at once.
"""

from __future__ import annotations

import logging
import threading
import time

from threadline.server.store import Store

log = logging.getLogger("threadline.metrics")

# Pause after a pass, as a multiple of its time.
PACE = 4.0


class MetricRefreshService:
    def __init__(self, store: Store, interval_s: float, margin_s: float) -> None:
        self._store = store
        self._interval_s = interval_s
        self._margin_s = margin_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="threadline-metrics", daemon=True)
        self.passes = 0

    def start(self) -> None:
        if self._interval_s > 0:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                if self._store.refresh_metrics(self._margin_s) is None:
                    return  # the store keeps its figures on write
                self.passes += 1
            except Exception:
                # ClickHouse away or overloaded: the next pass covers this one's slices
                # too (the watermark moves only when a pass completes).
                log.exception("refreshing the dashboard's figures failed; retrying")
            took = time.monotonic() - began
            self._stop.wait(max(self._interval_s, took * PACE))
