"""The payload dictionaries one ``SQLiteStore`` packs and unpacks with (payloads.py).

Until the database has a dictionary, the payloads a process packs are kept as samples;
once there are enough, one process trains a dictionary on them while the others keep
writing, and every process adopts it after its next write.
"""

from __future__ import annotations

import fcntl
import os
import threading
from typing import TYPE_CHECKING

from threadline.server.store.sqlite import payloads

if TYPE_CHECKING:
    from threadline.server.store.sqlite.database import Database


class PayloadDictionaries:
    def __init__(self, database: Database) -> None:
        self._database = database
        # Held by the one process training a payload dictionary (see learn).
        self._training_turn = os.open(f"{database.path}-training", os.O_CREAT | os.O_RDWR, 0o600)
        self._known = payloads.load_all(database._writer)
        # The dictionary new payloads are packed with (the newest), and until there is
        # one the payloads packed so far, to train it (None: no more training).
        self.packing = next(reversed(self._known.values()), None)
        self._samples: list[bytes] | None = [] if self.packing is None else None
        self._per_thread = threading.local()

    def packer(self) -> payloads.Packer:
        return payloads.Packer(self.packing)

    def learn(self, samples: list[bytes]) -> None:
        """Keep payloads packed without a dictionary; once there are enough, pack with
        one from then on: another worker's, if it trained one meanwhile, else one
        trained on them.

        Training takes tens of milliseconds of CPU, outside any transaction, so that
        the other workers keep writing meanwhile. One process trains at a time (a file
        lock, not waited for): the others keep packing without a dictionary and try
        again after their next write, when they find it and adopt it.
        """
        with self._database._write_lock:
            if self._samples is None:
                return
            # Training takes time in proportion to the samples: no more than needed.
            self._samples += samples[: payloads.TRAIN_AFTER - len(self._samples)]
            if len(self._samples) < payloads.TRAIN_AFTER:
                return
            try:
                fcntl.flock(self._training_turn, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return
            try:
                with self._database._read() as conn:
                    self._known.update(payloads.load_all(conn))
                dictionary = next(reversed(self._known.values()), None)
                if dictionary is None:
                    dictionary = payloads.train(self._samples)
                    if dictionary is not None:
                        with self._database._transaction() as conn:
                            payloads.save(conn, dictionary)
                        self._known[dictionary.dict_id()] = dictionary
                # Without one (zstd found none), payloads keep being packed without.
                self._samples = None
                self.packing = dictionary
            finally:
                fcntl.flock(self._training_turn, fcntl.LOCK_UN)

    def unpacker(self) -> payloads.Unpacker:
        return payloads.Unpacker(self._dictionary)

    def thread_unpacker(self) -> payloads.Unpacker:
        """The calling thread's own unpacker, kept between calls: for reads made many
        times in a row (the bulk export's batches), whose decompressors (each loading
        its dictionary, ~20 µs and more) would otherwise be made again every time."""
        unpacker: payloads.Unpacker | None = getattr(self._per_thread, "unpacker", None)
        if unpacker is None:
            unpacker = self._per_thread.unpacker = self.unpacker()
        return unpacker

    def _dictionary(self, dict_id: int) -> payloads.Dictionary:
        if dict_id not in self._known:
            # Trained by another worker process since this one last read them.
            with self._database._read() as conn:
                self._known.update(payloads.load_all(conn))
        try:
            return self._known[dict_id]
        except KeyError:
            raise LookupError(f"payload dictionary {dict_id} is missing") from None

    def close(self) -> None:
        os.close(self._training_turn)
