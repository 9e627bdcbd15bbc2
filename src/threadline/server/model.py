"""The records Threadline stores and serves, independent of any storage engine.

``SpanRecord`` is what ingest produces from one OTLP span (a plain dataclass: it is
built ten thousand times a second). The pydantic models are what every store returns
and what the JSON API and the HTML pages render, so both show the same numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from operator import attrgetter
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationInfo,
    computed_field,
    field_serializer,
)

from threadline.server.jsontext import dumps
from threadline.server.preview_text import PREVIEW_CHARS, readable

# The validation context of what a store gives back: it was checked when written, and
# what an older version let through must still read (a NUL name would make every page
# that lists score configurations fail).
STORED = {"stored": True}


# What no name or id may hold: the C0 controls (tab too: a name is one line, and a tab
# shows as a space), DEL, the C1 controls, and the bidirectional embeddings, overrides
# and isolates. NUL ends strings in C (CSV readers, shells and terminals cut the text
# short); a newline or ESC forges lines and terminal colours in logs and exports; an
# override makes a name read as another ("\u202etxt.exe" shows as "exe.txt").
# Bidirectional marks (U+200E, U+200F, U+061C) stay: right-to-left names need them.
# Nor a lone surrogate (U+D800-U+DFFF), which is no character: JSON's "\ud800" escape
# makes one, and UTF-8 cannot encode it, so no store could write the text.
CONTROL_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _kind(character: str) -> str:
    if character == "\0":
        return "a NUL character"
    if "\ud800" <= character <= "\udfff":
        return "a lone surrogate"
    if character >= "\u202a":
        return "a bidirectional formatting character"
    return "a control character"


def _refused(character: str) -> str:
    return f"holds {_kind(character)} (U+{ord(character):04X}), which no name or id may hold"


def _without_controls(text: str, info: ValidationInfo) -> str:
    if info.context is not STORED:  # what an older version let through still reads
        found = CONTROL_CHARACTERS.search(text)
        if found is not None:
            raise ValueError(_refused(found.group()))
    return text


def controls_replaced(text: str) -> str:
    """``text`` with what no name may hold (``CONTROL_CHARACTERS``) made U+FFFD: for the
    ids and tags ingest takes from spans, which it keeps rather than refuse."""
    if text.isprintable():  # no control, format or separator character: most ids
        return text
    return CONTROL_CHARACTERS.sub("\ufffd", text)


# A name or an id a person or client chooses (score names, session ids, tags...).
Name = Annotated[str, AfterValidator(_without_controls)]

# What free text (a score's comment, a note, an evaluator's prompt) may not hold: the C0
# controls but tab and newline, DEL and the C1 controls. ESC and CSI forge colours and
# cursor moves where the text is printed (the CLI, a terminal paging an export), a lone
# CR overwrites the line, NUL cuts it short. A browser's form sends its line breaks as
# CR LF: they are kept as LF. Bidirectional formatting characters stay (right-to-left
# writing uses embeddings and isolates): the web UI shows each text isolated, so that
# they reorder nothing around it. A lone surrogate is no character (see above).
TEXT_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def _text_without_controls(text: str, info: ValidationInfo) -> str:
    if info.context is STORED:
        return text
    text = text.replace("\r\n", "\n")
    found = TEXT_CONTROLS.search(text)
    if found is not None:
        character = found.group()
        raise ValueError(
            f"holds {_kind(character)} (U+{ord(character):04X}), which no text may hold"
            " (tab and newline may)"
        )
    return text


def text_controls_replaced(text: str) -> str:
    """``text`` with what no free text may hold (``TEXT_CONTROLS``) made U+FFFD: for the
    text a machine writes (a judge's reasoning), which is kept rather than refused."""
    return TEXT_CONTROLS.sub("\ufffd", text.replace("\r\n", "\n"))


# Text a person writes for others to read.
FreeText = Annotated[str, AfterValidator(_text_without_controls)]

# A cost is a sum of floats (``0.1 + 0.2`` is ``0.30000000000000004``), and a span's is a
# product of tokens and a price: written to the picodollar (1e-12 USD, the unit the
# dashboard sums in), it is the decimal a person would write. Every answer that carries
# a cost (the API's lists and details, exports, the dashboard's top lists) writes it so.
COST_DIGITS = 12


def picodollar_cost(cost: float) -> float:
    """``cost`` rounded to the picodollar: its shortest decimal, without the float noise."""
    return round(cost, COST_DIGITS)


# A cost in USD as the models hold it (the sum as summed) and as JSON writes it.
Cost = Annotated[float, PlainSerializer(picodollar_cost, return_type=float, when_used="json")]

# An average of scores is a sum divided (0.1 and 0.2 average 0.15000000000000002), and a
# client's value may carry the noise already (0.1 + 0.2 sent as 0.30000000000000004).
# Written to 12 significant digits it is the decimal a person would write: every answer
# that carries an average (the lists' and details' score summaries, exports, the
# dashboard's score series) writes it so. Each score's own value is written as sent.
AVERAGE_DIGITS = 12


def significant_average(average: float) -> float:
    """``average`` to ``AVERAGE_DIGITS`` significant digits: without the float noise."""
    return float(f"{average:.{AVERAGE_DIGITS}g}")


# An average as the models hold it (as divided) and as JSON writes it.
Average = Annotated[
    float, PlainSerializer(significant_average, return_type=float, when_used="json")
]

Status = Literal["ok", "error"]

# What grouped the traces of an inferred session (``ingest/session_signals.py``),
# strongest first: the order in which a session lists them.
Signal = Literal["thread_id", "previous_response_id", "history"]
SIGNALS: tuple[Signal, ...] = ("thread_id", "previous_response_id", "history")


@dataclass(slots=True, frozen=True)
class SessionSignals:
    """The keys a span's trace offers (a later turn finds it by them) and asks for (an
    earlier turn of its conversation offers them), each ask with its signal."""

    offers: tuple[bytes, ...]
    asks: tuple[tuple[bytes, Signal], ...]
    # What names the conversation without finding another turn (a store that links
    # turns without reading them back, ClickHouse): the thread id's key, the digest of
    # the conversation's first exchange, and the Responses chain's own and previous keys.
    thread: bytes | None = None
    opening: bytes | None = None
    opening_resent: bool = False  # the opening was in the input (not a first turn's)
    response: bytes | None = None
    previous_response: bytes | None = None


@dataclass(frozen=True, slots=True)
class GenAIEvent:
    """One GenAI log event kept from an OTLP logs export: a chat message of the model
    call its span stands for (``ingest/log_events.py``), until its span takes it as
    input or output, or kept beside a span that was stored before it came."""

    trace_id: str  # hex, as SpanRecord's
    span_id: str
    time_ns: int  # the record's time (or observed time)
    received_ns: int  # when the server decoded its export
    seq: int  # its place in that export: ties of time keep the order sent
    is_output: bool  # a choice (the call's output), else a message sent (its input)
    message: str  # JSON text of one GenAI message ({"role", "parts", ...})
    event_id: int  # random, names the row


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
    # For a span without a session id: what may tie its trace to the conversation's
    # other turns (None when nothing does).
    session_signals: SessionSignals | None = None
    # The chat messages ``input`` (``output``) is the JSON text of, as parsing it gives
    # them back (keys in its order), while the record is in the process that read them
    # (ingest's normalisation): the search index's text reads them rather than parse
    # the text again. Not compared, not pickled, not stored; emptied wherever the text
    # may change (redaction).
    input_messages: list[dict[str, Any]] | None = field(default=None, compare=False, repr=False)
    output_messages: list[dict[str, Any]] | None = field(default=None, compare=False, repr=False)

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
    def input_text(self) -> str | None:
        return self.input

    @property
    def output_preview(self) -> str | None:
        return None if self.output is None else self.output[:PREVIEW_CHARS]

    def __reduce__(self) -> tuple[type[SpanRecord], tuple[Any, ...]]:
        # Records travel from the ingest workers as pickles. By default a slotted object
        # is pickled as a dict of its slots, set back one by one; rebuilt by the
        # constructor from its values in order, it pickles in 70 % and loads in half
        # the time (docs/benchmarks.md, "The SQLite engine: the module, not the engine").
        return (SpanRecord, _SPAN_RECORD_VALUES(self))


# Every field but the parsed messages, which are last (the constructor takes the values
# in order) and do not travel: they are the input's and output's text again.
_PARSED_ONLY = ("input_messages", "output_messages")
_SPAN_RECORD_VALUES = attrgetter(
    *(f.name for f in fields(SpanRecord) if f.name not in _PARSED_ONLY)
)


def metadata_text(value: Any) -> str | None:
    """A metadata value as pages show it and the metadata filter compares it: text as it
    is, anything else as JSON (``true``, ``3``, ``0.5``, ``{"a":1}``); None for null."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return dumps(value)


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
# spans (the key an application ships with, harmless if it leaks from there); "scores"
# only writes end-user scores (the key a browser app ships with, for feedback buttons).
KeyScope = Literal["full", "ingest", "scores"]


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


class ScoreSummary(BaseModel):
    """What a list shows of one score name on one session or trace: kept up to date on
    every score write and delete (``score_rollups``), never grouped per page."""

    count: int
    average: Average | None = Field(
        description="Mean of numeric values (booleans count as 0 and 1), to 12 significant "
        "digits; None for labels."
    )
    label: str | None = Field(description="The latest categorical label, if any.")


class Snippet(BaseModel):
    """Matching text around a search's first match in a span, every match marked."""

    text: str
    highlights: list[tuple[int, int]] = Field(
        description="[start, end) offsets in `text` of each match, in order."
    )


# The ``*_text`` fields: a preview as the web UI's lists show it (``preview_text``),
# each described as what it holds; the rules for JSON are the same for all four.
_READ_AS = (
    "; of an object of one member, that member; of a JSON string, its text; of other "
    "JSON, JSON text. `…` ends it when the preview is JSON cut at 2,000 characters."
)
INPUT_TEXT_HELP = (
    "`input_preview` as text: what the turn was asked. Of a chat, its last user message "
    "(else its last message)" + _READ_AS
)
OUTPUT_TEXT_HELP = (
    "`output_preview` as text: what the trace answered. Of messages, the last one's text "
    "(the last user message's, when one is among them)" + _READ_AS
)
FIRST_INPUT_TEXT_HELP = (
    "`first_input` as text: what the session was first asked. Of a chat, its last user "
    "message (else its last message)" + _READ_AS
)
LAST_OUTPUT_TEXT_HELP = (
    "`last_output` as text: the session's last answer. Of messages, the last one's text "
    "(the last user message's, when one is among them)" + _READ_AS
)


class Trace(BaseModel):
    """A trace's rollup, maintained on ingest."""

    # Every field is in every answer (null when unknown): the response schema says so.
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

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
    cost_usd: Cost | None = Field(description="None when no span's cost is known.")
    status: Status
    tags: list[str] = []
    metadata: dict[str, Any] = {}
    input_preview: str | None = Field(
        default=None,
        description="What stands for the trace's input, as stored: the turn's new chat "
        "messages or the user's text, as JSON text when it was sent as JSON, at most "
        "2,000 characters (`input_preview_text`: the text alone).",
    )
    output_preview: str | None = Field(
        default=None,
        description="The first 2,000 characters of the output, as stored "
        "(`output_preview_text`: the text alone).",
    )
    scores: dict[str, ScoreSummary] = Field(
        default={}, description="Per score name: scores on the trace and on its spans."
    )
    snippet: Snippet | None = Field(
        default=None, description="With a text search `q`: where the trace matched."
    )
    context_use: float | None = Field(
        default=None,
        description="The largest share of its model's context window an LLM call of the "
        "trace filled (input tokens over the window genai-prices gives); None when no "
        "call's model has a known window.",
    )

    @computed_field(description=INPUT_TEXT_HELP)  # type: ignore[prop-decorator]
    @property
    def input_preview_text(self) -> str | None:
        return readable(self.input_preview)

    @computed_field(description=OUTPUT_TEXT_HELP)  # type: ignore[prop-decorator]
    @property
    def output_preview_text(self) -> str | None:
        return readable(self.output_preview)


class Session(BaseModel):
    """A session's rollup over its traces, maintained on ingest."""

    # Every field is in every answer (null when unknown): the response schema says so.
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    session_id: str
    trace_count: int
    span_count: int
    start_time: datetime
    end_time: datetime
    duration_ms: float = Field(description="Wall-clock: last end minus first start.")
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cost_usd: Cost | None
    error_count: int
    user_ids: list[str]
    first_input: str | None = Field(
        description="The `input_preview` of the session's first trace that has one."
    )
    last_output: str | None = Field(
        description="The `output_preview` of the session's last trace that has one."
    )
    peak_context_use: float | None = Field(
        default=None,
        description="The largest `context_use` of the session's traces: how full a "
        "context window its conversation came to fill.",
    )
    scores: dict[str, ScoreSummary] = Field(
        default={},
        description="Per score name: the scores written on the session itself (a "
        "`session_id` and no trace), not those of its turns: each of its traces' `scores` "
        "hold those (`GET /api/v1/traces?session_id=`).",
    )
    activity: Literal["active", "ended"] | None = Field(
        default=None,
        description="`ended` once the session has had no new trace for the server's "
        "session_idle_seconds (online evaluators then judge it), else `active`.",
    )
    snippet: Snippet | None = Field(
        default=None, description="With a text search `q`: where the session matched."
    )
    inferred: bool = Field(
        default=False,
        description="True when the application sent no session id and Threadline grouped "
        "these traces from what they carry (`inferred_by`).",
    )
    inferred_by: list[Signal] = Field(
        default=[],
        description="What grouped an inferred session's traces, strongest first: "
        "`thread_id` (a framework's thread id), `previous_response_id` (OpenAI Responses "
        "turns chained), `history` (each turn's chat input resends the one before).",
    )

    def mark_inferred(self, signals: list[Signal] | None) -> None:
        """Mark the session inferred by ``signals`` (None: its id was sent)."""
        if signals is not None:
            self.inferred = True
            self.inferred_by = signals

    @computed_field(description=FIRST_INPUT_TEXT_HELP)  # type: ignore[prop-decorator]
    @property
    def first_input_text(self) -> str | None:
        return readable(self.first_input)

    @computed_field(description=LAST_OUTPUT_TEXT_HELP)  # type: ignore[prop-decorator]
    @property
    def last_output_text(self) -> str | None:
        return readable(self.last_output)


class SessionDetail(Session):
    traces: list[Trace] = Field(
        description="The session's traces (its turns) in start order, then trace id: a "
        "page of them (`limit`), the first numbered `first_turn`; `trace_count` counts "
        "them all."
    )
    first_turn: int = Field(
        default=1, description="The turn number (from 1) of the first of `traces`."
    )
    next_cursor: str | None = Field(
        default=None,
        description="Pass as `cursor` for the session's next turns; None after its last.",
    )


class SessionMatch(BaseModel):
    """A span of a session where a search matched, in the session's order."""

    trace_id: str
    span_id: str
    turn: int = Field(description="The trace's place in the session, from 1.")
    span_name: str
    snippet: Snippet


class SpanEvent(BaseModel):
    # Every field is in every answer (null when unknown): the response schema says so.
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

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
    cost_usd: Cost | None
    attributes: dict[str, Any]
    events: list[SpanEvent]
    resource: dict[str, Any]


class TraceDetail(Trace):
    spans: list[Span]


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    # Every field is in every answer (null when unknown): the response schema says so.
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    items: list[T]
    next_cursor: str | None = Field(
        default=None, description="Pass as `cursor` to get the next page; None on the last."
    )


# --- scores, feedback and notes -----------------------------------------------------------

ScoreDataType = Literal["numeric", "boolean", "categorical"]
# Who wrote a score: the SDK, the JSON API, a person in the web UI, an end user of the
# instrumented app (a "scores" key), or an evaluator.
ScoreSource = Literal["sdk", "api", "ui", "end-user", "eval"]
ScoreOp = Literal[">", ">=", "<", "<=", "=", "!="]

# Longest search text: SQLite refuses LIKE patterns past 50,000 bytes, and no real
# search is longer than a sentence or an id.
MAX_SEARCH_CHARS = 1000
MAX_SCORE_NAME = 200
MAX_SCORE_ID = 200
MAX_SCORE_LABEL = 200
MAX_COMMENT_CHARS = 10_000
MAX_AUTHOR_CHARS = 200


@dataclass(slots=True)
class ScoreRecord:
    """One validated score, ready to store (``scoring.prepare`` builds it). Exactly one
    of ``value`` (numeric, or 0/1 for boolean) and ``label`` (categorical) is set."""

    id: str
    name: str
    data_type: str  # ScoreDataType
    value: float | None
    label: str | None
    session_id: str | None
    trace_id: str | None
    span_id: str | None
    source: str  # ScoreSource
    author: str | None
    comment: str | None
    created_ns: int

    def same_score(self, other: ScoreRecord) -> bool:
        """Equal in all but when it was written: a retry of the same score, which a
        store leaves as it is."""
        return all(
            getattr(self, f.name) == getattr(other, f.name)
            for f in fields(self)
            if f.name != "created_ns"
        )

    @property
    def target(self) -> tuple[str, str]:
        """(kind, id) of what the score rolls up into: a trace (scores of a trace and of
        its spans) or else a session."""
        if self.trace_id:
            return ("trace", self.trace_id)
        return ("session", self.session_id or "")


class ScoreIn(BaseModel):
    """A score as a client sends it. The type follows from the value when not given
    (true/false: boolean, a number: numeric, text: categorical), and must agree with the
    score name's configuration when the project has one."""

    # What the API docs page fills its form with: a score the server accepts as it is.
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "helpfulness",
                    "value": 4,
                    "session_id": "chat-42",
                    "comment": "Answered in one turn",
                    "author": "ana",
                },
                {"name": "resolved", "value": True, "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"},
            ]
        }
    )

    id: Name | None = Field(
        default=None,
        max_length=MAX_SCORE_ID,
        description="Client-chosen id: writing the same id again replaces that score "
        "(a retried POST changes nothing). A new id is made when omitted.",
    )
    name: Name = Field(min_length=1, max_length=MAX_SCORE_NAME)
    value: bool | float | Name = Field(
        description="A number, true/false, or a label (categorical)."
    )
    data_type: ScoreDataType | None = None
    session_id: Name | None = Field(default=None, min_length=1, max_length=1000)
    trace_id: str | None = Field(default=None, pattern="^[0-9a-fA-F]{32}$")
    span_id: str | None = Field(default=None, pattern="^[0-9a-fA-F]{16}$")
    comment: FreeText | None = Field(default=None, max_length=MAX_COMMENT_CHARS)
    author: Name | None = Field(default=None, max_length=MAX_AUTHOR_CHARS)
    source: ScoreSource | None = Field(
        default=None, description="Defaults to `api`; a `scores` key always writes `end-user`."
    )


