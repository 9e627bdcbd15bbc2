"""The export's span times (``utc_times``) are written as the API writes a stored time
(``model.ns_to_datetime``), to the character: the same rounding of the nanoseconds to
microseconds, the same ``Z``, microseconds only when there are any."""

from __future__ import annotations

import random

import orjson

from threadline.server.model import ns_to_datetime
from threadline.server.store.sqlite.utc_times import NAIVE_UTC, utc_datetime

_EDGES = [
    0,
    1,
    499,
    500,
    501,
    999_999_499,
    999_999_500,  # rounds up into the next second
    10**9,
    1_790_000_000_000_000_000,
    1_790_000_000_000_000_500,
    1_790_000_000_999_999_600,
    2**63 - 1 - 86_400 * 10**9,
]


def test_span_times_are_written_as_the_api_writes_them():
    rng = random.Random(7)
    values = _EDGES + [rng.randint(0, 2**62) for _ in range(20_000)]
    # Around now, where a float's step (~0.24 µs) makes the rounding matter.
    values += [1_790_000_000 * 10**9 + rng.randint(0, 10**12) for _ in range(20_000)]
    values += [1_790_000_000 * 10**9 + rng.randint(0, 10**6) * 1000 + 500 for _ in range(5_000)]
    for ns in values:
        want = orjson.dumps(ns_to_datetime(ns), option=orjson.OPT_UTC_Z)
        assert orjson.dumps(utc_datetime(ns / 1e9), option=orjson.OPT_UTC_Z | NAIVE_UTC) == want
