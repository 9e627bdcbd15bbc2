"""The garbage collector of a process that ingests, tuned for it."""

from __future__ import annotations

import gc


def tune_garbage_collector() -> None:
    """Tune this process's cyclic garbage collector for ingest (call at startup).

    Ingest allocates tens of thousands of short-lived dicts per export, all freed by
    reference counting once the export is written. At Python's default threshold the
    collector scans them dozens of times before that, for nothing: ~18 % of ingest's
    instructions (docs/benchmarks.md). Young objects are collected a hundred times less
    often (at most a few MB of cyclic garbage waits longer), and what startup built
    (modules, the app), which lives as long as the process, is never scanned again.
    """
    gc.freeze()
    gc.set_threshold(100_000, 10, 10)
