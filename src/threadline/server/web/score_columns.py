"""The score columns of the Sessions and Traces lists: one per score name, showing each
row's summary (the average, the share of good for thumbs, or the latest label).

The names are those present on the page's rows (a configured name nobody used yet
would be a column of dashes; the filter bar still offers it), typed by the project's
configuration where it has one. The summaries come
with the rows (the rollups kept on every score write), never from a query per page.
Live mode sends rows rendered elsewhere, so the page names its columns in the stream's
URL (``column=``) and the new rows line up with its header.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from starlette.datastructures import QueryParams

from threadline.server.model import ScoreConfig, ScoreSummary

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

    def value(self, summary: ScoreSummary | None) -> str:
        """The ``data-value``: the average as the API gives it, or the label."""
        if summary is None:
            return ""
        return repr(summary.average) if summary.average is not None else summary.label or ""


def score_columns(
    configs: Iterable[ScoreConfig], rows: Iterable[Mapping[str, ScoreSummary]]
) -> list[ScoreColumn]:
    types = {c.name: c.data_type for c in configs}
    names: set[str] = set()
    for scores in rows:
        names.update(scores)
    return [ScoreColumn(name, types.get(name)) for name in sorted(names)[:MAX_COLUMNS]]


def columns_from_params(params: QueryParams, configs: Iterable[ScoreConfig]) -> list[ScoreColumn]:
    """The columns a live stream's page shows (its ``column`` parameters)."""
    types = {c.name: c.data_type for c in configs}
    names = params.getlist("column")[:MAX_COLUMNS]
    return [ScoreColumn(name, types.get(name)) for name in names]


def columns_query(columns: Iterable[ScoreColumn]) -> str:
    return urlencode([("column", c.name) for c in columns])
