"""Which sessions an evaluator judges, and the runs that asks for.

Pure functions over a session's rollup and its traces' rollups (never spans): a
filter, a deterministic sample, and run ids that make asking twice harmless.
"""

from __future__ import annotations

import hashlib
import time
import uuid

from threadline.server.errors import BadRequest
from threadline.server.evaluation.model import EvaluatorFilter, EvaluatorIn, RunRecord
from threadline.server.model import SessionDetail, Trace, datetime_to_ns


def matches(selection: EvaluatorFilter, session: SessionDetail) -> bool:
    """All of the filter's conditions hold: each tag and each metadata pair is on some
    trace of the session, and the user is one of its users."""
    if selection.user_id is not None and selection.user_id not in session.user_ids:
        return False
    tags = {tag for trace in session.traces for tag in trace.tags}
    if not set(selection.tags) <= tags:
        return False
    for key, value in selection.metadata.items():
        if not any(str(trace.metadata.get(key)) == value for trace in session.traces):
            return False
    return True


def sampled(evaluator: EvaluatorIn, session_id: str) -> bool:
    """Whether a session falls in the evaluator's sample: a hash, not a coin, so that
    every sweep and every worker process decide the same way."""
    if evaluator.sampling_rate >= 1:
        return True
    digest = hashlib.sha256(f"{evaluator.name}\0{session_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < evaluator.sampling_rate


def parse_filters(texts: list[str]) -> EvaluatorFilter:
    """``tag=NAME``, ``user=ID`` and ``metadata.KEY=VALUE`` (the CLI's ``--filter``)."""
    selection = EvaluatorFilter()
    for text in texts:
        key, sep, value = text.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not value:
            raise BadRequest(f"filter {text!r} is not KEY=VALUE")
        if key == "tag":
            selection.tags.append(value)
        elif key == "user":
            selection.user_id = value
        elif key.startswith("metadata.") and len(key) > len("metadata."):
            selection.metadata[key[len("metadata.") :]] = value
        else:
            raise BadRequest(f"filter {text!r}: use tag=..., user=... or metadata.KEY=...")
    return selection


def online_run_id(project_id: int, evaluator: str, kind: str, target: str, end_ns: int) -> str:
    key = f"{project_id}\0{evaluator}\0{kind}\0{target}\0{end_ns}"
    return "run-" + hashlib.sha256(key.encode()).hexdigest()[:32]


def plan_runs(
    project_id: int,
    evaluator: EvaluatorIn,
    session_id: str,
    session_end_ns: int,
    traces: list[Trace],
    trigger: str,
) -> list[RunRecord]:
    """The runs that judge a session: one for a session evaluator, one per trace (of
    ``traces``) for a trace evaluator. Online runs have ids derived from what they judge
    and when it ended, so asking again for an unchanged session or trace adds nothing,
    while a session that resumed and ended again gets a new run."""
    now = time.time_ns()
    targets: list[tuple[str, str, int]]
    if evaluator.target == "session":
        targets = [("session", session_id, session_end_ns)]
    else:
        targets = [("trace", t.trace_id, datetime_to_ns(t.end_time)) for t in traces]
    runs = []
    for kind, target_id, ended in targets:
        run_id = (
            online_run_id(project_id, evaluator.name, kind, target_id, ended)
            if trigger == "online"
            else "run-" + uuid.uuid4().hex
        )
        runs.append(
            RunRecord(
                id=run_id,
                evaluator=evaluator.name,
                target_kind=kind,
                target_id=target_id,
                session_id=session_id,
                trigger=trigger,
                created_ns=now,
            )
        )
    return runs


def score_id(evaluator: str, kind: str, target_id: str) -> str:
    """One score per evaluator and target: a later judgment of the same session (it
    resumed, or someone asked again) replaces the earlier one in lists and filters,
    while every run stays listed."""
    digest = hashlib.sha256(f"{evaluator}\0{kind}\0{target_id}".encode()).hexdigest()
    return f"eval-{digest[:32]}"
