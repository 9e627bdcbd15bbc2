"""The storage contract every backend implements.

Callers (ingest, API, web pages, CLI) only see this protocol; ``open_store`` picks the
backend from a URL. The contract test suite in ``tests/store`` runs unchanged against
every implementation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol, TypeVar

from threadline.server.evaluation.model import (
    EvaluationRun,
    Evaluator,
    EvaluatorIn,
    RunOutcome,
    RunQuery,
    RunRecord,
)
from threadline.server.model import (
    GenAIEvent,
    KeyAccess,
    KeyInfo,
    KeyScope,
    Metrics,
    MetricsQuery,
    Note,
    NoteIn,
    Page,
    Project,
    Score,
    ScoreConfig,
    ScoreQuery,
    ScoreRecord,
    Session,
    SessionDetail,
    SessionMatch,
    SessionQuery,
    SpanRecord,
    Trace,
    TraceDetail,
    TraceQuery,
    UserQuery,
    UserSummary,
)
from threadline.server.redaction.rules import RedactionRules
from threadline.server.store.session_turns import TurnPage


@dataclass(frozen=True, slots=True)
class StoredKey:
    """An API key as a store keeps it: its digest, never the secret (for migration)."""

    id: int
    project_id: int
    key_hash: bytes  # SHA-256 of the key
    prefix: str
    scope: KeyScope
    created_ns: int
    revoked_ns: int | None


@dataclass(frozen=True, slots=True)
class AccessRecords:
    """Every project and key of a store, as ``threadline migrate`` copies them."""

    projects: list[Project]
    keys: list[StoredKey]


@dataclass(frozen=True, slots=True)
class StoredNote:
    """A note as a store keeps it, its time in ns (for migration)."""

    id: str
    session_id: str
    trace_id: str | None
    body: str
    author: str | None
    created_ns: int


@dataclass(frozen=True, slots=True)
class ProjectAnnotations:
    """A project's score configurations, notes and allowed origins, as ``threadline
    migrate`` copies them (its scores go through ``iter_scores``)."""

    configs: list[ScoreConfig]
    notes: list[StoredNote]
    allowed_origins: list[str]


@dataclass(frozen=True, slots=True)
class StoredShare:
    """A share link as a store keeps it: the SHA-256 digest of its token, never the token."""

    id: str
    project_id: int
    token_hash: bytes
    kind: str  # ShareKind
    target_id: str
    created_ns: int
    expires_ns: int
    revoked_ns: int | None
    hide_io: bool
    hide_metadata: tuple[str, ...]


class PreparedForAnother(ValueError):
    """A batch's preparation (``SpanBatch.prepared``) made for another project or by
    another store. Its records came from the worker without what the preparation holds
    (``ingest/writer_records.py``), so they cannot be prepared again: the batch is
    refused, not written without its texts."""


class _MadeForProject(Protocol):
    @property
    def project_id(self) -> int: ...


Made = TypeVar("Made", bound=_MadeForProject)


@dataclass(frozen=True)
class SpanBatch:
    """One export's (or one piece's) spans for ``Store.write_span_batches``, with what
    ``span_preparer()`` made of them, if anything."""

    project_id: int
    spans: Sequence[SpanRecord]
    prepared: object | None = None

    def prepared_as(self, kind: type[Made], what: str) -> Made | None:
        """``prepared`` if it is a ``kind`` (``what``, for the error) made for this
        batch's project; None if nothing was made; else ``PreparedForAnother``."""
        prepared = self.prepared
        if prepared is None:
            return None
        if not isinstance(prepared, kind):
            raise PreparedForAnother(f"not {what}: {type(prepared).__name__}")
        if prepared.project_id != self.project_id:
            raise PreparedForAnother(
                f"prepared for project {prepared.project_id}, not {self.project_id}"
            )
        return prepared


