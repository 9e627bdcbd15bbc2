"""Evaluators and evaluation runs: what clients send, what stores keep and return.

An evaluator is defined per project and named; a run is one judgment of one target (a
session, or a trace) by one evaluator, stored from the moment it is wanted until it is
done or failed, so a restart loses none.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, HttpUrl, computed_field, model_validator

from threadline.server.model import (
    MAX_SCORE_NAME,
    STORED,
    Cost,
    FreeText,
    Name,
    ScoreConfig,
    ns_to_datetime,
)

EvaluationTarget = Literal["session", "trace"]
RunStatus = Literal["pending", "running", "done", "failed"]
RunTrigger = Literal["online", "manual"]

MAX_PROMPT_CHARS = 20_000
MAX_REASON_CHARS = 2_000


class JudgeConfig(BaseModel):
    """The judge model on any OpenAI-compatible endpoint. The key is read from the
    server's environment at each call: it is never stored."""

    base_url: HttpUrl = Field(description="e.g. https://api.openai.com/v1")
    model: Name = Field(min_length=1, max_length=200)
    api_key_env: str | None = Field(
        default=None,
        # Only variables meant for judges: an evaluator must not be able to send any
        # secret of the server's environment (a database password...) to a URL.
        pattern=r"^THREADLINE_JUDGE_[A-Za-z0-9_]+$",
        max_length=200,
        description="Name of the server's environment variable holding the key, which "
        "must start with THREADLINE_JUDGE_ (e.g. THREADLINE_JUDGE_OPENAI_KEY); none: no "
        "key is sent.",
    )


class EvaluatorFilter(BaseModel):
    """Which sessions an evaluator judges: all of these must hold (empty: every one).
    A tag or metadata pair matches when any trace of the session carries it."""

    tags: list[Name] = Field(default=[], max_length=20)
    metadata: dict[Name, str] = Field(default={}, max_length=20)
    user_id: Name | None = Field(default=None, max_length=1000)


# The prompt a new evaluator starts from (the Evaluators form; ``threadline evaluators
# create`` without ``--prompt``; the API without ``prompt``): it asks for a boolean score.
DEFAULT_PROMPT = (
    "Did the assistant resolve the user's problem in this conversation? "
    "Answer true or false.\n\n{{transcript}}"
)


class EvaluatorIn(BaseModel):
    """An evaluator as a client defines it."""

    name: Name = Field(min_length=1, max_length=MAX_SCORE_NAME, pattern=r"^[^\s/][^/]*$")
    target: EvaluationTarget = "session"
    prompt: FreeText = Field(
        default=DEFAULT_PROMPT,
        min_length=1,
        max_length=MAX_PROMPT_CHARS,
        description="Instructions for the judge. {{transcript}} is replaced by the "
        "conversation ({{input}} and {{output}} too, for a trace); without "
        "{{transcript}}, the transcript follows the prompt. Omitted: the Evaluators "
        "form's default, which asks for true or false (a boolean score only).",
    )
    judge: JudgeConfig
    score: ScoreConfig = Field(
        description="The score written: its name and type (numeric range, boolean, labels)."
    )
    sampling_rate: float = Field(default=1.0, ge=0.0, le=1.0)
    filter: EvaluatorFilter = EvaluatorFilter()
    online: bool = Field(default=True, description="Judge each matching session as it ends.")

    @model_validator(mode="after")
    def _prompt_given_unless_boolean(self) -> EvaluatorIn:
        # The default prompt asks for true or false: a judge told that and asked, by the
        # response format, for a number or a label would answer to neither.
        if "prompt" not in self.model_fields_set and self.score.data_type != "boolean":
            raise ValueError(
                f"give a prompt for a {self.score.data_type} score: the default prompt "
                "asks for true or false"
            )
        return self


class EvaluatorCreate(EvaluatorIn):
    """An evaluator as a client creates (or replaces) it, with what to judge at once."""

    judge_existing_since: datetime | None = Field(
        default=None,
        description="Also judge, now, the sessions that already ended and were active "
        "since then (an online evaluator only; at most 30 days ago; the newest 1,000 "
        "sessions), as its sweep would have: its filter and sampling apply. Not stored.",
    )

    def definition(self) -> EvaluatorIn:
        return EvaluatorIn.model_validate(self.model_dump(exclude={"judge_existing_since"}))


class EvaluatorTotals(BaseModel):
    """What an evaluator has done, and what its judge cost."""

    runs_pending: int = 0
    runs_done: int = 0
    runs_failed: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: Cost | None = Field(default=None, description="None while no cost is known.")