class Score(BaseModel):
    id: str
    name: str
    data_type: ScoreDataType
    value: bool | float | str = Field(
        description="The number, true/false, or the label, as written."
    )
    session_id: str | None
    trace_id: str | None
    span_id: str | None
    source: ScoreSource
    author: str | None
    comment: str | None
    created_at: datetime


class ScoreQuery(BaseModel):
    limit: int = 50
    cursor: str | None = None
    # A session's scores: those written with its id and those on its traces (its turns'
    # and their spans'), however written.
    session_id: str | None = None
    # With ``session_id``: only the scores on the session itself (no trace named), the
    # ones its own summary counts (the session page's panel).
    session_own: bool = False
    trace_id: str | None = None
    # The scores of any of these traces (the session page reads its turns' scores).
    trace_ids: list[str] = []
    span_id: str | None = None
    name: str | None = None
    source: ScoreSource | None = None


class ScoreFilter(BaseModel):
    """``name op value`` on a session's or trace's score summary, or ``missing``: has
    no score of that name (review queues)."""

    name: str
    op: ScoreOp | None = None
    value: float | str | None = None  # a number (average) or a label
    missing: bool = False


class ScoreConfig(BaseModel):
    """A project's definition of one score name: what the UI form offers, and what a
    write of that name must satisfy."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"name": "helpfulness", "data_type": "numeric", "min_value": 1, "max_value": 5},
                {
                    "name": "outcome",
                    "data_type": "categorical",
                    "labels": ["resolved", "escalated"],
                },
            ]
        }
    )

    name: Name = Field(min_length=1, max_length=MAX_SCORE_NAME)
    data_type: ScoreDataType
    min_value: float | None = None
    max_value: float | None = None
    labels: list[Name] = Field(default=[], max_length=100)
    description: FreeText | None = Field(default=None, max_length=1000)


def stored_config(**fields: Any) -> ScoreConfig:
    """A score configuration as a store gives it back (see ``STORED``)."""
    return ScoreConfig.model_validate(fields, context=STORED)


class NoteIn(BaseModel):
    session_id: Name = Field(min_length=1, max_length=1000)
    body: FreeText = Field(min_length=1, max_length=MAX_COMMENT_CHARS)
    author: Name | None = Field(default=None, max_length=MAX_AUTHOR_CHARS)
    trace_id: str | None = Field(default=None, pattern="^[0-9a-fA-F]{32}$")


class Note(BaseModel):
    """A free-text note left on a session (optionally on one of its traces)."""

    id: str
    session_id: str
    trace_id: str | None
    body: str
    author: str | None
    created_at: datetime


SessionSort = Literal[
    "last_activity", "start", "duration", "cost", "tokens", "relevance", "context"
]
TraceSort = Literal["time", "relevance"]
ScoreSortKey = Literal["average", "label"]


class ScoreSort(BaseModel):
    """A list sorted by one score name's summary on each row (``sort=score:NAME`` or
    ``score_label:NAME``): its average or its latest label, rows without one last (those
    newest first). Ties are broken by the row's id, in the same direction."""

    name: str
    by: ScoreSortKey = "average"
    descending: bool = True


