"""How the SQLite store keeps inputs and outputs: zstd frames, with a dictionary
trained on the database's own payloads.

Prompts and completions are most of a span's bytes, and prose compresses about 3:1.
Payloads of ``PACK_FROM_BYTES`` of UTF-8 and more are stored as zstd frames (a BLOB);
shorter ones stay TEXT, where a frame's header would eat the saving.

A span's payload is a few KB, too little for zstd to learn much from within one frame,
and an application's payloads share most of their words and structure (its system
prompts, JSON keys, tool names). So once a store has packed ``TRAIN_AFTER`` payloads
it trains a dictionary on them, keeps it in the ``payload_dictionaries`` table and packs
every later payload with it: packed a quarter faster, and on chat payloads of real
text 27-28 % fewer bytes than plain zstd (docs/benchmarks.md). One dictionary serves
every worker process: the first to need one trains it while the others keep writing,
and they adopt it. Every frame names the dictionary it was packed with in its header
(0: none), so frames from before and after all stay readable, and so would frames of
a later dictionary; dictionaries are never deleted. A dictionary holds fragments of
the payloads it was trained on, whatever their project: it lives in the same file as
they do and is never served.
``payload_sql.py`` reads every payload back as text in SQL (``threadline sql``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import zstandard

from threadline.server.store.sqlite.driver import sqlite3

log = logging.getLogger("threadline.store")

PACK_FROM_BYTES = 512
# Level 1: nearly the ratio of the higher levels at a fraction of their CPU on the
# ingest path.
_LEVEL = 1
# Enough to learn an application's common words and JSON keys: on LLM payloads and on
# varied text, a dictionary of 500 samples packed within 0.8 % of the size of one of
# 1,000, which took twice as long to train while a new store's first exports wait
# (docs/benchmarks.md).
TRAIN_AFTER = 500
# zstd's own default size; larger dictionaries measured no better on LLM payloads.
_DICTIONARY_BYTES = 32 * 1024
# The fastcover trainer's segment and d-mer sizes, fixed: searching for them (zstd's
# default) took four times as long, on the writer thread, for the same dictionary. Its
# frequency table of 2^16 entries rather than 2^20: training took 40 % of the time
# (84 -> 34 ms) and packed within 0.3 % of the size (docs/benchmarks.md). It counts
# every fourth d-mer of the samples rather than each, and finishes the dictionary on a
# quarter of them (``accel``): training took 30-45 % less time for the same size.
_TRAIN_K, _TRAIN_D, _TRAIN_F, _TRAIN_ACCEL = 1024, 8, 16, 4

Dictionary = zstandard.ZstdCompressionDict


class Packer:
    """Packs the payloads of one batch of rows (a zstd context is not thread-safe, so
    each write makes its own). Without a dictionary it keeps what it packed, as
    samples to train one."""

    def __init__(self, dictionary: Dictionary | None = None) -> None:
        compressor = (
            zstandard.ZstdCompressor(level=_LEVEL, dict_data=dictionary)
            if dictionary is not None
            else zstandard.ZstdCompressor(level=_LEVEL)
        )
        self._compress = compressor.compress
        self.samples: list[bytes] | None = [] if dictionary is None else None

    def pack(self, text: str | None) -> str | bytes | None:
        if text is None or len(text) < PACK_FROM_BYTES // 4:
            return text
        data = text.encode("utf-8", "surrogatepass")
        if len(data) < PACK_FROM_BYTES:
            return text
        if self.samples is not None:
            self.samples.append(data)
        return self._compress(data)


class Unpacker:
    """Unpacks payload columns on one thread (a decompressor is not thread-safe).

    ``dictionary`` finds a dictionary by the id a frame names; it is asked once per id.
    """

    def __init__(self, dictionary: Callable[[int], Dictionary]) -> None:
        self._dictionary = dictionary
        self._decompressors: dict[int, zstandard.ZstdDecompressor] = {}

    def __call__(self, value: str | bytes | None) -> str | None:
        """A payload column as text, whether it was stored packed or not."""
        if not isinstance(value, bytes):
            return value
        dict_id = zstandard.get_frame_parameters(value).dict_id
        decompressor = self._decompressors.get(dict_id)
        if decompressor is None:
            decompressor = self._decompressors[dict_id] = (
                zstandard.ZstdDecompressor(dict_data=self._dictionary(dict_id))
                if dict_id
                else zstandard.ZstdDecompressor()
            )
        return decompressor.decompress(value).decode("utf-8", "surrogatepass")


def train(samples: list[bytes]) -> Dictionary | None:
    """A dictionary for payloads like ``samples``, or None if zstd finds none in them
    (too few, or too alike)."""
    try:
        dictionary = zstandard.train_dictionary(
            _DICTIONARY_BYTES,
            list[bytes | bytearray | memoryview](samples),
            k=_TRAIN_K,
            d=_TRAIN_D,
            f=_TRAIN_F,
            accel=_TRAIN_ACCEL,
        )
    except zstandard.ZstdError as exc:
        log.warning("no payload dictionary from %d samples: %s", len(samples), exc)
        return None
    return prepared(dictionary)


def prepared(dictionary: Dictionary) -> Dictionary:
    # Precomputed once, rather than loaded again by every frame's compression.
    dictionary.precompute_compress(level=_LEVEL)
    return dictionary


def load_all(conn: sqlite3.Connection) -> dict[int, Dictionary]:
    """Every dictionary of the database by id, oldest first."""
    return {
        dict_id: prepared(zstandard.ZstdCompressionDict(data))
        for dict_id, data in conn.execute(
            "SELECT dict_id, data FROM payload_dictionaries ORDER BY created_ns, dict_id"
        )
    }


def save(conn: sqlite3.Connection, dictionary: Dictionary) -> None:
    conn.execute(
        "INSERT OR IGNORE INTO payload_dictionaries (dict_id, data, created_ns) VALUES (?, ?, ?)",
        (dictionary.dict_id(), dictionary.as_bytes(), time.time_ns()),
    )
