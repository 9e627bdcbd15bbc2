"""The JSON query API: sessions and traces of the caller's project.

Every route is project-scoped by the API key. Handlers are plain ``def``: FastAPI runs
them in its thread pool, where blocking store reads belong. The web pages call the same
store queries, so both show the same numbers.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, get_args

from fastapi import APIRouter, Depends, Query, Request

from threadline.server import numeric_filters, score_types, scoring, time_windows
from threadline.server.auth import CurrentProject
from threadline.server.errors import BadRequest, NotFound
from threadline.server.metadata_filter import parse_metadata
from threadline.server.model import (
    MAX_SEARCH_CHARS,
    METRIC_NAMES,
    MetricBucket,
    Metrics,
    MetricsQuery,
    Page,
    Project,
    ScoreFilter,
    Session,
    SessionDetail,
    SessionMatch,
    SessionQuery,
    SessionSort,
    Status,
    Trace,
    TraceDetail,
    TraceQuery,
    TraceSort,
    UserQuery,
    UserSummary,
)
from threadline.server.session_activity import mark_activity
from threadline.server.store import Store, score_sorts
from threadline.server.store import metrics as metric_rules
from threadline.server.store.session_turns import TurnPage
from threadline.server.time_windows import DEFAULT_WINDOW, WINDOWS, RangeWindow, Window

router = APIRouter(prefix="/api/v1", tags=["query"])

Limit = Annotated[int, Query(ge=1, le=500, description="Page size.")]
Cursor = Annotated[str | None, Query(description="`next_cursor` of the previous page.")]
Start = Annotated[datetime | None, Query(description="Only what was active at or after this time.")]
End = Annotated[datetime | None, Query(description="Only what was active at or before this time.")]
Text = Annotated[
    str | None,
    Query(
        max_length=MAX_SEARCH_CHARS,
        description="Full-text search in every span (names, inputs, chat messages, outputs, "
        "tool arguments and results, errors) and in ids: `word` (any case and accents), "
        '`"a phrase"`, `prefix*`; every term must match. CJK words are found inside '
        "sentences. Each row found carries a `snippet`. Ids match when they hold the "
        "text (a session's, in any ASCII case) or are it (a trace's).",
    ),
]
Tag = Annotated[str | None, Query(description="Only traces carrying this tag.")]
ListWindow = Annotated[
    Window,
    Query(
        description="When neither `start` nor `end` is given: what was active in this "
        "window back from now (`all`: all time). Defaults to the last 7 days. On a large "
        "ClickHouse project, `all` with another filter or sort reads every session and can "
        "take seconds.",
    ),
]
Metadata = Annotated[
    list[str],
    Query(description="`key=value`, repeatable: only traces whose metadata has all of them."),
]


ScoreFilters = Annotated[
    list[str],
    Query(
        description="`name op value` (op: > >= < <= = !=), repeatable, all must hold: a "
        "number or true/false compares with the score's average (true = 1), a label with "
        "its latest label.",
    ),
]
SessionNumbers = Annotated[
    list[str],
    Query(
        alias="filter",
        description="`field op number` (op: > >= < <= =), repeatable, all must hold; "
        "fields: "
        + "; ".join(f"`{k}`: {v}" for k, v in numeric_filters.SESSION_FIELDS.items())
        + ". E.g. `turns>=5`, `cost<0.10`, `duration>60`.",
    ),
]
TraceNumbers = Annotated[
    list[str],
    Query(
        alias="filter",
        description="`field op number` (op: > >= < <= =), repeatable, all must hold; "
        "fields: "
        + "; ".join(f"`{k}`: {v}" for k, v in numeric_filters.TRACE_FIELDS.items())
        + ". E.g. `duration>2.5`, `tokens>=1000`.",
    ),
]
MissingScores = Annotated[
    list[str],
    Query(description="A score name, repeatable: only rows with no score of that name."),
]


SCORE_SORT_HELP = (
    "`score:NAME`: by the average of the row's scores of that name; `score_label:NAME`: "
    "by their latest label (a categorical score); rows without one come last, newest "
    "first. Ties are broken by id."
)
Order = Annotated[
    str | None,
    Query(
        description="With a score sort: `desc` (the default, largest first) or `asc`. "
        "Other sorts take none."
    ),
]


def _sort(text: str, order: str | None, sorts: Any) -> dict[str, Any]:
    """The query's ``sort`` or ``score_sort`` from the parameters (400 if neither)."""
    score_sort = score_sorts.parse(text, order)
    if score_sort is not None:
        return {"score_sort": score_sort}
    if text not in get_args(sorts):
        allowed = ", ".join(get_args(sorts))
        raise BadRequest(f"unknown sort {text!r}: one of {allowed}, score:NAME, score_label:NAME")
    return {"sort": text}


