"""The score columns of the Sessions and Traces lists: one per score name, showing each
row's summary (the average, the share of good for thumbs, or the latest label).

The names are those present on the page's rows (a configured name nobody used yet
would be a column of dashes; the filter bar still offers it), typed by the project's
configuration where it has one, else by the type one of its scores was written with
(read from a row that has it, as a rollup keeps no type, and kept by each process for
a minute: ``score_types.WrittenTypes``). A
boolean then reads as on the session page: a thumb when every score agrees, else the
share of good. The summaries come with the rows (the rollups kept on every score
write), never from a query per page. Live mode sends rows rendered elsewhere, so the
page names its columns and their types in the stream's URL (``column=``, ``type=``)
and the new rows line up with its header; a row with a name the page would show on a
reload says so (``live.py``), and the page fetches itself to take the column.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, get_args
from urllib.parse import urlencode

from starlette.datastructures import QueryParams

from threadline.server.model import (
    ScoreConfig,
    ScoreDataType,
    ScoreQuery,
    ScoreSummary,
    significant_average,
)
from threadline.server.score_types import WrittenTypes
from threadline.server.store import Store

_TYPES = set(get_args(ScoreDataType))

# Beyond this many names the table would no longer fit: the first ones by name show.
MAX_COLUMNS = 8


@dataclass(frozen=True)
class ScoreColumn:
    name: str
    data_type: str | None  # None: a name nobody configured

    def text(self, summary: ScoreSummary | None) -> str:
        if summary is None:
            return "—"
        if summary.average is None:
            return summary.label or "—"
        if self.data_type == "boolean":
            return f"{summary.average:.0%} good"
        return f"{summary.average:.3g}"

    def thumb(self, summary: ScoreSummary | None) -> str | None:
        """ "up" or "down" for a boolean whose scores all agree (shown as the session
        page shows one score); None otherwise."""
        if self.data_type != "boolean" or summary is None or summary.average is None:
            return None
        return {1.0: "up", 0.0: "down"}.get(summary.average)

    def value(self, summary: ScoreSummary | None) -> str:
        """The ``data-value``: the average as the API gives it, or the label."""
        if summary is None:
            return ""
        if summary.average is None:
            return summary.label or ""
        return repr(significant_average(summary.average))


# (target id, score name) -> the type a score of that name on that target was written
# with (None: it has none).
WrittenType = Callable[[str, str], str | None]


def written_types_of(
    store: Store, project_id: int, known: WrittenTypes, kind: str | None
) -> WrittenType:
    """The type each name was written with, read from one score of it: the target's own
    for a ``kind`` of row that is a score target ("session", "trace"), else (a user, a
    chart) the name's latest score; kept a while by ``known``."""

    def written_type(target_id: str, name: str) -> str | None:
        def read() -> str | None:
            fields: dict[str, Any] = {"limit": 1, "name": name}
            if kind is not None:
                fields[f"{kind}_id"] = target_id
            found = store.list_scores(project_id, ScoreQuery.model_validate(fields)).items
            return found[0].data_type if found else None

        return known.get(project_id, name, read)

    return written_type


def score_columns(
    configs: Iterable[ScoreConfig],
    rows: Iterable[tuple[str, Mapping[str, ScoreSummary]]],
    written_type: WrittenType,
) -> list[ScoreColumn]:
    """The columns of ``rows`` (each its target id and summaries by name)."""
    types: dict[str, str] = {c.name: c.data_type for c in configs}
    first_with: dict[str, str] = {}  # name -> the first row's target id that has it
    for target_id, scores in rows:
        for name in scores:
            first_with.setdefault(name, target_id)
    columns = []
    for name in sorted(first_with)[:MAX_COLUMNS]:
        data_type = types.get(name)
        if data_type is None:
            data_type = written_type(first_with[name], name)
        columns.append(ScoreColumn(name, data_type))
    return columns


def columns_from_params(params: QueryParams, configs: Iterable[ScoreConfig]) -> list[ScoreColumn]:
    """The columns a live stream's page shows (its ``column`` and ``type`` parameters;
    a configuration's type wins over the page's)."""
    types: dict[str, str] = {c.name: c.data_type for c in configs}
    names = params.getlist("column")[:MAX_COLUMNS]
    given = params.getlist("type")
    columns = []
    for i, name in enumerate(names):
        shown = given[i] if i < len(given) and given[i] in _TYPES else None
        columns.append(ScoreColumn(name, types.get(name, shown)))
    return columns


def columns_query(columns: Iterable[ScoreColumn]) -> str:
    pairs = [
        (key, value)
        for c in columns
        for key, value in (("column", c.name), ("type", c.data_type or ""))
    ]
    return urlencode(pairs)