NumericOp = Literal[">", ">=", "<", "<=", "="]


class NumericFilter(BaseModel):
    """``field op value`` on a session's or trace's totals (``numeric_filters.py``):
    durations in seconds, cost in USD."""

    field: str
    op: NumericOp
    value: float


class SessionQuery(BaseModel):
    """Filters of the sessions list. Times select sessions active in [start, end]."""

    limit: int = 50
    cursor: str | None = None
    user_id: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    q: str | None = None
    # Optional filters and the sort order, for the API and the web UI alike.
    sort: SessionSort = "last_activity"  # always descending: biggest / latest first
    status: Status | None = None  # "error": sessions with at least one failed trace
    tag: str | None = None  # sessions with a trace carrying this tag
    metadata: dict[str, str] = {}  # sessions with a trace whose metadata has all of these
    changed_after: int | None = None  # live feed: touched after this watermark
    scores: list[ScoreFilter] = []  # all must hold, on the session's own scores
    numbers: list[NumericFilter] = []  # all must hold, on the session's totals
    # Sessions whose peak context use (``Session.peak_context_use``) is at least this.
    min_context_use: float | None = None
    score_sort: ScoreSort | None = None  # replaces ``sort`` when given


class TraceQuery(BaseModel):
    limit: int = 50
    cursor: str | None = None
    session_id: str | None = None
    user_id: str | None = None
    status: Status | None = None
    start: datetime | None = None
    end: datetime | None = None
    q: str | None = None
    # Optional filters, for the API and the web UI alike.
    tag: str | None = None
    metadata: dict[str, str] = {}  # key -> value, compared as text
    changed_after: int | None = None  # live feed: written after this watermark
    scores: list[ScoreFilter] = []  # all must hold, on the trace's scores
    numbers: list[NumericFilter] = []  # all must hold, on the trace's totals
    sort: TraceSort = "time"  # newest first, or best match of ``q`` first
    score_sort: ScoreSort | None = None  # replaces ``sort`` when given