class Evaluator(EvaluatorIn):
    created_at: datetime
    totals: EvaluatorTotals = EvaluatorTotals()

    # Read from the environment of the process answering: the server's, where the runs
    # are judged. ``threadline evaluate`` asks it before it judges, so that a key set in
    # the command's environment alone is found before a server fails the runs it claims.
    @computed_field(  # type: ignore[prop-decorator]
        description="Whether the judge's key variable (`judge.api_key_env`) is set in the "
        "server's environment (its value is never shown); null when the judge takes no key."
    )
    @property
    def judge_key_set(self) -> bool | None:
        if self.judge.api_key_env is None:
            return None
        return bool(os.environ.get(self.judge.api_key_env))


@dataclass(slots=True)
class RunRecord:
    """One run as stores keep it (times in Unix ns)."""

    id: str
    evaluator: str
    target_kind: str  # EvaluationTarget
    target_id: str  # a session id, or a trace id
    session_id: str | None
    trigger: str  # RunTrigger
    status: str = "pending"  # RunStatus
    reason: str | None = None
    attempts: int = 0
    score_id: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    created_ns: int = 0
    finished_ns: int | None = None
    claimed_until_ns: int | None = None
    project_id: int = 0

    def queued(self, project_id: int, now_ns: int) -> RunRecord:
        """This run as a store first keeps it: pending, unclaimed, nothing judged yet,
        whatever this copy says."""
        return RunRecord(
            id=self.id,
            evaluator=self.evaluator,
            target_kind=self.target_kind,
            target_id=self.target_id,
            session_id=self.session_id,
            trigger=self.trigger,
            created_ns=self.created_ns or now_ns,
            project_id=project_id,
        )


@dataclass(slots=True)
class RunOutcome:
    """How a run ended: a score written, or a failure and why; what the judge used."""

    status: str  # "done" or "failed"
    reason: str | None = None
    attempts: int = 1
    score_id: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None


class EvaluationRun(BaseModel):
    id: str
    evaluator: str
    target_kind: EvaluationTarget
    target_id: str
    session_id: str | None
    trigger: RunTrigger
    status: RunStatus
    reason: str | None = Field(description="Why a run failed.")
    attempts: int
    score_id: str | None
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: Cost | None
    created_at: datetime
    finished_at: datetime | None


class RunQuery(BaseModel):
    limit: int = 50
    cursor: str | None = None
    evaluator: str | None = None
    session_id: str | None = None
    status: RunStatus | None = None


class RunRequest(BaseModel):
    """Ask an evaluator to judge sessions now: one session, or those active since."""

    evaluator: str = Field(min_length=1, max_length=MAX_SCORE_NAME)
    session_id: str | None = Field(default=None, min_length=1, max_length=1000)
    since: datetime | None = Field(
        default=None, description="Every session active since then (with session_id unset)."
    )
    filter: EvaluatorFilter = EvaluatorFilter()


def present_evaluator(
    definition: str, created_ns: int, totals: EvaluatorTotals | None
) -> Evaluator:
    """A stored evaluator (its definition as ``EvaluatorIn`` JSON) as the API shows it."""
    stored = EvaluatorIn.model_validate_json(definition, context=STORED)
    return Evaluator.model_validate(
        {
            **stored.model_dump(),
            "created_at": ns_to_datetime(created_ns),
            "totals": totals or EvaluatorTotals(),
        },
        context=STORED,
    )


def present_run(r: RunRecord) -> EvaluationRun:
    return EvaluationRun(
        id=r.id,
        evaluator=r.evaluator,
        target_kind=r.target_kind,  # type: ignore[arg-type]
        target_id=r.target_id,
        session_id=r.session_id,
        trigger=r.trigger,  # type: ignore[arg-type]
        status=r.status,  # type: ignore[arg-type]
        reason=r.reason,
        attempts=r.attempts,
        score_id=r.score_id,
        input_tokens=r.input_tokens,
        output_tokens=r.output_tokens,
        cost_usd=r.cost_usd,
        created_at=ns_to_datetime(r.created_ns),
        finished_at=ns_to_datetime(r.finished_ns) if r.finished_ns else None,
    )


def add_to_totals(totals: EvaluatorTotals, outcome: RunOutcome) -> None:
    """Count a finished run into its evaluator's totals (the one rule every store uses)."""
    if outcome.status == "done":
        totals.runs_done += 1
    else:
        totals.runs_failed += 1
    totals.input_tokens += outcome.input_tokens or 0
    totals.output_tokens += outcome.output_tokens or 0
    if outcome.cost_usd is not None:
        totals.cost_usd = (totals.cost_usd or 0.0) + outcome.cost_usd
