"""The Dashboard tab: how sessions, cost, errors and scores move over time.

One ``Store.metrics`` call, the one ``GET /api/v1/metrics`` makes, laid out as SVG bar
charts (``charts.py``), distribution figures and top lists. Every bar links to the
list it counts: its bucket as a custom range, with the page's filters and the bar's
group.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.datastructures import QueryParams

from threadline.server.errors import BadRequest
from threadline.server.http.query_names import reads
from threadline.server.metadata_filter import parse_metadata
from threadline.server.model import (
    METRIC_NAMES,
    MetricBucket,
    Metrics,
    MetricsQuery,
    significant_average,
)
from threadline.server.score_types import written_types
from threadline.server.store import Store
from threadline.server.store import metrics as metric_rules
from threadline.server.web import present
from threadline.server.web.auth import PageProject
from threadline.server.web.charts import PALETTE, REST_COLOR, Chart, Series, bar_chart
from threadline.server.web.filters import Problem, custom_window, parse_time, refusals
from threadline.server.web.render import render
from threadline.server.web.score_columns import written_types_of

router = APIRouter(include_in_schema=False)

RANGES: dict[str, tuple[str, timedelta | None, MetricBucket]] = {
    "24h": ("Last 24 hours", timedelta(hours=24), "hour"),
    "7d": ("Last 7 days", timedelta(days=7), "day"),
    "30d": ("Last 30 days", timedelta(days=30), "day"),
    "90d": ("Last 90 days", timedelta(days=90), "week"),
    "custom": ("Custom…", None, "day"),
}
BUCKETS: tuple[MetricBucket, ...] = ("hour", "day", "week")
# The parameters of the dashboard's URL (the API's, plus the range preset).
_KEYS = ("range", "start", "end", "bucket", "user_id", "tag", "metadata", "group_by")
_LABEL_FORMAT = {"hour": "%b %d %H:00", "day": "%b %d", "week": "%b %d"}


@dataclass
class DashboardFilters:
    range: str = "7d"
    start: str = ""
    end: str = ""
    bucket: str = ""  # "": the range's own (hours for a day, weeks for 90 days)
    user_id: str = ""
    tag: str = ""
    metadata: str = ""  # one "key=value"
    group_by: str = ""  # "", "tag", or "metadata:KEY"

    @classmethod
    def from_params(cls, params: QueryParams) -> DashboardFilters:
        """The dashboard's filters from its query string; what it cannot read is a 400
        saying what (as ``/api/v1/metrics`` answers), not a dashboard that ignores it."""
        filters = cls()
        for key in _KEYS:
            value = params.get(key, "").strip()
            if value:
                setattr(filters, key, value)
        problems = filters._problems()
        if problems:
            raise BadRequest(
                "; ".join(message for message, _ in problems),
                faults=(fault for _, faults in problems for fault in faults),
            )
        return filters

    def _problems(self) -> list[Problem]:
        """What the page cannot read, each with the parameter at fault."""
        problems: list[Problem] = []
        if self.range not in RANGES:
            problems.append(
                (f"range {self.range!r} is not one of {', '.join(RANGES)}", [("range", None)])
            )
        if self.bucket not in ("", *BUCKETS):
            problems.append(
                (f"bucket {self.bucket!r} is not one of {', '.join(BUCKETS)}", [("bucket", None)])
            )
        problems += refusals(
            [
                (
                    lambda: parse_metadata([self.metadata]) if self.metadata else None,
                    [("metadata", None)],
                ),
                (lambda: metric_rules.parse_group_by(self.group_by), [("group_by", None)]),
                *custom_window(self.range, self.start, self.end),
            ]
        )
        if not problems:  # each part reads, but the query may still not be made of them
            problems += refusals([(self.query, [])])
        return problems

    @property
    def effective_bucket(self) -> MetricBucket:
        return self.bucket or RANGES[self.range][2]  # type: ignore[return-value]

    def query(self) -> MetricsQuery:
        now = datetime.now(UTC)
        start = end = None
        if self.range == "custom":
            start = parse_time(self.start, "From")
            end = parse_time(self.end, "To")
        span = RANGES[self.range][1] or timedelta(days=7)
        end = end or now
        start = start or end - span
        metadata = parse_metadata([self.metadata]) if self.metadata else {}
        kind, key = metric_rules.parse_group_by(self.group_by)
        return MetricsQuery(
            start=start,
            end=end,
            bucket=self.effective_bucket,
            user_id=self.user_id or None,
            tag=self.tag or None,
            metadata=metadata,
            group_by=kind,
            group_key=key,
        )

    def query_string(self, **overrides: str) -> str:
        pairs = {k: overrides.get(k, getattr(self, k)) for k in _KEYS}
        return urlencode({k: v for k, v in pairs.items() if v})

    def list_url(
        self, tab: str, metrics: Metrics, bucket: datetime, group: str | None, **more: str
    ) -> str:
        """The list a bar counts: its bucket as a custom range, the page's filters, the
        bar's group."""
        params: dict[str, str] = {
            "range": "custom",
            "start": _iso(bucket),
            "end": _iso(metric_rules.bucket_end(bucket, metrics.bucket)),
        }
        if self.user_id:
            params["user_id"] = self.user_id
        tag, metadata = self.tag, self.metadata
        if group is not None and metrics.group_by == "tag":
            tag = group  # the list takes one tag: the bar's
        elif group is not None and metrics.group_by and metrics.group_by.startswith("metadata:"):
            metadata = f"{metrics.group_by.removeprefix('metadata:')}={group}"
        if tab == "users" and (tag or metadata):
            # The Users list has no tag or metadata filter: the traces of the bar's
            # bucket with them are what it counts (the users of those traces).
            tab = "traces"
        if tag:
            params["tag"] = tag
        if metadata:
            params["metadata"] = metadata
        params.update(more)
        return f"/{tab}?{urlencode(params)}"


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _count(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:,.1f}"


