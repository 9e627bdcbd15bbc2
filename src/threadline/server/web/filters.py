"""The filter bar shared by the Traces, Sessions and Users tabs.

Turns a page's query string into the same ``TraceQuery`` / ``SessionQuery`` /
``UserQuery`` the JSON API builds from its parameters, so a page and its API twin run
one store query. Time presets are resolved to absolute times here, at request time.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, get_args
from urllib.parse import urlencode

from starlette.datastructures import QueryParams

from threadline.server import numeric_filters, scoring
from threadline.server.errors import BadRequest
from threadline.server.metadata_filter import parse_metadata
from threadline.server.model import (
    MAX_SEARCH_CHARS,
    NumericFilter,
    ScoreFilter,
    ScoreSort,
    ScoreSortKey,
    SessionQuery,
    SessionSort,
    TraceQuery,
    UserQuery,
)
from threadline.server.store import score_sorts
from threadline.server.time_windows import DEFAULT_WINDOW, WINDOWS
from threadline.server.web.score_columns import ScoreColumn

PAGE_SIZE = 50

# The lists open on the last 7 days (``time_windows``), as the JSON API does. A select is
# as wide as its longest option, so All time's caveat is short here and whole in its
# tooltip (ALL_TIME_NOTE).
PRESETS: dict[str, tuple[str, timedelta | None]] = {
    "15m": ("Last 15 minutes", WINDOWS["15m"]),
    "1h": ("Last hour", WINDOWS["1h"]),
    "24h": ("Last 24 hours", WINDOWS["24h"]),
    "7d": ("Last 7 days", WINDOWS["7d"]),
    "30d": ("Last 30 days", WINDOWS["30d"]),
    "all": ("All time (may be slow)", None),
    "custom": ("Custom…", None),
}
ALL_TIME_NOTE = (
    "May be slow on large ClickHouse projects: with a filter or another sort, the list"
    " reads every session of the project"
)
SORTS: dict[str, str] = {
    "last_activity": "Last activity",
    "start": "Start",
    "duration": "Duration",
    "cost": "Cost",
    "tokens": "Tokens",
    "relevance": "Relevance (search)",
    "context": "Peak context",
}
# The Traces tab's orders, under the same parameter.
TRACE_SORTS: dict[str, str] = {"last_activity": "Newest", "relevance": "Relevance (search)"}
# The parameters a filter bar carries from page to page (cursor is per page).
_KEYS = (
    "range",
    "start",
    "end",
    "session_id",
    "user_id",
    "status",
    "tag",
    "metadata",
    "q",
    "sort",
    "order",
    "context",
)
# Repeatable ones, named as the JSON API names them: all must hold.
_LISTS = ("score", "missing_score", "filter")
MAX_SCORE_FILTERS = 10


def parse_time(text: str, errors: list[str], label: str) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)  # 3.11+ reads a trailing "Z"
    except ValueError:
        errors.append(f"{label}: {text!r} is not a date and time")
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass
class Filters:
    range: str = DEFAULT_WINDOW
    start: str = ""
    end: str = ""
    session_id: str = ""
    user_id: str = ""
    status: str = ""
    tag: str = ""
    metadata: str = ""  # one "key=value"
    q: str = ""
    sort: str = "last_activity"
    order: str = ""  # with a score sort: "asc", else largest first
    context: str = ""  # sessions whose peak context use is at least this many percent
    score: list[str] = field(default_factory=list)  # "name op value", as the API's score=
    missing_score: list[str] = field(default_factory=list)  # names: rows without them
    filter: list[str] = field(default_factory=list)  # "field op number", as the API's filter=
    cursor: str | None = None
    errors: list[str] = field(default_factory=list)

    @classmethod
    def from_params(cls, params: QueryParams) -> Filters:
        values: dict[str, Any] = {k: params.get(k, "").strip() for k in _KEYS}
        for key in _LISTS:
            values[key] = [v.strip() for v in params.getlist(key) if v.strip()]
            values[key] = values[key][:MAX_SCORE_FILTERS]
        filters = cls(**{k: v for k, v in values.items() if v}, cursor=params.get("cursor"))
        if filters.range not in PRESETS:
            filters.range = DEFAULT_WINDOW
        if filters.order not in ("asc", "desc"):
            filters.order = ""
        if filters.score_sort() is None:
            filters.order = ""
            if filters.sort not in get_args(SessionSort):
                filters.sort = "last_activity"
        if filters.status not in ("", "ok", "error"):
            filters.status = ""
        for name in ("q", "user_id"):  # both searched with LIKE, whose patterns are bounded
            if len(getattr(filters, name)) > MAX_SEARCH_CHARS:
                setattr(filters, name, "")
                filters.errors.append(f"search text longer than {MAX_SEARCH_CHARS} characters")
        return filters

    # --- to store queries ---------------------------------------------------------

    def score_sort(self) -> ScoreSort | None:
        """The sort by a score (``sort=score:NAME`` or ``score_label:NAME``), if it is one."""
        try:
            return score_sorts.parse(self.sort, self.order or None)
        except BadRequest:
            return None

    def sort_by_column(self, column: ScoreColumn) -> tuple[str, str | None]:
        """The (sort, order) a click on a score column's header asks for: by it, largest
        first; again (sorted by it already, largest first), smallest first."""
        by: ScoreSortKey = "label" if column.data_type == "categorical" else "average"
        wanted = score_sorts.text(ScoreSort(name=column.name, by=by))
        current = self.score_sort()
        if current is not None and self.sort == wanted and current.descending:
            return wanted, "asc"
        return wanted, None

    def column_sorted(self, column: ScoreColumn) -> str | None:
        """``"descending"`` or ``"ascending"`` when the list is sorted by this column."""
        current = self.score_sort()
        if current is None or current.name != column.name:
            return None
        return "descending" if current.descending else "ascending"

    def window(self) -> tuple[datetime | None, datetime | None]:
        if self.range == "custom":
            return (
                parse_time(self.start, self.errors, "From"),
                parse_time(self.end, self.errors, "To"),
            )
        span = PRESETS[self.range][1]
        return (datetime.now(UTC) - span, None) if span else (None, None)

    def metadata_dict(self) -> dict[str, str]:
        if not self.metadata:
            return {}
        try:
            return parse_metadata([self.metadata])
        except BadRequest as error:
            self.errors.append(error.message)
            return {}

    def score_filters(self) -> list[ScoreFilter]:
        """The score filters, parsed as the API parses its ``score``/``missing_score``."""
        try:
            return scoring.parse_filters(self.score, self.missing_score)
        except BadRequest as error:
            self.errors.append(error.message)
            return []

    def numbers(self, fields: dict[str, str]) -> list[NumericFilter]:
        """The numeric filters, parsed as the API parses its ``filter``."""
        try:
            return numeric_filters.parse(self.filter, fields)
        except BadRequest as error:
            self.errors.append(error.message)
            return []

    def _common(self) -> dict[str, Any]:
        start, end = self.window()
        return {
            "limit": PAGE_SIZE,
            "cursor": self.cursor,
            "user_id": self.user_id or None,
            "start": start,
            "end": end,
            "q": self.q or None,
            "status": self.status or None,
            "tag": self.tag or None,
            "metadata": self.metadata_dict(),
            "scores": self.score_filters(),
        }

    def trace_query(self) -> TraceQuery:
        common = self._common()
        if self.session_id and self.range == DEFAULT_WINDOW:
            # A session's traces: all of them, unless another window is chosen.
            common.update(start=None, end=None)
        return TraceQuery(
            session_id=self.session_id or None,
            numbers=self.numbers(numeric_filters.TRACE_FIELDS),
            sort="relevance" if self.sort == "relevance" else "time",
            score_sort=self.score_sort(),
            **common,
        )

    def min_context_use(self) -> float | None:
        """The peak-context filter as a share (the form takes percent)."""
        if not self.context:
            return None
        try:
            percent = float(self.context)
        except ValueError:
            percent = -1.0
        if not 0 <= percent <= 100_000:
            self.errors.append(f"Context: {self.context!r} is not a percentage")
            return None
        return percent / 100

    def session_query(self) -> SessionQuery:
        return SessionQuery(
            sort=self.sort if self.score_sort() is None else "last_activity",  # type: ignore[arg-type]
            score_sort=self.score_sort(),
            numbers=self.numbers(numeric_filters.SESSION_FIELDS),
            min_context_use=self.min_context_use(),
            **self._common(),
        )

    def user_query(self) -> UserQuery:
        start, end = self.window()
        return UserQuery(
            limit=PAGE_SIZE,
            cursor=self.cursor,
            start=start,
            end=end,
            q=self.user_id or self.q or None,
        )

    # --- back to URLs --------------------------------------------------------------

    def query_string(self, **overrides: str | None) -> str:
        """This filter state as a query string (defaults left out), with overrides."""
        state = replace(self, errors=[])
        pairs: list[tuple[str, str]] = []
        for key in _KEYS:
            value = overrides[key] if key in overrides else getattr(state, key)
            if value and value != getattr(Filters, key, None):
                pairs.append((key, value))
        for key in _LISTS:
            if key not in overrides:
                pairs += [(key, value) for value in getattr(state, key)]
        if overrides.get("cursor"):
            pairs.append(("cursor", overrides["cursor"] or ""))
        return urlencode(pairs)

    def active(self) -> bool:
        return (
            any(
                getattr(self, k)
                for k in (
                    "session_id",
                    "user_id",
                    "status",
                    "tag",
                    "metadata",
                    "q",
                    "context",
                    "score",
                    "missing_score",
                    "filter",
                )
            )
            or self.range != DEFAULT_WINDOW
        )