class UserSummary(BaseModel):
    """One end user of the instrumented app, over the traces that carry their id."""

    # Every field is in every answer (null when unknown): the response schema says so.
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    user_id: str
    session_count: int
    trace_count: int
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cost_usd: Cost | None
    error_count: int
    first_seen: datetime
    last_seen: datetime
    scores: dict[str, ScoreSummary] = Field(
        default={},
        description="Per score name, over the scores of the user's sessions and traces.",
    )


class UserQuery(BaseModel):
    limit: int = 50
    cursor: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    q: str | None = None  # substring of the user id
    scores: list[ScoreFilter] = []  # all must hold, on the user's merged summaries


# --- dashboard metrics ---------------------------------------------------------------

MetricBucket = Literal["hour", "day", "week"]
# The time series ``Store.metrics`` computes, per bucket (and per group when grouped).
METRIC_NAMES = (
    "sessions",
    "traces",
    "active_users",
    "error_sessions",
    "error_traces",
    "session_error_rate",
    "trace_error_rate",
    "cost_usd",
    "input_tokens",
    "output_tokens",
    "total_tokens",
    # Split by model (the series' ``model``): the usage of each trace's spans of a model.
    "cost_usd_by_model",
    "input_tokens_by_model",
    "output_tokens_by_model",
    "total_tokens_by_model",
)
# At most this many buckets in one query (30 days by hour is 720).
MAX_BUCKETS = 1000
# Grouped series keep the groups with the most traces in the range, at most this many.
MAX_GROUPS = 20
# The by-model series of a metric and group: the models using the most, at most this
# many, then the rest added up (by default: the setting metrics_max_models).
MAX_MODELS = 20
# Score series: of the score names with the most values in the range, at most this many
# (by default: the setting metrics_max_score_names).
MAX_SCORE_NAMES = 50
TOP_ROWS = 10


