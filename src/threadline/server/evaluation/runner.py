"""The runner: claims stored runs and judges them, a bounded number at a time.

Runs are claimed from the store with a lease (``claim_runs``), so several processes
share the queue and a run whose runner died is taken up again when its lease ends. A
runner stopping puts its unfinished runs back. Places are shared fairly across
projects (``fair_share.py``), and a runner whose places are all taken has one spare,
for a project with no run in flight. Store calls run in threads (they
block); judge calls are asynchronous HTTP on the event loop, so waiting judges cost no
thread and never hold up ingest, which has its own thread.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from threadline.server import pricing, scoring
from threadline.server.errors import ThreadlineError
from threadline.server.evaluation import prompt
from threadline.server.evaluation.ingest_first import IngestFirst
from threadline.server.evaluation.judge import JudgeFailed, JudgePolicy, judge
from threadline.server.evaluation.key_urls import KeyUrls
from threadline.server.evaluation.model import Evaluator, RunOutcome, RunRecord
from threadline.server.evaluation.selection import score_id
from threadline.server.evaluation.transcript import (
    session_transcript,
    trace_input_output,
)
from threadline.server.model import MAX_COMMENT_CHARS, ScoreIn, TraceDetail, text_controls_replaced
from threadline.server.redaction.annotations import redact_scores, redact_text
from threadline.server.settings import Settings
from threadline.server.store import Store

log = logging.getLogger("threadline.evaluation")

# Of a longer session the judge reads the first and last turns (and is told how many
# were left out between them): reading every turn's spans has a cost too.
MAX_TURNS_READ = 300
_POLL_SECONDS = 0.5


@dataclass(frozen=True)
class RunnerConfig:
    concurrency: int
    policy: JudgePolicy
    transcript_max_chars: int

    @classmethod
    def from_settings(cls, settings: Settings) -> RunnerConfig:
        return cls(
            concurrency=settings.evaluation_concurrency,
            policy=JudgePolicy(
                timeout_s=float(settings.judge_timeout_seconds),
                attempts=settings.judge_attempts,
                key_urls=KeyUrls.of(settings),
            ),
            transcript_max_chars=settings.transcript_max_chars,
        )

    @property
    def lease_ns(self) -> int:
        """Longer than a run can take (every attempt timing out, and the pauses between
        them), so a live runner's run is never taken from it."""
        attempts = max(self.policy.attempts, 1)
        pauses = self.policy.first_pause_s * (2 ** (attempts - 1) - 1)
        # The margin covers reading the transcript and writing the score.
        seconds = attempts * self.policy.timeout_s + pauses + 10
        return int(seconds * 1e9)


class JudgeInputMissing(Exception):
    """What a run was to judge is gone (or its evaluator is)."""


async def evaluate_run(
    store: Store, client: httpx.AsyncClient, config: RunnerConfig, run: RunRecord
) -> RunOutcome:
    """Judge one run's target and write its score; the outcome either way."""
    try:
        evaluator, text, target = await asyncio.to_thread(_prompt_for, store, config, run)
    except JudgeInputMissing as missing:
        return RunOutcome("failed", reason=str(missing), attempts=0)
    try:
        verdict = await judge(client, evaluator.judge, evaluator.score, text, config.policy)
    except JudgeFailed as failure:
        # An answer that did not parse was still paid for.
        tokens = failure.usage or (None, None)
        cost = None
        if failure.usage is not None:
            cost = pricing.cost_usd(evaluator.judge.model, None, *failure.usage)
        return RunOutcome(
            "failed",
            reason=str(failure),
            attempts=failure.attempts,
            input_tokens=tokens[0],
            output_tokens=tokens[1],
            cost_usd=cost,
        )
    outcome = RunOutcome(
        "done",
        attempts=verdict.attempts,
        input_tokens=verdict.input_tokens,
        output_tokens=verdict.output_tokens,
        cost_usd=verdict.cost_usd,
    )
    score = ScoreIn(
        id=score_id(evaluator.name, run.target_kind, run.target_id),
        name=evaluator.score.name,
        value=verdict.value,
        data_type=evaluator.score.data_type,
        session_id=run.session_id,
        trace_id=target.trace_id if target is not None else None,
        # The judge's words, kept: what no comment may hold is replaced, not refused.
        comment=text_controls_replaced(verdict.reasoning[:MAX_COMMENT_CHARS]) or None,
        author=evaluator.name,
        source="eval",
    )
    # Its target may have been deleted while the judge thought (the run goes with it):
    # a score written now would name data that is gone.
    if not await asyncio.to_thread(store.get_runs, run.project_id, [run.id]):
        outcome.status, outcome.reason = "failed", "what it judged was deleted meanwhile"
        return outcome
    try:
        await asyncio.to_thread(_write_score, store, run.project_id, score)
    except ThreadlineError as error:  # its configuration, or its name's type, refuses it
        outcome.status, outcome.reason = "failed", f"score not written: {error.message}"
        return outcome
    outcome.score_id = score.id
    return outcome


def finish_run(store: Store, run: RunRecord, outcome: RunOutcome) -> None:
    """Record how ``run`` ended. A failure's reason can quote the judge's answer, which
    can quote the transcript: the project's redaction rules apply to it."""
    if outcome.reason:
        outcome.reason = redact_text(outcome.reason, store.redaction_rules(run.project_id))
    store.finish_run(run.project_id, run.id, outcome)


def _write_score(store: Store, project_id: int, score: ScoreIn) -> None:
    configs = {c.name: c for c in store.list_score_configs(project_id)}
    record = scoring.prepare(score, configs, "eval", time.time_ns())
    # The write refuses a type other than the name's (409): the run fails, naming both.
    # The judge's comment can quote the transcript; the project's rules apply to it too.
    store.write_scores(
        project_id,
        redact_scores([record], store.redaction_rules(project_id)),
        configs=list(configs.values()),
    )