def get_store(request: Request) -> Store:
    return request.app.state.store


CurrentStore = Annotated[Store, Depends(get_store)]


def _score_filters(
    request: Request, project: Project, score: list[str], missing_score: list[str]
) -> list[ScoreFilter]:
    """The ``score``/``missing_score`` parameters, read by their names' types."""
    types = score_types.filter_types(request.app.state, request.app.state.store, project.id)
    return scoring.fit_to_types(scoring.parse_filters(score, missing_score), types)


def session_filters(
    request: Request,
    project: CurrentProject,
    user_id: str | None = None,
    start: Start = None,
    end: End = None,
    q: Text = None,
    sort: Annotated[
        str,
        Query(
            description="One of `"
            + "`, `".join(get_args(SessionSort))
            + "`: biggest or latest first; `relevance`: best match of `q` first. "
            + SCORE_SORT_HELP
        ),
    ] = "last_activity",
    order: Order = None,
    status: Annotated[
        Status | None, Query(description="`error`: sessions with a failed trace.")
    ] = None,
    tag: Tag = None,
    metadata: Metadata = [],  # noqa: B006 - FastAPI copies Query defaults
    score: ScoreFilters = [],  # noqa: B006
    missing_score: MissingScores = [],  # noqa: B006
    numbers: SessionNumbers = [],  # noqa: B006
    min_context_use: Annotated[
        float | None,
        Query(
            ge=0,
            le=1000,
            description="Sessions whose peak context use (`peak_context_use`, a share of "
            "the model's window: 0.8 is 80 %) is at least this.",
        ),
    ] = None,
) -> SessionQuery:
    """The Sessions list's filters, as the list, the export and the bulk delete take them."""
    return SessionQuery(
        min_context_use=min_context_use,
        user_id=user_id,
        start=start,
        end=end,
        q=q,
        **_sort(sort, order, SessionSort),
        status=status,
        tag=tag,
        metadata=parse_metadata(metadata),
        scores=_score_filters(request, project, score, missing_score),
        numbers=numeric_filters.parse(numbers, numeric_filters.SESSION_FIELDS),
    )


SessionFilters = Annotated[SessionQuery, Depends(session_filters)]


def windowed_sessions(filters: SessionFilters, window: ListWindow = DEFAULT_WINDOW) -> SessionQuery:
    """The Sessions list's filters with its time window (the list and the export)."""
    start, end = time_windows.bounds(window, filters.start, filters.end)
    return filters.model_copy(update={"start": start, "end": end})


WindowedSessionFilters = Annotated[SessionQuery, Depends(windowed_sessions)]