class MetricsQuery(BaseModel):
    """What the dashboard and ``GET /api/v1/metrics`` ask for. ``start`` and ``end`` are
    widened to whole buckets (UTC; weeks start on Monday)."""

    start: datetime
    end: datetime
    bucket: MetricBucket = "day"
    user_id: str | None = None
    tag: str | None = None
    metadata: dict[str, str] = {}
    # None, "tag", or a metadata key: series are then split by the tag or by that key's
    # value (compared as text, like the metadata filter).
    group_by: Literal["tag", "metadata"] | None = None
    group_key: str | None = None
    # What the answer keeps (the server's settings, not the caller's): by-model series
    # per metric and group, and score names.
    max_models: int = MAX_MODELS
    max_score_names: int = MAX_SCORE_NAMES


#: The metric name of a score's series: ``score:NAME``.
SCORE_METRIC_PREFIX = "score:"


class MetricSeries(BaseModel):
    metric: str = Field(description="A name of METRIC_NAMES, or `score:NAME`.")
    group: str | None = Field(
        default=None,
        description="The tag or metadata value of this series when grouped; None for the "
        "traces without one (or for every series when not grouped).",
    )
    model: str | None = Field(
        default=None,
        description='For the `*_by_model` metrics: the model of this series (`""` for '
        "spans without one; None for the models past those using the most, 20 by "
        "default, added up); "
        "None for the other metrics.",
    )
    values: list[float | None] = Field(
        description="One value per bucket, in the order of `buckets`; None where a rate "
        "or an average has nothing to divide, or no cost is known. A score's averages are "
        "written to 12 significant digits."
    )

    @field_serializer("values", when_used="json")
    def _averages_without_noise(self, values: list[float | None]) -> list[float | None]:
        if not self.metric.startswith(SCORE_METRIC_PREFIX):
            return values
        return [None if value is None else significant_average(value) for value in values]


