"""The filter bar shared by the Traces, Sessions and Users tabs.

Turns a page's query string into the same ``TraceQuery`` / ``SessionQuery`` /
``UserQuery`` the JSON API builds from its parameters, so a page and its API twin run
one store query. Time presets are resolved to absolute times here, at request time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import QueryParams

from threadline.server import numeric_filters, scoring
from threadline.server.errors import BadRequest, Fault
from threadline.server.metadata_filter import parse_metadata
from threadline.server.model import (
    MAX_SEARCH_CHARS,
    NumericFilter,
    ScoreFilter,
    ScoreSort,
    ScoreSortKey,
    SessionQuery,
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
# What each tab's address takes: its filter bar's fields and its page's cursor. Anything
# else is a 400 (``http/query_names.py``), as on the JSON API.
TAB_PARAMETERS: dict[str, tuple[str, ...]] = {
    "traces": (*(k for k in _KEYS if k != "context"), *_LISTS, "cursor"),
    "sessions": (*(k for k in _KEYS if k != "session_id"), *_LISTS, "cursor"),
    "users": ("range", "start", "end", "user_id", "score", "missing_score", "cursor"),
}
_TAB_SORTS = {"traces": TRACE_SORTS, "sessions": SORTS, "users": {"last_activity": "Last activity"}}
_NUMBER_FIELDS = {
    "traces": numeric_filters.TRACE_FIELDS,
    "sessions": numeric_filters.SESSION_FIELDS,
    "users": {},
}


def parse_time(text: str, label: str) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)  # 3.11+ reads a trailing "Z"
    except ValueError:
        raise BadRequest(f"{label}: {text!r} is not a date and time") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# What of an address a page cannot read: the message, and the parameters at fault.
Problem = tuple[str, list[Fault]]
# A reading of some of its parameters (BadRequest if it cannot), and those parameters.
Check = tuple[Callable[[], object], list[Fault]]
# The type a score filter's name holds (``score_types.filter_types``).
TypeOf = Callable[[str], str | None]


def custom_window(range_: str, start: str, end: str) -> list[Check]:
    """A custom range's From and To, each read alone; nothing for a preset range."""
    if range_ != "custom":
        return []
    return [
        (lambda: parse_time(start, "From"), [("start", None)]),
        (lambda: parse_time(end, "To"), [("end", None)]),
    ]


def refusals(checks: list[Check]) -> Iterator[Problem]:
    """The message and the parameters of each check that cannot read them."""
    for check, faults in checks:
        try:
            check()
        except BadRequest as error:
            yield error.message, faults


