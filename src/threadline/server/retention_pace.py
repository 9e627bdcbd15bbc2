"""How fast retention deletes: the size of its next batch, and the pause after it,
by whether ingest is busy.

- **Ingest busy** (an export in hand within the last ``LULL_S``): batches of
  ``BUSY_BATCH`` traces, each followed by a pause ``PACE`` times as long as it took, so
  retention holds the one writer a fifth of the time at most and ingest keeps its rate.
- **A lull** (no export for ``LULL_S``): the batch doubles while one takes under half
  of ``LULL_BATCH_S``, up to ``MAX_BATCH``, and halves when one takes longer, so
  that a batch holds the writer for about ``LULL_BATCH_S``; the pause is only
  ``MIN_PAUSE_S``. An export arriving meanwhile waits for the batch in hand at most,
  and the next batch is small and paced again. A backlog of expired traces is worked
  off at almost the full speed of deleting whenever spans stop arriving.

Under steady load ingest is idle for milliseconds between exports: a gap that short is
not a lull (as for evaluations, ``evaluation/ingest_first.py``).
"""

from __future__ import annotations

BUSY_BATCH = 100
PACE = 4.0
LULL_S = 0.5
LULL_BATCH_S = 0.5
MAX_BATCH = 2_000
MIN_PAUSE_S = 0.02


class RetentionPace:
    def __init__(self) -> None:
        self.batch = BUSY_BATCH

    def next_batch(self, ingest_quiet_s: float) -> int:
        """How many traces the next batch deletes, at most."""
        if ingest_quiet_s < LULL_S:
            self.batch = BUSY_BATCH
        return self.batch

    def pause_after(self, took_s: float, deleted: int, ingest_quiet_s: float) -> float:
        """Seconds to pause after a batch that deleted ``deleted`` traces in ``took_s``."""
        if ingest_quiet_s < LULL_S:
            self.batch = BUSY_BATCH
            return max(MIN_PAUSE_S, took_s * PACE)
        if took_s > LULL_BATCH_S:
            self.batch = max(BUSY_BATCH, self.batch // 2)
        elif took_s < LULL_BATCH_S / 2 and deleted >= self.batch:
            self.batch = min(MAX_BATCH, self.batch * 2)
        return MIN_PAUSE_S