def _prompt_for(
    store: Store, config: RunnerConfig, run: RunRecord
) -> tuple[Evaluator, str, TraceDetail | None]:
    """The evaluator, its filled-in prompt, and the trace judged (None for a session)."""
    evaluator = store.get_evaluator(run.project_id, run.evaluator)
    if evaluator is None:
        raise JudgeInputMissing(f"evaluator {run.evaluator!r} no longer exists")
    budget = config.transcript_max_chars
    if run.target_kind == "trace":
        trace = store.get_trace(run.project_id, run.target_id)
        if trace is None:
            raise JudgeInputMissing(f"trace {run.target_id} is not stored")
        transcript = session_transcript([trace], budget)
        given, answered = trace_input_output(trace, budget)
        return evaluator, prompt.fill(evaluator.prompt, transcript, given, answered), trace
    session = store.get_session(run.project_id, run.target_id)
    if session is None:
        raise JudgeInputMissing(f"session {run.target_id!r} is not stored")
    chosen = session.traces
    left_out = 0
    if len(chosen) > MAX_TURNS_READ:
        half = MAX_TURNS_READ // 2
        left_out = len(chosen) - MAX_TURNS_READ
        chosen = chosen[:half] + chosen[-half:]
    details = [store.get_trace(run.project_id, t.trace_id) for t in chosen]
    traces = [d for d in details if d is not None]
    transcript = session_transcript(traces, budget, left_out_turns=left_out)
    return evaluator, prompt.fill(evaluator.prompt, transcript), None


class EvaluationRunner:
    """Claims and judges runs until stopped; ``wake()`` says new runs were queued."""

    def __init__(
        self,
        store: Store,
        config: RunnerConfig,
        on_finished: Callable[[RunRecord, RunOutcome], None] | None = None,
        ingest_quiet: Callable[[], float] | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self._on_finished = on_finished
        # While ingest has work, no new run starts (ingest_first.py).
        self._ingest_first = IngestFirst(ingest_quiet)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._inflight: dict[asyncio.Task[None], RunRecord] = {}
        # The run in the spare place (see _loop), while it is in flight.
        self._spare: asyncio.Task[None] | None = None
        # Whether an HTTP client was ever made: a runner with nothing to judge makes none.
        self.client_made = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="threadline-evaluations")

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        """Stop judging; runs not finished go back in the queue for the next runner."""
        if self._task is None:
            return
        self._task.cancel()
        claimed = dict(self._inflight)
        for task in claimed:
            task.cancel()
        await asyncio.gather(self._task, *claimed, return_exceptions=True)
        # Only runs still marked running go back: one that finished meanwhile stays done.
        if claimed:
            await asyncio.to_thread(self.store.release_runs, list(claimed.values()))
        self._task = None

    async def _loop(self) -> None:
        # The HTTP client is made when the first run is claimed, not at start: making one
        # loads the CA bundle (~0.1 s of CPU, ~3 MB), which a server without evaluators
        # should not pay.
        client: httpx.AsyncClient | None = None
        try:
            while True:
                await self._ingest_first.turn()
                spare_taken = self._spare is not None and self._spare in self._inflight
                free = self.config.concurrency - len(self._inflight) + spare_taken
                # Every place taken (say by one project's runs against a judge that never
                # answers): one place more, for a run of a project with none in flight,
                # so that it starts now rather than when one of those runs ends.
                spare = free <= 0 and not spare_taken and self.config.concurrency > 0
                claimed: list[RunRecord] = []
                if free > 0 or spare:
                    self._wake.clear()
                    try:
                        claimed = await asyncio.to_thread(
                            self.store.claim_runs,
                            1 if spare else free,
                            self.config.lease_ns,
                            None,
                            spare,
                        )
                    except Exception:  # a store hiccup: try again at the next poll
                        log.exception("claiming evaluation runs failed")
                if claimed and client is None:
                    client = self._new_client()
                for run in claimed:
                    assert client is not None
                    task = asyncio.create_task(self._run(client, run))
                    self._inflight[task] = run
                    if spare:
                        self._spare = task
                if claimed and not spare and len(claimed) == free:
                    continue  # maybe more are waiting; the next claim waits for room
                waits: set[asyncio.Future[object]] = {
                    asyncio.ensure_future(self._wake.wait()),
                    *self._inflight,  # type: ignore[arg-type]
                }
                _, pending = await asyncio.wait(
                    waits, timeout=_POLL_SECONDS, return_when=asyncio.FIRST_COMPLETED
                )
                for future in pending:
                    if future not in self._inflight:
                        future.cancel()
        finally:
            if client is not None:
                await client.aclose()

    def _new_client(self) -> httpx.AsyncClient:
        limits = httpx.Limits(max_connections=max(self.config.concurrency, 1) * 2)
        self.client_made = True
        return httpx.AsyncClient(limits=limits)

    async def _run(self, client: httpx.AsyncClient, run: RunRecord) -> None:
        try:
            try:
                outcome = await evaluate_run(self.store, client, self.config, run)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.exception("evaluation run %s failed unexpectedly", run.id)
                outcome = RunOutcome("failed", reason=f"internal error: {error!r}"[:500])
            await asyncio.to_thread(finish_run, self.store, run, outcome)
            if self._on_finished is not None:
                self._on_finished(run, outcome)
        finally:
            self._inflight.pop(asyncio.current_task(), None)  # type: ignore[arg-type]
