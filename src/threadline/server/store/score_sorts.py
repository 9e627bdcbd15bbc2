"""Lists sorted by a score (``ScoreSort``): the rows with that score's value first, by
it, then the rows without one, newest first, through one keyset cursor.

Shared by the backends, so that both give the same order and the same cursors: each
reads the two parts from its own score rollups (SQLite walks the rollups' (kind, name,
average) or (kind, name, label) index; ClickHouse reads the name's range of its rollups)
and ``pick`` splices them into a page. A cursor holds the part it stopped in, then the
sort key and the id of the last row: ``(0, value, id)`` in the scored part, ``(1, time
ns, id)`` in the rest; it is made by the list, the score's name and kind and the order
(``made_by``): one read by another sort is a 400, as for every list (``cursors``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from threadline.server.errors import BadRequest
from threadline.server.model import ScoreSort
from threadline.server.store import cursors

SCORED, UNSCORED = 0, 1
R = TypeVar("R")

# (after: the (key, id) to start after, or None; count) -> up to ``count`` rows as
# (key, id, row), in the list's order.
Read = Callable[[tuple[Any, str] | None, int], Sequence[tuple[Any, str, R]]]


@dataclass(frozen=True, slots=True)
class Picked(Generic[R]):
    part: int  # SCORED or UNSCORED
    key: Any  # the score's value (scored), else the row's time in ns
    row_id: str
    row: R

    def page_key(self) -> tuple[Any, ...]:
        return (self.part, self.key, self.row_id)


def made_by(sort: ScoreSort, listed: str, *, where: str) -> str:
    """The ``listed`` list (``session``, ``trace``) sorted by ``sort`` (its name, kind
    and order) and filtered by ``where`` (``sorts.filtered_by``), as its cursors name it."""
    return f"{listed}s by {text(sort)} {'desc' if sort.descending else 'asc'} {where}"


def position(
    cursor: str | None, sort: ScoreSort, listed: str, *, where: str
) -> tuple[int, Any, str] | None:
    """The (part, key, id) a cursor of this sort holds; 400 for any other cursor
    (another sort's or filter's too)."""
    if cursor is None:
        return None
    value_type: type = float if sort.by == "average" else str
    sorted_by = made_by(sort, listed, where=where)
    try:
        part, key, row_id = cursors.decode(cursor, int, value_type, str, made_by=sorted_by)
        if part != SCORED:
            raise BadRequest(f"invalid cursor {cursor!r}")
    except BadRequest:
        part, key, row_id = cursors.decode(cursor, int, int, str, made_by=sorted_by)
        if part != UNSCORED:
            raise BadRequest(f"invalid cursor {cursor!r}") from None
    return part, key, row_id


def pick(
    listed: str,
    sort: ScoreSort,
    limit: int,
    cursor: str | None,
    read_scored: Read[R],
    read_unscored: Read[R],
    *,
    where: str,
) -> list[Picked[R]]:
    """Up to ``limit + 1`` rows after ``cursor`` (one more than a page: there is a next
    page when it is there): the scored ones, then, if they run out, the others.
    ``listed``: which list (``session``, ``trace``), bound into the cursors with its
    filters ``where``."""
    after = position(cursor, sort, listed, where=where)
    picked: list[Picked[R]] = []
    if after is None or after[0] == SCORED:
        start = None if after is None else (after[1], after[2])
        picked += [Picked(SCORED, k, i, r) for k, i, r in read_scored(start, limit + 1)]
    if len(picked) <= limit:
        start = None if after is None or after[0] == SCORED else (after[1], after[2])
        more = read_unscored(start, limit + 1 - len(picked))
        picked += [Picked(UNSCORED, k, i, r) for k, i, r in more]
    return picked


def page(
    picked: Sequence[Picked[R]], limit: int, sort: ScoreSort, listed: str, *, where: str
) -> tuple[list[R], str | None]:
    """The page of ``pick``'s rows and the cursor after it."""
    sorted_by = made_by(sort, listed, where=where)
    rows, next_cursor = cursors.page(picked, limit, Picked.page_key, made_by=sorted_by)
    return [p.row for p in rows], next_cursor


def parse(text: str, order: str | None) -> ScoreSort | None:
    """A ``sort`` parameter naming a score (``score:NAME``: by its average;
    ``score_label:NAME``: by its latest label) with its ``order`` (``desc``, the
    default, or ``asc``); None for another sort (which takes no ``order``)."""
    kind, colon, name = text.partition(":")
    if not colon or kind not in ("score", "score_label"):
        if order not in (None, ""):
            raise BadRequest(f"order={order!r} applies to a score sort (sort=score:NAME) only")
        return None
    if not name.strip():
        raise BadRequest(f"sort={text!r} needs a score name after the colon")
    if order not in (None, "", "asc", "desc"):
        raise BadRequest(f"order must be asc or desc, not {order!r}")
    return ScoreSort(
        name=name.strip(),
        by="average" if kind == "score" else "label",
        descending=order != "asc",
    )


def text(sort: ScoreSort) -> str:
    """The ``sort`` parameter of ``sort`` (``parse``'s inverse, without the order)."""
    return f"{'score' if sort.by == 'average' else 'score_label'}:{sort.name}"