@router.get("/sessions", summary="Sessions, newest activity first")
def list_sessions(
    request: Request,
    project: CurrentProject,
    store: CurrentStore,
    filters: WindowedSessionFilters,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[Session]:
    query = filters.model_copy(update={"limit": limit, "cursor": cursor})
    page = store.list_sessions(project.id, query)
    mark_activity(page.items, request.app.state.settings.session_idle_seconds)
    return page


@router.get("/session-search", summary="Where a search matches inside one session")
def search_session(
    project: CurrentProject,
    store: CurrentStore,
    session_id: Annotated[str, Query(min_length=1, description="The session to search in.")],
    q: Annotated[
        str,
        Query(min_length=1, max_length=MAX_SEARCH_CHARS, description="The search, as in lists."),
    ],
) -> list[SessionMatch]:
    """Every span of the session that matches, in the session's order (its turns by
    start, each turn's spans by start), with snippets: the session page's "3 of 7"."""
    return store.find_in_session(project.id, session_id, q)


# ``:path``: a session id is whatever the application sent (``tenant-a/conv-1``, a URL),
# and a ``/`` in it, even sent as ``%2F``, reaches the router decoded.
# A session's turns in one answer: a session has no size bound (one client may write one
# session id for ever), so its detail comes a page of turns at a time.
SESSION_TURNS_DEFAULT = 100
SESSION_TURNS_MAX = 1000


@router.get(
    "/sessions/{session_id:path}",
    summary="One session's rollup with a page of its traces (turns) in start order",
)
def get_session(
    session_id: str,
    request: Request,
    project: CurrentProject,
    store: CurrentStore,
    limit: Annotated[
        int, Query(ge=0, le=SESSION_TURNS_MAX, description="Turns (traces) on the page.")
    ] = SESSION_TURNS_DEFAULT,
    cursor: Annotated[
        str | None, Query(description="`next_cursor` of the previous page of this session.")
    ] = None,
    turn: Annotated[
        int | None,
        Query(ge=1, le=10**9, description="The page's first turn, by number from 1."),
    ] = None,
) -> SessionDetail:
    """The session's rollup (the whole session's, on every page) with `limit` of its
    traces from turn `turn` (default 1) or after `cursor`; `next_cursor` reads on."""
    if cursor is not None and turn is not None:
        raise BadRequest(
            "give a page's cursor or its first turn, not both", faults=[("turn", None)]
        )
    page = TurnPage(limit=limit, turn=turn or 1, cursor=cursor)
    session = store.get_session(project.id, session_id, page)
    if session is None:
        raise NotFound(f"no session {session_id!r} in project {project.name!r}")
    mark_activity([session], request.app.state.settings.session_idle_seconds)
    return session


def trace_filters(
    request: Request,
    project: CurrentProject,
    session_id: str | None = None,
    user_id: str | None = None,
    status: Status | None = None,
    start: Start = None,
    end: End = None,
    q: Text = None,
    tag: Tag = None,
    metadata: Metadata = [],  # noqa: B006 - FastAPI copies Query defaults
    score: ScoreFilters = [],  # noqa: B006
    missing_score: MissingScores = [],  # noqa: B006
    numbers: TraceNumbers = [],  # noqa: B006
    sort: Annotated[
        str,
        Query(
            description="`time`: newest first; `relevance`: best match of `q`. " + SCORE_SORT_HELP
        ),
    ] = "time",
    order: Order = None,
) -> TraceQuery:
    """The Traces list's filters, as the list and the export take them."""
    return TraceQuery(
        session_id=session_id,
        user_id=user_id,
        status=status,
        start=start,
        end=end,
        q=q,
        tag=tag,
        metadata=parse_metadata(metadata),
        scores=_score_filters(request, project, score, missing_score),
        numbers=numeric_filters.parse(numbers, numeric_filters.TRACE_FIELDS),
        **_sort(sort, order, TraceSort),
    )


TraceFilters = Annotated[TraceQuery, Depends(trace_filters)]


def windowed_traces(
    filters: TraceFilters,
    window: Annotated[
        Window,
        Query(
            description="When neither `start` nor `end` nor `session_id` is given: what "
            "was active in this window back from now (`all`: all time). Defaults to the "
            "last 7 days.",
        ),
    ] = DEFAULT_WINDOW,
) -> TraceQuery:
    """The Traces list's filters with its time window (the list and the export). A
    session's traces are read by its id: all of them, whatever the window."""
    if filters.session_id:
        return filters
    start, end = time_windows.bounds(window, filters.start, filters.end)
    return filters.model_copy(update={"start": start, "end": end})


WindowedTraceFilters = Annotated[TraceQuery, Depends(windowed_traces)]


@router.get("/traces", summary="Traces, newest first")
def list_traces(
    project: CurrentProject,
    store: CurrentStore,
    filters: WindowedTraceFilters,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[Trace]:
    query = filters.model_copy(update={"limit": limit, "cursor": cursor})
    return store.list_traces(project.id, query)


@router.get("/traces/{trace_id}", summary="One trace with all its spans")
def get_trace(trace_id: str, project: CurrentProject, store: CurrentStore) -> TraceDetail:
    trace = store.get_trace(project.id, trace_id.lower())
    if trace is None:
        raise NotFound(f"no trace {trace_id!r} in project {project.name!r}")
    return trace


@router.get("/users", summary="Users with their totals, latest activity first")
def list_users(
    request: Request,
    project: CurrentProject,
    store: CurrentStore,
    limit: Limit = 50,
    cursor: Cursor = None,
    start: Start = None,
    end: End = None,
    q: Annotated[
        str | None, Query(max_length=MAX_SEARCH_CHARS, description="Substring of the user id.")
    ] = None,
    window: ListWindow = DEFAULT_WINDOW,
    score: ScoreFilters = [],  # noqa: B006
    missing_score: MissingScores = [],  # noqa: B006
) -> Page[UserSummary]:
    start, end = time_windows.bounds(window, start, end)
    query = UserQuery(
        limit=limit,
        cursor=cursor,
        start=start,
        end=end,
        q=q,
        scores=_score_filters(request, project, score, missing_score),
    )
    return store.list_users(project.id, query)


@router.get("/metrics", summary="Time series of sessions, traces, users, cost and errors")
def get_metrics(
    request: Request,
    project: CurrentProject,
    store: CurrentStore,
    start: Annotated[
        datetime | None,
        Query(description="Range start (widened to its bucket); default: `end` minus 7 days."),
    ] = None,
    end: Annotated[datetime | None, Query(description="Range end; default: now.")] = None,
    window: Annotated[
        RangeWindow | None,
        Query(
            description="Without `start`: the range is this window back from `end`, as "
            "the lists' `window` (but `all`: a chart's range has a start)."
        ),
    ] = None,
    bucket: MetricBucket = "day",
    metric: Annotated[
        list[str],
        Query(description=f"Repeatable; default all: {', '.join(METRIC_NAMES)}."),
    ] = [],  # noqa: B006 - FastAPI copies Query defaults
    group_by: Annotated[
        str | None,
        Query(description="`tag` or `metadata:KEY`: one series per tag or per value."),
    ] = None,
    user_id: str | None = None,
    tag: Tag = None,
    metadata: Metadata = [],  # noqa: B006
) -> Metrics:
    """Per bucket (UTC hours, days or Mondays-based weeks): counts of what was active in
    the bucket (as the lists' `start`/`end` filters select), and cost, tokens and score
    averages (`score:NAME` series) in the bucket where their trace started. See
    docs/api.md for the exact rules."""
    names = metric_rules.check_metrics(metric)
    end = end or metric_rules.utc_now()
    kind, key = metric_rules.parse_group_by(group_by)
    back = WINDOWS[window] if window is not None else None
    query = MetricsQuery(
        start=start or end - (back or timedelta(days=7)),
        end=end,
        bucket=bucket,
        user_id=user_id,
        tag=tag,
        metadata=parse_metadata(metadata),
        group_by=kind,
        group_key=key,
        max_models=request.app.state.settings.metrics_max_models,
        max_score_names=request.app.state.settings.metrics_max_score_names,
    )
    return store.metrics(project.id, query, names)