class Store(Protocol):
    # --- ingest -----------------------------------------------------------------
    def write_spans(
        self, project_id: int, spans: Sequence[SpanRecord], prepared: object | None = None
    ) -> int:
        """Store spans idempotently on (project, trace_id, span_id) and bring the trace
        and session rollups they touch up to date, in one transaction.

        ``prepared``: what ``span_preparer()`` made of these spans, if anything (then
        the store need not make it again). Returns how many spans were new; a store
        that does not read before it writes (ClickHouse) returns how many distinct
        spans it took. When it returns, the spans are committed.
        """
        ...

    def write_span_batches(self, batches: Sequence[SpanBatch]) -> None:
        """Write several batches as ``write_spans`` would write each, together: a store
        with transactions commits them in one, so that a group of exports ready at once
        costs one commit and one rollup update per trace and session. If it raises,
        none of them may be taken as written (writing them again changes nothing)."""
        ...

    def span_preparer(
        self, project_id: int | None = None, *, read: bool = False
    ) -> Callable[[int, Sequence[SpanRecord]], object] | None:
        """The CPU work ``write_spans`` does before its transaction, as a picklable
        callable ``(project_id, spans) -> prepared`` that the ingest pipeline runs in a
        worker process. The records given to ``write_span_batches`` with what it made
        then carry no attributes, inputs or outputs: it has encoded them
        (``ingest/writer_records.py``). The callable may return None for a batch it
        leaves to ``write_spans`` (those records stay whole).

        ``project_id``: the project whose exports it will prepare, so that it may carry
        the project's settings the store keeps; None: for any project (carrying none).
        Without ``read`` it never reads (the pipeline asks for every export, on its
        event loop) and returns None when such a setting is not known without a read;
        with ``read`` (asked off the event loop then) it reads what it does not know."""
        ...

    # --- queries ----------------------------------------------------------------
    def list_sessions(self, project_id: int, query: SessionQuery) -> Page[Session]: ...

    def get_session(
        self, project_id: int, session_id: str, turns: TurnPage | None = None
    ) -> SessionDetail | None:
        """The session's rollup with its traces in start order, then trace id: every
        one (``turns`` None), or the page ``turns`` asks for, its cursor to the next
        (``session_turns.py``; a cursor of another session or project is a 400)."""
        ...

    def find_in_session(self, project_id: int, session_id: str, q: str) -> list[SessionMatch]:
        """Every span of the session that matches the search ``q``, in session order
        (its traces by start, each trace's spans by start), with snippets."""
        ...

    def list_traces(self, project_id: int, query: TraceQuery) -> Page[Trace]: ...

    def get_trace(self, project_id: int, trace_id: str) -> TraceDetail | None:
        """The trace with its spans; a span without an input (or output) of its own
        shows the messages of the GenAI events kept beside it (``genai_events.py``)."""
        ...

    # --- GenAI log events (ingest/log_events.py, store/genai_events.py) -------------
    def write_genai_events(self, project_id: int, events: Sequence[GenAIEvent]) -> list[GenAIEvent]:
        """Store ``events``: those whose span is stored already are kept beside it; the
        others wait for it, and are returned."""
        ...

    def attach_genai_events(self, project_id: int, events: Sequence[GenAIEvent]) -> None:
        """``events`` waited, and their span was stored without them: keep them beside
        it (as if they had come after it)."""
        ...

    def spans_taking_late_events(
        self, project_id: int, spans: Sequence[tuple[str, str]]
    ) -> list[SpanRecord]:
        """Of ``spans`` (trace id, span id), those stored that late GenAI events fill
        (``genai_events.takes_late_events``), as they were written."""
        ...

    def replace_spans(self, project_id: int, spans: Sequence[SpanRecord]) -> int:
        """Write ``spans`` over their stored copies, with everything made from them
        (rollups, previews, search): a late event's messages filled them. A span no
        longer stored (its trace deleted meanwhile) is not written; how many were."""
        ...

    def waiting_genai_events(self, received_after_ns: int) -> dict[int, list[GenAIEvent]]:
        """Each project's events still waiting, received after ``received_after_ns``
        (the server's index of them, made at start)."""
        ...

    def delete_waiting_genai_events(self, received_before_ns: int) -> int:
        """Delete the waiting events received before ``received_before_ns`` (taken by
        their span, or whose span never came); how many (where known)."""
        ...

    # --- deletion ---------------------------------------------------------------
    def delete_traces(self, project_id: int, trace_ids: Sequence[str]) -> int:
        """Delete traces with their spans, scores and notes; their sessions are rolled
        up again from the traces they keep (a session left with none is deleted, its
        own scores and notes with it). Returns how many of the traces were stored."""
        ...

    def delete_sessions(self, project_id: int, session_ids: Sequence[str]) -> int:
        """Delete sessions with every trace in them, and their scores and notes.
        Returns how many of the sessions were stored."""
        ...

    # --- bulk export ----------------------------------------------------------------
    def reading_once(self) -> AbstractContextManager[None]:
        """The reads this thread makes within the block pass through much of the store
        once (a bulk export's pages of a list): a store that caches what it reads keeps
        them from filling its cache."""
        ...

    def session_trace_ids(
        self, project_id: int, session_ids: Sequence[str]
    ) -> dict[str, list[str]]:
        """Per stored session of ``session_ids``, its traces' ids in the order
        ``get_session`` lists them (start, then id)."""
        ...

    def trace_details_json(self, project_id: int, trace_ids: Sequence[str]) -> dict[str, bytes]:
        """Per stored trace of ``trace_ids``, the JSON of its ``get_trace`` (the same
        document, however a backend makes it: the export's fast path)."""
        ...

    # --- retention and redaction (project data rules) -----------------------------
    def expired_traces(self, project_id: int, ended_before_ns: int, limit: int) -> list[str]:
        """Up to ``limit`` of the project's traces that ended before ``ended_before_ns``,
        oldest first (what retention deletes next, through ``delete_traces``)."""
        ...

    def expires_by_itself(self, days: int) -> bool:
        """Whether the store drops data ``days`` days after it ended without being asked
        (ClickHouse's TTL), so that retention need not delete it."""
        ...

    def reclaim_space(self, max_pages: int) -> int:
        """Give up to ``max_pages`` pages that deletes freed back to the file system, in
        a short step of its own; how many (0 where a store has nothing to give back)."""
        ...

    def retention_overrides(self) -> dict[int, int]:
        """Projects' own retention days (0: forever), for those that set one."""
        ...

    def set_retention_days(self, project_id: int, days: int | None) -> None:
        """A project's own retention (None: the server's ``--retention-days``)."""
        ...

    def redaction_rules(self, project_id: int) -> RedactionRules:
        """The project's redaction rules (none set: ``NO_RULES``)."""
        ...

    def set_redaction_rules(self, project_id: int, rules: RedactionRules) -> None: ...

    # --- share links ------------------------------------------------------------
    def add_share(self, share: StoredShare) -> None: ...

    def list_shares(
        self, project_id: int, limit: int | None = None, after: tuple[int, str] | None = None
    ) -> list[StoredShare]:
        """The project's share links, newest first (by creation, then id), revoked and
        expired ones included: at most ``limit``, those after the (created_ns, id)
        ``after`` when given (a page's keyset)."""
        ...

    def revoke_share(self, project_id: int, share_id: str) -> bool:
        """Revoke an active link; False if the project has no unrevoked link of that id."""
        ...

    def share_by_token_hash(self, token_hash: bytes) -> StoredShare | None:
        """The link whose token has this digest, whatever its state (callers check it)."""
        ...

    # --- users, live feed ------------------------------------------------------
    def list_users(self, project_id: int, query: UserQuery) -> Page[UserSummary]:
        """Users (ids found on traces) with their totals, latest activity first."""
        ...

    def live_watermark(self, project_id: int) -> int:
        """A position in the feed of trace writes: pass a previous one as a query's
        ``changed_after`` to get what was written since (live updates)."""
        ...

    def metrics(self, project_id: int, query: MetricsQuery, names: Sequence[str]) -> Metrics:
        """The dashboard's time series (``names`` of ``METRIC_NAMES``, and every score
        name's average), distributions and top lists over ``query``'s range, read from
        the trace, session and score rollups (never spans) and built by the shared
        rules of ``store.metrics``."""
        ...

    def refresh_metrics(self, margin_s: float = 60.0) -> int | None:
        """Bring the figures the dashboard reads up to date with what was written (a
        pass; ``margin_s``: how far before the previous pass to look again, for replica
        lag) and return how many slices it recomputed; None for a store whose figures
        are kept on write (SQLite), which need no pass."""
        ...

    # --- scores, score configs and notes ---------------------------------------------
    def write_scores(
        self,
        project_id: int,
        scores: Sequence[ScoreRecord],
        *,
        check_types: bool = True,
        over_end_user_only: bool = False,
        configs: Sequence[ScoreConfig] | None = None,
    ) -> frozenset[str]:
        """Store validated scores and bring the score rollups of their targets up to date,
        in one step. A score whose id is stored already replaces it; one equal to the
        stored score changes nothing. Targets need not exist (feedback may beat spans).

        ``over_end_user_only`` (a ``scores`` key's write): if a score of one of the ids
        is stored from another source, nothing is written and those ids are returned,
        checked in the same step as the write, so that a person's or an evaluator's
        score written at that moment is never replaced. Otherwise: an empty set.

        A score whose name holds another type (``name_types.py``) refuses the whole
        write with ``Conflict`` (409); ``check_types=False`` is for a copy of another
        store, which keeps its history as it was, names of two types included.
        ``configs``: the project's score configurations as the caller read them for
        these scores; a store whose write has no transaction to read them in checks
        against these rather than reading them again (ClickHouse), one with one reads
        its own (SQLite)."""
        ...

    def get_scores(self, project_id: int, score_ids: Sequence[str]) -> dict[str, Score]:
        """The stored scores among ``score_ids``, by id."""
        ...

    def list_scores(self, project_id: int, query: ScoreQuery) -> Page[Score]:
        """Scores newest first, filtered by target, name and source."""
        ...

    def delete_score(self, project_id: int, score_id: str) -> bool:
        """Delete a score and update its target's rollup; False if there is none."""
        ...

    def list_score_configs(self, project_id: int) -> list[ScoreConfig]: ...

    def put_score_config(self, project_id: int, config: ScoreConfig) -> None:
        """Create or replace the configuration of one score name; ``Conflict`` (409) when
        the name's scores hold another type than ``config``'s."""
        ...

    def delete_score_config(self, project_id: int, name: str) -> bool: ...

    def add_note(self, project_id: int, note: NoteIn) -> Note: ...

    def list_notes(self, project_id: int, session_id: str) -> list[Note]:
        """A session's notes, oldest first."""
        ...

    def delete_note(self, project_id: int, note_id: str) -> bool: ...

    def allowed_origins(self, project_id: int) -> list[str]:
        """Browser origins allowed to send end-user scores with a ``scores`` key (CORS)."""
        ...

    def set_allowed_origins(self, project_id: int, origins: Sequence[str]) -> None: ...

    def session_inference(self, project_id: int) -> bool:
        """Whether traces without a session id are grouped into inferred sessions (the
        default) in this project."""
        ...

    def set_session_inference(self, project_id: int, enabled: bool) -> None: ...

    # --- evaluators and evaluation runs -----------------------------------------------
    def put_evaluator(
        self, project_id: int, evaluator: EvaluatorIn, watch_after_ns: int | None = None
    ) -> Evaluator:
        """Create or replace the evaluator of that name. One switched on (created
        online, or changed from offline) judges sessions that end from now on: those
        ending after ``watch_after_ns`` (its first sweep mark, set in the same step),
        or, None, after its first sweep's cutoff."""
        ...

    def list_evaluators(self, project_id: int) -> list[Evaluator]:
        """The project's evaluators by name, each with its totals."""
        ...

    def get_evaluator(self, project_id: int, name: str) -> Evaluator | None: ...

    def delete_evaluator(self, project_id: int, name: str) -> bool:
        """Remove an evaluator; its unfinished runs fail ("evaluator deleted"). Its
        totals stay with its name."""
        ...

    def online_evaluators(self) -> list[tuple[int, Evaluator, int | None]]:
        """Every project's online evaluators: (project id, evaluator, the end time up
        to which ended sessions have been swept, None before its first sweep)."""
        ...

    def ended_sessions(
        self, project_id: int, after_ns: int, until_ns: int, limit: int
    ) -> list[tuple[str, int]]:
        """(session id, end ns) of sessions whose last activity is in (after, until],
        oldest first: read from the sessions rollup, never from spans."""
        ...

    def add_runs(
        self, project_id: int, runs: Sequence[RunRecord], swept: tuple[str, int] | None = None
    ) -> int:
        """Queue runs (pending); a run whose id is stored already is left as it is.
        ``swept``: (evaluator, end ns) moves that evaluator's sweep mark forward in the
        same step. Returns how many runs were new."""
        ...

    def runs_waiting(self, project_id: int) -> int:
        """The project's runs pending or running (what
        ``evaluation_max_waiting_runs`` bounds)."""
        ...

    def claim_runs(
        self,
        limit: int,
        lease_ns: int,
        only: tuple[int, Sequence[str]] | None = None,
        idle_projects: bool = False,
    ) -> list[RunRecord]:
        """Up to ``limit`` runs for this runner: pending ones and running ones whose
        lease expired, shared fairly across projects (``evaluation/fair_share.py``: the
        project with the fewest runs in flight first, each project's oldest first),
        never by reading the whole queue. Each is leased for ``lease_ns``. ``only``:
        (project id, run ids) to choose among, oldest first (``threadline evaluate``).
        ``idle_projects``: one run each of projects with no run in flight (a runner's
        spare place)."""
        ...

    def release_runs(self, runs: Sequence[RunRecord]) -> None:
        """Put claimed, unfinished runs back in the queue (a runner shutting down)."""
        ...

    def finish_run(self, project_id: int, run_id: str, outcome: RunOutcome) -> bool:
        """Record a run's outcome and add it to its evaluator's totals; False (and no
        change) when the run is unknown or finished already."""
        ...

    def list_runs(self, project_id: int, query: RunQuery) -> Page[EvaluationRun]:
        """Runs newest first, by evaluator, session and status."""
        ...

    def get_runs(self, project_id: int, run_ids: Sequence[str]) -> dict[str, EvaluationRun]: ...

    def iter_runs(self, project_id: int, batch_size: int) -> Iterator[list[RunRecord]]:
        """Every run of the project with its outcome, in batches (``threadline migrate``)."""
        ...

    def load_runs(self, project_id: int, runs: Sequence[RunRecord]) -> int:
        """Add another store's runs as they are (a running one as pending), each finished
        one counted in its evaluator's totals; runs stored already are left as they are.
        Returns how many were new."""
        ...

    # --- projects and keys ------------------------------------------------------
    def create_project(self, name: str) -> Project:
        """Create the project, or return it if one of that name exists."""
        ...

    def list_projects(self) -> list[Project]: ...

    def create_key(self, project_id: int, scope: KeyScope = "full") -> str:
        """Make a new API key for the project; return the secret (stored hashed only)."""
        ...

    def access_for_key(self, key: str) -> KeyAccess | None:
        """What a key grants, or None for an unknown or revoked key."""
        ...

    def list_keys(self) -> list[KeyInfo]: ...

    def revoke_key(self, key_id: int) -> bool:
        """Revoke an active key; False if there is none with that id."""
        ...

    def rotate_key(self, key_id: int) -> str | None:
        """Revoke an active key and make its successor (same project and scope) in one
        step; return the new secret, or None if there is no active key with that id."""
        ...

    # --- migration between stores (``threadline migrate``) -----------------------
    def dump_access(self) -> AccessRecords:
        """Every project and key (digests only), revoked keys included."""
        ...

    def load_access(self, records: AccessRecords) -> dict[int, int]:
        """Add projects and keys from another store, keeping their ids where this store
        can; a project whose name exists here already is that project. Idempotent.
        Returns the id here of every project in ``records``, by its id there."""
        ...

    def count_spans(self) -> int:
        """How many spans the store holds, over all projects."""
        ...

    def iter_spans(self, batch_size: int) -> Iterator[tuple[int, list[SpanRecord]]]:
        """Every span as (project id, a batch of at most ``batch_size`` spans), in
        (project, trace, span) order, as they were sent (an inferred session is not
        theirs); ``write_spans`` of another store takes them."""
        ...

    def iter_scores(self, batch_size: int) -> Iterator[tuple[int, list[ScoreRecord]]]:
        """Every score as (project id, a batch of at most ``batch_size``), in (project,
        id) order; ``write_scores`` of another store takes them, times included."""
        ...

    def dump_annotations(self, project_id: int) -> ProjectAnnotations: ...

    def load_annotations(self, project_id: int, annotations: ProjectAnnotations) -> None:
        """Add another store's configurations, notes (by id: idempotent) and allowed
        origins (to those the project has) to a project."""
        ...

    def close(self) -> None: ...
