"""The garbage collector and the C allocator of a process that ingests, tuned for it."""

from __future__ import annotations

import ctypes
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


# mallopt's parameter numbers (glibc's malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
_LARGE = 256 * 1024


def tune_allocator() -> None:
    """Keep this process's C heap near what it uses (call at startup, before threads).

    Measured in a server at 100k spans (docs/benchmarks.md): glibc's malloc held 84 MB,
    of which 38 MB free. Exports pass through as buffers of megabytes (bodies, pickled
    rows, zstd frames), each freed within a second, and glibc raises its mmap threshold
    after the first is freed (up to 32 MB), so later ones are carved from the heaps and
    leave them fragmented; and each thread that allocates may get a heap (an arena) of
    its own. So: buffers from 256 KiB up are mapped and given back when freed, free
    memory at a heap's top is returned from 256 KiB, and two arenas serve all threads.
    Only glibc has mallopt; elsewhere (musl, macOS) this does nothing.
    """
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    mallopt(_M_ARENA_MAX, 2)
    mallopt(_M_MMAP_THRESHOLD, _LARGE)
    mallopt(_M_TRIM_THRESHOLD, _LARGE)