class Distribution(BaseModel):
    """A session figure over the sessions active in the range (nearest-rank percentiles)."""

    count: int
    p50: float | None
    p95: float | None
    max: float | None


class TopUser(BaseModel):
    user_id: str
    trace_count: int
    error_count: int = Field(description="Traces with an error.")
    cost_usd: Cost | None


class TopSession(BaseModel):
    session_id: str
    start_time: datetime
    trace_count: int
    error_count: int = Field(description="Traces with an error.")
    cost_usd: Cost | None


class Metrics(BaseModel):
    """Time series and summaries over the trace and session rollups of a time range."""

    start: datetime = Field(description="Start of the first bucket.")
    end: datetime = Field(description="End of the last bucket (exclusive).")
    bucket: MetricBucket
    group_by: str | None = Field(description="`tag`, `metadata:KEY`, or None.")
    buckets: list[datetime] = Field(description="The start of each bucket.")
    series: list[MetricSeries]
    distributions: dict[str, Distribution] = Field(
        description="`turns_per_session`, `session_duration_ms`, `session_cost_usd`."
    )
    top_users_by_cost: list[TopUser]
    top_users_by_errors: list[TopUser]
    top_sessions_by_cost: list[TopSession]
    top_sessions_by_errors: list[TopSession]
    figures_up_to: datetime | None = Field(
        default=None,
        description=(
            "Set when the figures were derived in the background (ClickHouse, without a "
            "user filter): every write made before this instant is in them, later ones "
            "may not be yet. Null: the figures are current."
        ),
    )


