"""How the server process and an ingest worker process pass objects: pickles streamed
over a connected socket, in the pickle's own frames, with no message held whole.

An export goes to a worker as ~2 MB (its body) and comes back as ~4 MB of pickled
records and rows (512 spans of the benchmark's workload). ``multiprocessing``'s
connections, which ``concurrent.futures.ProcessPoolExecutor`` uses, pickle a message
whole, then read it in pieces of the pipe's 64 KiB, each into a new buffer the size of
all that remains (``os.read(fd, remaining)``), and copy the pieces once more: with the
allocator tuned to give large buffers back (``tuning.py``), each of those buffers is a
fresh mapping, faulted in page by page. Here the pickler writes its frames (64 KiB)
to the socket as it makes them and the unpickler reads them as it needs them: no buffer
the size of a message exists on either side.
"""

from __future__ import annotations

import pickle
import socket
from typing import Any

# What the kernel may hold of a message in flight: fewer, larger reads and writes.
_SOCKET_BUFFER = 1024 * 1024
# Reads and writes of the socket go through buffers of this size (a pickle frame).
_IO_BUFFER = 64 * 1024


class ChannelClosed(EOFError):
    """The other side closed its end (its process ended, or it stopped), or what
    arrived was cut short: the channel cannot be used again."""


class Channel:
    """One end of a worker's connection: ``send`` an object, ``receive`` the next."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        for option in (socket.SO_SNDBUF, socket.SO_RCVBUF):
            try:
                sock.setsockopt(socket.SOL_SOCKET, option, _SOCKET_BUFFER)
            except OSError:
                pass  # the kernel's default then
        self._reader = sock.makefile("rb", buffering=_IO_BUFFER)
        self._writer = sock.makefile("wb", buffering=_IO_BUFFER)

    def send(self, value: Any) -> None:
        """Pickle ``value`` onto the socket; raises ``ChannelClosed`` if the other end
        is gone. An object that cannot be pickled raises before anything is sent if it
        is small; otherwise the channel is left broken (the caller closes it)."""
        try:
            pickle.dump(value, self._writer, protocol=pickle.HIGHEST_PROTOCOL)
            self._writer.flush()
        except OSError as error:  # EPIPE, ECONNRESET: the peer is gone
            raise ChannelClosed(str(error)) from None

    def receive(self) -> Any:
        """The next object sent; raises ``ChannelClosed`` once the other end is gone."""
        try:
            return pickle.load(self._reader)
        except (EOFError, OSError, pickle.UnpicklingError) as error:
            raise ChannelClosed(str(error) or "the other end closed the connection") from None

    def close(self) -> None:
        for part in (self._reader, self._writer):
            try:
                part.close()
            except OSError:
                pass  # a write buffer that could not be flushed to a closed peer
        self.sock.close()
