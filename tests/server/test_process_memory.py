"""What a process that ingests holds: an ingest worker imports only the modules that build
rows (not the SDK, not the Store protocol and its API models), and the allocator tuning
hands large buffers back to the system when they are freed."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# What a spawned worker imports to run its jobs (ingest/workers.py, ingest/prepare.py,
# and the SQLite store's row builder the job carries).
_WORKER_MODULES = (
    "threadline.server.ingest.workers",
    "threadline.server.ingest.prepare",
    "threadline.server.store.sqlite.span_batch",
)


def _run(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_an_ingest_worker_imports_neither_the_sdk_nor_the_store_protocol() -> None:
    loaded = json.loads(
        _run(
            "import json, sys\n"
            + "".join(f"import {module}\n" for module in _WORKER_MODULES)
            + "print(json.dumps(sorted(sys.modules)))\n"
        )
    )
    unwanted = [
        m
        for m in loaded
        if m.startswith(("threadline.sdk", "opentelemetry.sdk"))
        or m in ("threadline.server.store.base", "threadline.server.store.sqlite.store")
    ]
    assert unwanted == []


def test_the_names_loaded_on_first_use_still_resolve() -> None:
    out = _run(
        "from threadline import SpanType, Threadline, observe\n"
        "from threadline.server.store import Store, open_store\n"
        "from threadline.server.store.sqlite import SQLiteStore\n"
        "print(Threadline.__name__, observe.__name__, SpanType.__name__, Store.__name__,"
        " SQLiteStore.__name__, open_store.__name__)\n"
    )
    assert out.split() == [
        "Threadline",
        "observe",
        "SpanType",
        "Store",
        "SQLiteStore",
        "open_store",
    ]


_MAPPED_AFTER_FREE = """
import ctypes, sys
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                 "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Info
if sys.argv[1] == "tuned":
    from threadline.server.ingest.tuning import tune_allocator
    tune_allocator()
big = bytearray(8 << 20)   # mapped, and once freed glibc raises its threshold to 8 MiB
del big
before = libc.mallinfo2().hblkhd
body = bytearray(1 << 20)  # a body of 1 MiB, as an export's
print((libc.mallinfo2().hblkhd - before) >> 10)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc only")
def test_a_large_buffer_is_mapped_even_after_a_larger_one_was_freed() -> None:
    # glibc's default raises its mmap threshold after freeing a mapped block, so the
    # next megabyte-sized buffers come from the heap and are kept when freed.
    assert int(_run_with(_MAPPED_AFTER_FREE, "default")) == 0
    assert int(_run_with(_MAPPED_AFTER_FREE, "tuned")) >= 1024


def _run_with(code: str, arg: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code, arg], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()
