"""How the server process and an ingest worker process pass objects: length-prefixed
pickles over a connected socket, each side reading into a buffer it keeps.

An export goes to a worker as ~2 MB (its body) and comes back as ~4 MB of pickled
records and rows (512 spans of the benchmark's workload). ``multiprocessing``'s
connections, which ``concurrent.futures.ProcessPoolExecutor`` uses, read such a message
in pieces of the pipe's 64 KiB, each into a new buffer the size of all that remains
(``os.read(fd, remaining)``), then copy the pieces once more: with the allocator
tuned to give large buffers back (``tuning.py``), each of those is a fresh mapping,
faulted in page by page. Reading 4 MB that way cost the reading thread 3-7 ms, as
much as unpickling it (docs/benchmarks.md). Here a message is read straight into a
buffer that is kept for the next one (``recv_into``), so its pages are faulted once.
"""

from __future__ import annotations

import pickle
import socket
import struct
from typing import Any

_HEADER = struct.Struct("<Q")
# A buffer this large or smaller is kept for the next message; a larger one (an
# export's pieces of 5,000 spans come to ~40 MB) is let go after its message, so that
# one huge export does not hold its memory for good.
_KEEP_BYTES = 0
# What the kernel may hold of a message in flight: fewer, larger reads and writes.
_SOCKET_BUFFER = 1024 * 1024


class ChannelClosed(EOFError):
    """The other side closed its end (its process ended, or it stopped)."""


class Channel:
    """One end of a worker's connection: ``send`` an object, ``receive`` the next."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        for option in (socket.SO_SNDBUF, socket.SO_RCVBUF):
            try:
                sock.setsockopt(socket.SOL_SOCKET, option, _SOCKET_BUFFER)
            except OSError:
                pass  # the kernel's default then
        self._buffer = bytearray(0)
        self._header = bytearray(_HEADER.size)

    def send(self, value: Any) -> None:
        """Pickle ``value`` and send it; raises ``ChannelClosed`` if the other end is gone."""
        data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        try:
            self.sock.sendall(_HEADER.pack(len(data)))
            self.sock.sendall(data)
        except OSError as error:  # EPIPE, ECONNRESET: the peer is gone
            raise ChannelClosed(str(error)) from None

    def receive(self) -> Any:
        """The next object sent; raises ``ChannelClosed`` once the other end is gone."""
        self._read_into(memoryview(self._header))
        (size,) = _HEADER.unpack(self._header)
        buffer = self._buffer
        if size > len(buffer):
            buffer = bytearray(size)
            if size <= _KEEP_BYTES:
                self._buffer = buffer
        view = memoryview(buffer)[:size]
        try:
            self._read_into(view)
            return pickle.loads(view)
        finally:
            view.release()

    def _read_into(self, view: memoryview) -> None:
        done, size = 0, len(view)
        while done < size:
            try:
                n = self.sock.recv_into(view[done:], size - done)
            except OSError as error:
                raise ChannelClosed(str(error)) from None
            if n == 0:
                raise ChannelClosed("the other end closed the connection")
            done += n

    def close(self) -> None:
        self.sock.close()
