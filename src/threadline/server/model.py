"""The records Threadline stores and serves, independent of any storage engine.

``SpanRecord`` is what ingest produces from one OTLP span (a plain dataclass: it is
built ten thousand times a second). The pydantic models are what every store returns
and what the JSON API and the HTML pages render, so both show the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, Field

Status = Literal["ok", "error"]

# How much of an input or output a trace or session list shows.
PREVIEW_CHARS = 2000


@dataclass(slots=True)
class SpanRecord:
    """One normalised span, ready to store. Times are Unix nanoseconds."""

    trace_id: str  # 32 lowercase hex characters
    span_id: str  # 16 lowercase hex characters
    parent_span_id: str | None
    name: str
    kind: str  # OTel SpanKind name: INTERNAL, SERVER, CLIENT, PRODUCER, CONSUMER
    start_ns: int
    end_ns: int
    status: Status
    status_message: str | None = None
    span_type: str = "DEFAULT"
    input: str | None = None  # JSON text, or plain text when the source sent text
    output: str | None = None
    # The string attribute input/output was read from, if one was: stores may keep
    # such a payload once rather than twice (attributes still show it on read).
    input_source: str | None = None
    output_source: str | None = None
    model: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    cost_usd: float | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    resource: dict[str, Any] = field(default_factory=dict)
    scope: str | None = None
    # Trace-level association as carried by this span (None when it carries none).
    session_id: str | None = None
    user_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)

    # What a trace's rollup reads of its spans (``store.rollups.SpanFacts``).
    @property
    def is_error(self) -> bool:
        return self.status == "error"

    @property
    def has_input(self) -> bool:
        return self.input is not None

    @property
    def has_output(self) -> bool:
        return self.output is not None

    @property
    def input_preview(self) -> str | None:
        return None if self.input is None else self.input[:PREVIEW_CHARS]

    @property
    def output_preview(self) -> str | None:
        return None if self.output is None else self.output[:PREVIEW_CHARS]


def ns_to_datetime(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC)


def datetime_to_ns(value: datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    ns = int(value.timestamp() * 1_000_000) * 1000
    # Storage integers are int64 ns (years 1677 to 2262): a time outside, given as a
    # filter, means "since ever" or "until the end", not a value SQLite cannot bind.
    return min(max(ns, -(2**63)), 2**63 - 1)


class Project(BaseModel):
    id: int
    name: str


# What a key may do: "full" writes spans and reads its project; "ingest" only writes
# spans (the key an application ships with, harmless if it leaks from there).
KeyScope = Literal["full", "ingest"]


class KeyAccess(BaseModel):
    """What a presented key grants."""

    project: Project
    scope: KeyScope

    @property
    def can_read(self) -> bool:
        return self.scope == "full"


class KeyInfo(BaseModel):
    """An API key as listed: never the secret itself."""

    id: int
    project: str
    prefix: str = Field(description="The first characters of the key, to recognise it.")
    scope: KeyScope = "full"
    created_at: datetime
    revoked_at: datetime | None = None


class Trace(BaseModel):
    """A trace's rollup, maintained on ingest."""

    trace_id: str
    session_id: str | None
    user_id: str | None
    name: str
    start_time: datetime
    end_time: datetime
    duration_ms: float
    span_count: int
    error_count: int
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cost_usd: float | None = Field(description="None when no span's cost is known.")
    status: Status
    tags: list[str] = []
    metadata: dict[str, Any] = {}
    input_preview: str | None = None
    output_preview: str | None = None


class Session(BaseModel):
    """A session's rollup over its traces, maintained on ingest."""

    session_id: str
    trace_count: int
    span_count: int
    start_time: datetime
    end_time: datetime
    duration_ms: float = Field(description="Wall-clock: last end minus first start.")
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cost_usd: float | None
    error_count: int
    user_ids: list[str]
    first_input: str | None
    last_output: str | None


class SessionDetail(Session):
    traces: list[Trace]


class SpanEvent(BaseModel):
    name: str
    time: datetime
    attributes: dict[str, Any] = {}


class Span(BaseModel):
    span_id: str
    parent_span_id: str | None
    name: str
    span_type: str
    kind: str
    start_time: datetime
    end_time: datetime
    duration_ms: float
    status: Status
    status_message: str | None
    input: Any = Field(description="Parsed JSON when the input was JSON, else the text.")
    output: Any
    model: str | None
    input_tokens: int | None
    output_tokens: int | None
    total_tokens: int | None
    cost_usd: float | None
    attributes: dict[str, Any]
    events: list[SpanEvent]
    resource: dict[str, Any]


class TraceDetail(Trace):
    spans: list[Span]


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        default=None, description="Pass as `cursor` to get the next page; None on the last."
    )


SessionSort = Literal["last_activity", "start", "duration", "cost", "tokens"]


class SessionQuery(BaseModel):
    """Filters of the sessions list. Times select sessions active in [start, end]."""

    limit: int = 50
    cursor: str | None = None
    user_id: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    q: str | None = None
    # Added for the web UI (issue 4); all optional, so older callers are unchanged.
    sort: SessionSort = "last_activity"  # always descending: biggest / latest first
    status: Status | None = None  # "error": sessions with at least one failed trace
    tag: str | None = None  # sessions with a trace carrying this tag
    metadata: dict[str, str] = {}  # sessions with a trace whose metadata has all of these
    changed_after: int | None = None  # live feed: touched after this watermark


class TraceQuery(BaseModel):
    limit: int = 50
    cursor: str | None = None
    session_id: str | None = None
    user_id: str | None = None
    status: Status | None = None
    start: datetime | None = None
    end: datetime | None = None
    q: str | None = None
    # Added for the web UI (issue 4).
    tag: str | None = None
    metadata: dict[str, str] = {}  # key -> value, compared as text
    changed_after: int | None = None  # live feed: written after this watermark


class UserSummary(BaseModel):
    """One end user of the instrumented app, over the traces that carry their id."""

    user_id: str
    session_count: int
    trace_count: int
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cost_usd: float | None
    error_count: int
    first_seen: datetime
    last_seen: datetime


class UserQuery(BaseModel):
    limit: int = 50
    cursor: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    q: str | None = None  # substring of the user id
