"""Opaque keyset-pagination cursors: the sort key of the last row of a page, and a
digest of the list, sort and filters that made it (``made_by``, e.g. ``sessions by cost
where {...}``).

The keys of many sorts have the same types ((time, id), (number, id)): a cursor of one
list or sort read by another would start a wrong page (skip rows), so ``decode`` refuses
a cursor made by another one with a 400.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from threadline.server.errors import BadRequest
from threadline.server.jsontext import loads_bounded

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
T = TypeVar("T")


def page(
    rows: Sequence[T], limit: int, key: Callable[[T], Sequence[Any]], *, made_by: str
) -> tuple[list[T], str | None]:
    """A page of ``rows`` fetched with one row more than ``limit`` (to tell whether
    there is a next page), and the cursor after it: ``key`` of its last row (None on
    the last page), made by the list and sort ``made_by``."""
    if len(rows) > limit:
        return list(rows[:limit]), encode(*key(rows[limit - 1]), made_by=made_by)
    return list(rows), None


def encode(*key: Any, made_by: str) -> str:
    text = json.dumps([*key, _digest(made_by)])
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _digest(made_by: str) -> str:
    return hashlib.blake2b(made_by.encode(), digest_size=6).hexdigest()


def _refused(message: str) -> BadRequest:
    # The query parameter at fault: a page's way back from its 400 leaves the cursor out
    # and keeps the filters.
    return BadRequest(message, faults=[("cursor", None)])


def decode(cursor: str, *types: type, made_by: str) -> tuple[Any, ...]:
    """The key a cursor holds, checked to be made by the list and sort ``made_by`` and
    against the expected types (400 if it is not)."""
    try:
        key = loads_bounded(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)), 2)
    except ValueError:
        raise _refused(f"invalid cursor {cursor!r}") from None
    if not isinstance(key, list) or len(key) != len(types) + 1:
        raise _refused(f"invalid cursor {cursor!r}")
    if key.pop() != _digest(made_by):
        raise _refused(
            f"the cursor {cursor!r} is of another list, sort, order or filter: a cursor "
            "reads only with the parameters of the page that gave it (the time window aside)"
        )
    if not all(
        isinstance(v, t) and not isinstance(v, bool) for v, t in zip(key, types, strict=True)
    ):
        raise _refused(f"invalid cursor {cursor!r}")
    if any(isinstance(v, int) and not _INT64_MIN <= v <= _INT64_MAX for v in key) or any(
        isinstance(v, float) and not math.isfinite(v) for v in key
    ):
        # Stores keep 64-bit integers: a forged cursor must not reach them (SQLite raises).
        raise _refused(f"invalid cursor {cursor!r}")
    return tuple(key)
