"""An export's body as its receiver got it: whole (gRPC) or in the pieces it arrived in
(OTLP/HTTP), joined only in the worker process, into a buffer the worker keeps.

A 2 MB OTLP/HTTP body arrives in pieces of tens of KiB. Joined on the server's event
loop, every body was a new 2 MB buffer and, with the allocator tuned to give large
buffers back (``tuning.py``), fresh pages: a page fault per 4 KiB, ~1 ms of the event
loop's CPU an export (docs/benchmarks.md). So the pieces travel to the worker as they
are; the worker copies them into a buffer of its own thread, kept from one export to
the next so that its pages are already there, and reads the export from that.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

# What a receiver hands the pipeline: the body whole, or its pieces in order.
Body = bytes | list[bytes]

# Bodies up to this size are joined into the kept buffer; a larger one (rare: an
# exporter's batch is ~2 MB at most by default) gets a buffer of its own, freed after,
# so that one large export does not leave a worker holding its size.
KEPT_BYTES = 4 * 1024 * 1024

_STEP = 256 * 1024

_local = threading.local()


@contextmanager
def joined(body: Body) -> Iterator[bytes | memoryview]:
    """The bytes of ``body``, for the duration of the ``with``: ``body`` itself when it
    came whole, otherwise a view of the pieces joined into this thread's kept buffer.
    Nothing may keep the view past the ``with`` (the next export overwrites it)."""
    if isinstance(body, bytes):
        yield body
        return
    size = sum(map(len, body))
    buffer: bytearray | None = getattr(_local, "buffer", None)
    if size > KEPT_BYTES or len(body) < 2 or getattr(_local, "busy", False):
        # One piece needs no copy; a nested use (none today) must not overwrite the
        # buffer in use.
        yield body[0] if len(body) == 1 else b"".join(body)
        return
    if buffer is None or len(buffer) < size:
        # Grown a step at a time, so that bodies growing by a few bytes do not each
        # make a new one.
        buffer = _local.buffer = bytearray(-(-size // _STEP) * _STEP)
    view = memoryview(buffer)
    position = 0
    for piece in body:
        end = position + len(piece)
        view[position:end] = piece
        position = end
    whole = view[:size]
    _local.busy = True
    try:
        yield whole
    finally:
        _local.busy = False
        try:
            whole.release()
            view.release()
        except BufferError:
            # Something still holds a view of the buffer: it is left to it, and the
            # next export gets a new one.
            _local.buffer = None