def _percent(value: float) -> str:
    return f"{value * 100:.0f}%" if value >= 0.1 or value == 0 else f"{value * 100:.1f}%"


def _score(value: float) -> str:
    return f"{value:.2f}"


# (key, title, metric, stacked, format, list tab, extra list filters)
_CHARTS: tuple[tuple[str, str, str, bool, Callable[[float], str], str, dict[str, str]], ...] = (
    ("sessions", "Sessions", "sessions", True, _count, "sessions", {}),
    ("traces", "Traces", "traces", True, _count, "traces", {}),
    ("active_users", "Active users", "active_users", True, _count, "users", {}),
    ("cost", "Cost (USD)", "cost_usd", True, lambda v: present.cost(v), "traces", {}),
    ("tokens", "Tokens", "total_tokens", True, _count, "traces", {}),
    (
        "error_sessions",
        "Sessions with an error",
        "error_sessions",
        True,
        _count,
        "sessions",
        {"status": "error"},
    ),
    (
        "session_error_rate",
        "Sessions with an error (rate)",
        "session_error_rate",
        False,
        _percent,
        "sessions",
        {"status": "error"},
    ),
    (
        "trace_error_rate",
        "Traces with an error (rate)",
        "trace_error_rate",
        False,
        _percent,
        "traces",
        {"status": "error"},
    ),
)


# (key, title, metric, format) of the charts split by model
_BY_MODEL: tuple[tuple[str, str, str, Callable[[float], str]], ...] = (
    ("cost_by_model", "Cost by model (USD)", "cost_usd_by_model", lambda v: present.cost(v)),
    ("tokens_by_model", "Tokens by model", "total_tokens_by_model", _count),
)
# The charts whose axis writes its ticks in one style, not each as a bar's value.
_AXES: dict[str, Callable[[float], Callable[[float], str]]] = {
    "cost": present.cost_axis,
    "cost_by_model": present.cost_axis,
    "session_error_rate": present.percent_axis,
    "trace_error_rate": present.percent_axis,
}
# The charts of counts, whose axis has whole ticks (a session, never half of one).
_COUNTS = {"sessions", "traces", "active_users", "tokens", "error_sessions", "tokens_by_model"}
# A chart shows this many models; the rest are added up as "other models".
_MODELS_SHOWN = 6


def _model_colors(metrics: Metrics) -> dict[str, str]:
    """One colour per model for every by-model chart, so that a model looks the same in
    the cost and the tokens chart (each sorts its models by its own figure)."""
    palette = [c for c in PALETTE if c != REST_COLOR]
    colors: dict[str, str] = {}
    for _, _, metric, _ in _BY_MODEL:
        for s in metrics.series:
            name = s.model or "(no model)"
            if s.metric == metric and s.model is not None and name not in colors:
                colors[name] = palette[len(colors) % len(palette)]
    return colors


def _model_series(metrics: Metrics, metric: str, colors: dict[str, str]) -> list[Series]:
    """The series of ``metric`` per model (largest first, as the store sorts them); the
    store's own rest (model None) goes with the models not shown."""
    found = [s for s in metrics.series if s.metric == metric and s.model is not None]
    shown = [
        Series(name, s.values, colors.get(name))
        for s in found[:_MODELS_SHOWN]
        for name in [s.model or "(no model)"]
    ]
    rest = found[_MODELS_SHOWN:] + [
        s for s in metrics.series if s.metric == metric and s.model is None
    ]
    if rest:
        values: list[float | None] = [
            None
            if all(s.values[i] is None for s in rest)
            else sum(s.values[i] or 0.0 for s in rest)
            for i in range(len(metrics.buckets))
        ]
        shown.append(Series("other models", values, REST_COLOR))
    return shown