@dataclass
class Filters:
    tab: str = "sessions"  # "traces", "sessions" or "users": what the values mean
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
    order: str = ""  # with a score sort: "asc" or "desc" (the default, largest first)
    context: str = ""  # sessions whose peak context use is at least this many percent
    score: list[str] = field(default_factory=list)  # "name op value", as the API's score=
    missing_score: list[str] = field(default_factory=list)  # names: rows without them
    filter: list[str] = field(default_factory=list)  # "field op number", as the API's filter=
    cursor: str | None = None

    @classmethod
    def from_params(cls, params: QueryParams, tab: str) -> Filters:
        """The ``tab``'s filters from its query string; a value the page cannot read is
        a 400 saying what is wrong (all of them), as the JSON API answers, rather than
        a list that silently ignores it. Empty values are left out (a form without
        scripts sends its empty fields)."""
        values: dict[str, Any] = {k: params.get(k, "").strip() for k in _KEYS}
        for key in _LISTS:
            values[key] = [v.strip() for v in params.getlist(key) if v.strip()]
        # The context field is followed by its unit: "15%" typed in it means 15.
        values["context"] = values["context"].removesuffix("%").rstrip()
        filters = cls(tab=tab, **{k: v for k, v in values.items() if v})
        filters.cursor = params.get("cursor") or None
        # The last of a field given twice was read (?tag=a&tag=b listed tag b alone).
        repeated = [k for k in _KEYS if len([v for v in params.getlist(k) if v.strip()]) > 1]
        problems: list[Problem] = [
            (f"{k} given more than once: it takes one value", [(k, None)]) for k in repeated
        ]
        problems += filters._problems(params)
        if problems:
            raise BadRequest(
                "; ".join(message for message, _ in problems),
                faults=(fault for _, faults in problems for fault in faults),
            )
        return filters

    def _problems(self, params: QueryParams) -> Iterator[Problem]:
        """What is wrong, each with the parameters at fault (a repeated one's values
        read one by one, so that only the wrong ones are named)."""
        if self.range not in PRESETS:
            yield f"range {self.range!r} is not one of {', '.join(PRESETS)}", [("range", None)]
        if self.status not in ("", "ok", "error"):
            yield f"status {self.status!r} is not ok or error", [("status", None)]
        for name in ("q", "user_id"):  # both searched with LIKE, whose patterns are bounded
            if len(getattr(self, name)) > MAX_SEARCH_CHARS:
                yield (
                    f"{name}: search text longer than {MAX_SEARCH_CHARS} characters",
                    [(name, None)],
                )
        for key in _LISTS:
            if len(getattr(self, key)) > MAX_SCORE_FILTERS:
                yield f"{key}: at most {MAX_SCORE_FILTERS} of them", [(key, None)]
        fields = _NUMBER_FIELDS[self.tab]
        each_value: dict[str, Callable[[str], object]] = {
            "score": scoring.parse_filter,
            "filter": lambda text: numeric_filters.parse([text], fields),
        }
        for key, check_value in each_value.items():
            for raw in params.getlist(key):
                if not raw.strip():
                    continue
                try:
                    check_value(raw.strip())
                except BadRequest as error:
                    yield error.message, [(key, raw)]
        yield from refusals(
            [
                (self._sort_checked, self._sort_faults()),
                (self.metadata_dict, [("metadata", None)]),
                (self.min_context_use, [("context", None)]),
                *custom_window(self.range, self.start, self.end),
            ]
        )

    def _sort_faults(self) -> list[Fault]:
        """What of a sort that cannot be read is wrong: the order alone when the sort
        reads without it, else the sort (and its order, which follows it)."""
        try:
            sort_alone = score_sorts.parse(self.sort, None) is not None
        except BadRequest:
            sort_alone = False
        if sort_alone or self.sort in _TAB_SORTS[self.tab]:
            return [("order", None)]
        return [("sort", None), ("order", None)]

    def _sort_checked(self) -> None:
        """The sort as the API reads it: a score sort with its order, or one of the
        tab's sorts without one (an ``order`` left from a score sort is refused)."""
        sorts = _TAB_SORTS[self.tab]
        if score_sorts.parse(self.sort, self.order or None) is None and self.sort not in sorts:
            raise BadRequest(
                f"unknown sort {self.sort!r}: one of {', '.join(sorts)}, score:NAME, "
                "score_label:NAME"
            )

    # --- to store queries ---------------------------------------------------------

    def score_sort(self) -> ScoreSort | None:
        """The sort by a score (``sort=score:NAME`` or ``score_label:NAME``), if it is one
        (``from_params`` has refused a sort that does not parse)."""
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
                parse_time(self.start, "From"),
                parse_time(self.end, "To"),
            )
        span = PRESETS[self.range][1]
        return (datetime.now(UTC) - span, None) if span else (None, None)

    def metadata_dict(self) -> dict[str, str]:
        return parse_metadata([self.metadata]) if self.metadata else {}

    def score_filters(self, type_of: TypeOf | None = None) -> list[ScoreFilter]:
        """The score filters, parsed as the API parses its ``score``/``missing_score``,
        read by their names' types when ``type_of`` tells them (``scoring.fit_to_types``)."""
        filters = scoring.parse_filters(self.score, self.missing_score)
        if type_of is None:
            return filters
        try:
            return scoring.fit_to_types(filters, type_of)
        except BadRequest as error:  # the page's way back leaves the score filters out
            raise BadRequest(str(error), faults=[("score", None)]) from None

    def numbers(self) -> list[NumericFilter]:
        """The numeric filters on the tab's fields, parsed as the API parses its ``filter``."""
        return numeric_filters.parse(self.filter, _NUMBER_FIELDS[self.tab])

    def _common(self, type_of: TypeOf | None) -> dict[str, Any]:
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
            "scores": self.score_filters(type_of),
        }

    def trace_query(self, type_of: TypeOf | None = None) -> TraceQuery:
        common = self._common(type_of)
        if self.session_id and self.range == DEFAULT_WINDOW:
            # A session's traces: all of them, unless another window is chosen.
            common.update(start=None, end=None)
        return TraceQuery(
            session_id=self.session_id or None,
            numbers=self.numbers(),
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
            raise BadRequest(f"Context: {self.context!r} is not a percentage")
        return percent / 100

    def session_query(self, type_of: TypeOf | None = None) -> SessionQuery:
        return SessionQuery(
            sort=self.sort if self.score_sort() is None else "last_activity",  # type: ignore[arg-type]
            score_sort=self.score_sort(),
            numbers=self.numbers(),
            min_context_use=self.min_context_use(),
            **self._common(type_of),
        )

    def user_query(self, type_of: TypeOf | None = None) -> UserQuery:
        start, end = self.window()
        return UserQuery(
            limit=PAGE_SIZE,
            cursor=self.cursor,
            start=start,
            end=end,
            q=self.user_id or None,
            scores=self.score_filters(type_of),
        )

    # --- back to URLs --------------------------------------------------------------

    def query_string(self, **overrides: str | None) -> str:
        """This filter state as a query string (defaults left out), with overrides."""
        pairs: list[tuple[str, str]] = []
        for key in _KEYS:
            value = overrides[key] if key in overrides else getattr(self, key)
            if value and value != getattr(Filters, key, None):
                pairs.append((key, value))
        for key in _LISTS:
            if key not in overrides:
                pairs += [(key, value) for value in getattr(self, key)]
        if overrides.get("cursor"):
            pairs.append(("cursor", overrides["cursor"] or ""))
        return urlencode(pairs)

    def tab_query(self, tab: str) -> str:
        """This state as the query of another list tab's link: the filters that tab
        takes and reads alike. A score filter or sort reads the other kind's scores, a
        number filter another kind's fields: those stay on this tab."""
        other = replace(self, tab=tab, score=[], missing_score=[], order="")
        other.filter = [f for f in self.filter if _parses(f, _NUMBER_FIELDS[tab])]
        if tab != "sessions" or self.score_sort() is not None:
            other.sort = "last_activity"
        if tab != "sessions":
            other.context = ""
        if tab != "traces":
            other.session_id = ""
        return other.query_string()

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


def _parses(expression: str, fields: dict[str, str]) -> bool:
    try:
        numeric_filters.parse([expression], fields)
    except BadRequest:
        return False
    return True