# --- share links -------------------------------------------------------------------------

ShareKind = Literal["session", "trace"]

# The longest metadata key a share link hides: a key as a person types it, bounded like
# the ids a link names.
MAX_METADATA_KEY = 1000


class ShareIn(BaseModel):
    """A read-only link to make: what it shows, for how long, and what it hides."""

    kind: ShareKind
    target_id: str = Field(min_length=1, max_length=1000, description="The session or trace id.")
    expires_in_days: float = Field(
        default=7, gt=0, le=365, description="The link stops working after this long."
    )
    hide_io: bool = Field(default=False, description="Hide every input and output.")
    hide_metadata: list[Annotated[Name, Field(max_length=MAX_METADATA_KEY)]] = Field(
        default=[],
        max_length=100,
        description="Metadata keys not to show (each at most 1,000 characters, none "
        "holding a control character; an empty one is ignored).",
    )


class ShareLink(BaseModel):
    """A share link as listed: never its token (shown once, when made)."""

    id: str
    kind: ShareKind
    target_id: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None
    hide_io: bool
    hide_metadata: list[str]

    @property
    def active(self) -> bool:
        return self.revoked_at is None and self.expires_at > datetime.now(UTC)


class NewShareLink(ShareLink):
    token: str = Field(description="The secret in the link; shown only now.")
    path: str = Field(description="The link's path on this server: /shared/<token>.")