def build_charts(
    metrics: Metrics,
    filters: DashboardFilters,
    score_type: Callable[[str], str | None] = lambda name: None,
) -> list[Chart]:
    """The charts of ``metrics``; ``score_type``: a score name's type, so that a boolean
    reads as the session page and the lists read one (the share of good)."""
    grouped = metrics.group_by is not None
    label = _LABEL_FORMAT[metrics.bucket]

    def series_of(metric: str) -> list[Series]:
        return [Series(s.group, s.values) for s in metrics.series if s.metric == metric]

    charts = []
    for key, title, metric, stacked, fmt, tab, extra in _CHARTS:
        found = series_of(metric)
        if not found:
            continue

        def href(bucket: datetime, group: str | None, tab: str = tab, extra: dict = extra) -> str:
            return filters.list_url(tab, metrics, bucket, group, **extra)

        charts.append(
            bar_chart(
                key,
                title,
                metrics.buckets,
                found,
                stacked=stacked,
                fmt=fmt,
                bucket_label=lambda b: b.strftime(label),
                href=href,
                grouped=grouped,
                axis_fmt=_AXES.get(key),
                counts=key in _COUNTS,
            )
        )
    if not grouped:
        # Split by model, stacked: one chart per figure (grouped, the groups split the
        # bars already, so the split by model is left to the API).
        colors = _model_colors(metrics)
        for key, title, metric, fmt in _BY_MODEL:
            found = _model_series(metrics, metric, colors)
            if found:
                charts.append(
                    bar_chart(
                        key,
                        title,
                        metrics.buckets,
                        found,
                        stacked=True,
                        fmt=fmt,
                        bucket_label=lambda b: b.strftime(label),
                        href=lambda b, _model: filters.list_url("traces", metrics, b, None),
                        grouped=True,
                        axis_fmt=_AXES.get(key),
                        counts=key in _COUNTS,
                    )
                )
    scores = sorted({s.metric for s in metrics.series if s.metric.startswith("score:")})
    for metric in scores:
        name = metric.removeprefix("score:")
        boolean = score_type(name) == "boolean"
        # The bars' values as the API writes them: averages without the float noise.
        averages = [
            Series(one.group, [None if v is None else significant_average(v) for v in one.values])
            for one in series_of(metric)
        ]
        charts.append(
            bar_chart(
                f"score-{name}",
                f"Score: {name} ({'% good' if boolean else 'average'})",
                metrics.buckets,
                averages,
                stacked=False,
                fmt=_percent if boolean else _score,
                axis_fmt=present.percent_axis if boolean else None,
                bucket_label=lambda b: b.strftime(label),
                href=lambda b, g: filters.list_url("traces", metrics, b, g),
                grouped=grouped,
            )
        )
    return charts


def _store(request: Request) -> Store:
    return request.app.state.store


def _score_types(request: Request, project_id: int) -> Callable[[str], str | None]:
    """Each score name's type: its configuration's, else the one its latest score was
    written with (as the lists' score columns type theirs)."""
    configured = {c.name: c.data_type for c in _store(request).list_score_configs(project_id)}
    known = written_types(request.app.state)
    written = written_types_of(_store(request), project_id, known, None)
    return lambda name: configured.get(name) or written("", name)


@router.get("/dashboard", dependencies=[reads(*_KEYS)])
def dashboard(request: Request, project: PageProject) -> Response:
    filters = DashboardFilters.from_params(request.query_params)
    # A range of more buckets than a chart holds is the store's 400, as the API's.
    settings = request.app.state.settings
    query = filters.query().model_copy(
        update={
            "max_models": settings.metrics_max_models,
            "max_score_names": settings.metrics_max_score_names,
        }
    )
    metrics = _store(request).metrics(project.id, query, list(METRIC_NAMES))
    context: dict[str, Any] = {
        "project": project,
        "tab": "dashboard",
        "filters": filters,
        "ranges": RANGES,
        "buckets": BUCKETS,
        "metrics": metrics,
        "charts": build_charts(metrics, filters, _score_types(request, project.id))
        if metrics
        else [],
        "list_url": filters.list_url,
        # The project's feed of trace writes has no position before its first trace.
        "no_traces": _store(request).live_watermark(project.id) == 0,
        "base_url": str(request.base_url).rstrip("/"),
    }
    return render(request, "dashboard.html", context)
