"""The Users list's score summaries, joined to its page inside the statement that reads it.

A user's summaries cover the scores of their traces in the window and of the sessions
those traces are in. Over a wide window that is many targets (all time at 10M spans:
the page's 50 users own 100,000 traces and 50,000 sessions), whose ids used to come
back to the client only to be sent to the engine again, a thousand at a time, for
their rollups: most of the list's wall time. Here the page's (user, target) pairs are
the build side of a join with ``score_rollups`` in the engine, and only the rollups
found come back, as an array on each user's row; the summaries are then merged per
name by the shared rule (``score_rollups.merge_summaries``), so both stores give the
same floats.

The rollups are read as ``scores.latest_rollups`` reads them: each (target, name)'s
row of the highest version, emptied ones (count 0) left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from threadline.server.model import ScoreSummary
from threadline.server.store.clickhouse.scores import ROLLUP_FIELDS, rollup_of
from threadline.server.store.score_rollups import merge_summaries

_FIELDS = ", ".join(f"r.{name}" for name in ROLLUP_FIELDS)


def with_summaries(page: str) -> str:
    """The rows of ``page`` with their scores' rollups, latest activity first.

    ``page`` yields ``t_user``, ``totals`` (a tuple), ``last`` (the order) and
    ``targets``: an array of (kind, id), the user's traces and sessions. Each row out
    is (t_user, totals, rollups), rollups an array of rows as ``latest_rollups`` gives
    them: (kind, target id, name, fields). Parameters: ``%(project)s``, with the page's.
    """
    # The page is the join's right (build) side: one row per target of its users,
    # never the project's whole score_rollups, which is only scanned against it (its
    # sort key cannot find a page's targets: narrowing it first by the rows the page
    # merged, or by the page's ids as a scalar, cost more than the scan; measured).
    pairs = (
        "SELECT t_user, totals, last, target.1 AS p_kind, target.2 AS p_target"
        f" FROM ({page}) ARRAY JOIN targets AS target"
    )
    latest = (
        "SELECT p.t_user AS t_user, any(p.totals) AS totals, any(p.last) AS last,"
        " p.p_kind AS kind, p.p_target AS target_id, r.name AS name,"
        f" argMax(({_FIELDS}), r.version) AS row"
        " FROM (SELECT * FROM score_rollups WHERE project_id = %(project)s) AS r"
        f" RIGHT JOIN ({pairs}) AS p ON r.target_kind = p.p_kind AND r.target_id = p.p_target"
        " GROUP BY t_user, kind, target_id, name"
    )
    return (
        "SELECT t_user, any(totals),"
        " groupArrayIf((kind, target_id, name, row), tupleElement(row, 1) > 0)"
        f" FROM ({latest}) GROUP BY t_user ORDER BY any(last) DESC, t_user DESC"
    )


def summaries(rollups: Sequence[Any]) -> dict[str, ScoreSummary]:
    """A user's summaries per score name, from the rollups of a row of ``with_summaries``."""
    return merge_summaries(rollup_of(row) for row in rollups)
