"""Opaque keyset-pagination cursors: the sort key of the last row of a page."""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from threadline.server.errors import BadRequest
from threadline.server.jsontext import loads_bounded

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
T = TypeVar("T")


def page(
    rows: Sequence[T], limit: int, key: Callable[[T], Sequence[Any]]
) -> tuple[list[T], str | None]:
    """A page of ``rows`` fetched with one row more than ``limit`` (to tell whether
    there is a next page), and the cursor after it: ``key`` of its last row (None on
    the last page)."""
    if len(rows) > limit:
        return list(rows[:limit]), encode(*key(rows[limit - 1]))
    return list(rows), None


def encode(*key: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


def decode(cursor: str, *types: type) -> tuple[Any, ...]:
    """The key a cursor holds, checked against the expected types (400 if it is not)."""
    try:
        key = loads_bounded(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)), 2)
    except ValueError:
        raise BadRequest(f"invalid cursor {cursor!r}") from None
    if (
        not isinstance(key, list)
        or len(key) != len(types)
        or not all(
            isinstance(v, t) and not isinstance(v, bool) for v, t in zip(key, types, strict=True)
        )
    ):
        raise BadRequest(f"invalid cursor {cursor!r}")
    if any(isinstance(v, int) and not _INT64_MIN <= v <= _INT64_MAX for v in key) or any(
        isinstance(v, float) and not math.isfinite(v) for v in key
    ):
        # Stores keep 64-bit integers: a forged cursor must not reach them (SQLite raises).
        raise BadRequest(f"invalid cursor {cursor!r}")
    return tuple(key)
