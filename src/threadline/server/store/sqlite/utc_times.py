"""A stored time (ns) as a ``datetime`` for orjson to write, at the least cost.

The API shows a time as ``datetime.fromtimestamp(ns / 1e9, UTC)`` (``model.
ns_to_datetime``). The bulk export makes two a span, and the time zone costs a call of
``UTC.fromutc`` that makes a second ``datetime``: of the two conversions' cost, about
half (docs/benchmarks.md, export). ``utcfromtimestamp`` gives the same fields from the
same rounding without a zone; orjson writes such a naive ``datetime`` as UTC, the same
text, when given ``NAIVE_UTC`` among its options. Python 3.12 deprecates
``utcfromtimestamp`` (a warning looked up on every call), so from 3.12 on the times are
made with the zone, as before.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial

import orjson

# orjson's options for documents holding ``utc_datetime``'s times.
NAIVE_UTC = orjson.OPT_NAIVE_UTC

utc_datetime: Callable[[float], datetime]
"""Seconds since the epoch as a ``datetime`` that orjson writes as
``fromtimestamp(seconds, UTC)`` (given ``NAIVE_UTC``)."""
if sys.version_info < (3, 12):
    utc_datetime = datetime.utcfromtimestamp
else:
    utc_datetime = partial(datetime.fromtimestamp, tz=UTC)
