"""The Users list filtered by score: its pages read in stretches, each user kept or not
by the score summaries the page already carries.

A user's summaries (``score_rollups.merge_summaries``: the rollups of their traces in the
window and of those traces' sessions) depend on the window, so no rollup kept on write
holds them; every page of the Users list computes them for its own users anyway, from
the rollups (never from raw scores). A filtered page is therefore the unfiltered list
read on from the cursor, a stretch of users at a time (four a user wanted, at least 50,
each next stretch four times longer, at most 1,000), keeping the users whose summaries
pass every filter, until the page is full or four stretches are read. A page that is
not full then still gives the cursor where it stopped, so a rare match costs the client
more pages, never one unbounded read. When a stretch holds more matches than the page
has room for, the stretch is read again up to the last one kept, so that the cursor is
the list's own (each store makes it from its own sort key).

Shared by both stores: ``read`` is a store's unfiltered page.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence

from threadline.server.model import Page, ScoreFilter, ScoreSummary, UserQuery, UserSummary

_FIRST_PER_USER = 4
_FIRST_AT_LEAST = 50
_GROWTH = 4
_STRETCH_AT_MOST = 1_000
_STRETCHES = 4

_COMPARE: Mapping[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "=": operator.eq,
    "!=": operator.ne,
}


def holds(condition: ScoreFilter, summaries: Mapping[str, ScoreSummary]) -> bool:
    """Whether ``summaries`` (one row's, per name) pass ``condition``, as the stores' SQL
    filters read a rollup: a number compares with the average, a label with the latest
    label (= or !=); a row with no value of that kind passes neither."""
    summary = summaries.get(condition.name)
    if condition.missing:
        return summary is None or summary.count == 0
    if summary is None or condition.op is None or condition.value is None:
        return False
    if isinstance(condition.value, str):
        if summary.label is None:
            return False
        same = summary.label == condition.value
        return same if condition.op == "=" else not same
    if summary.average is None:
        return False
    return _COMPARE[condition.op](summary.average, condition.value)


def _kept(user: UserSummary, filters: Sequence[ScoreFilter]) -> bool:
    return all(holds(f, user.scores) for f in filters)


def filtered_users(
    read: Callable[[UserQuery], Page[UserSummary]], query: UserQuery
) -> Page[UserSummary]:
    """The page of ``query`` (with its score filters) from the unfiltered pages ``read``
    gives; ``read`` is called with ``query``'s other parameters and no score filter."""
    if not query.scores:
        return read(query)
    plain = query.model_copy(update={"scores": []})
    kept: list[UserSummary] = []
    cursor = query.cursor
    size = min(max(_FIRST_PER_USER * query.limit, _FIRST_AT_LEAST), _STRETCH_AT_MOST)
    for _ in range(_STRETCHES):
        room = query.limit - len(kept)
        stretch = read(plain.model_copy(update={"limit": size, "cursor": cursor}))
        matches = [i for i, user in enumerate(stretch.items) if _kept(user, query.scores)]
        if len(matches) >= room:
            # The page fills within this stretch: read it again up to the last user kept,
            # for the list's own cursor after that user (None when none follow).
            upto = matches[room - 1] + 1
            if upto < len(stretch.items):
                stretch = read(plain.model_copy(update={"limit": upto, "cursor": cursor}))
            kept += [u for u in stretch.items if _kept(u, query.scores)][:room]
            return Page[UserSummary](items=kept, next_cursor=stretch.next_cursor)
        kept += [stretch.items[i] for i in matches]
        cursor = stretch.next_cursor
        if cursor is None:
            break
        size = min(size * _GROWTH, _STRETCH_AT_MOST)
    return Page[UserSummary](items=kept, next_cursor=cursor)
