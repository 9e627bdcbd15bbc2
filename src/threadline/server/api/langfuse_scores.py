"""Langfuse's score routes, so an application keeps its Langfuse SDK's score calls.

Langfuse's Python SDK (5.x) queues ``create_score`` / ``score_current_trace`` /
``score_current_span`` calls and sends them as a JSON list to ``POST
/api/public/scores`` (camelCase fields: ``traceId``, ``observationId``, ``sessionId``,
``dataType``...); it expects ``202 {"message": "Accepted"}``, or ``207`` with
``accepted``/``rejected`` counts and one error message per rejected score. Older SDKs
(3.x) send scores as ``score-create`` events of ``POST /api/public/ingestion``, whose
answer is ``207`` with ``successes`` and ``errors`` by event id; events of other types
(traces and observations, which Threadline takes over OTLP only) are answered as
errors there and nothing of them is stored.

Same Basic auth as Langfuse's trace export (the secret key is a Threadline key). A
Langfuse score becomes a Threadline score with source ``sdk``: ``observationId`` is the
span, ``dataType`` NUMERIC/BOOLEAN/CATEGORICAL map to numeric/boolean/categorical, and
``timestamp`` is kept. TEXT and CORRECTION scores, and scores naming only a dataset
run, are refused one by one; ``metadata``, ``environment``, ``configId`` and
``queueId`` are not kept. Validation is ``scoring.prepare``'s, as for every score.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from threadline.server import project_rules, score_types
from threadline.server.api.routes import CurrentStore
from threadline.server.api.scores import MAX_SCORES_PER_REQUEST, cors_headers
from threadline.server.auth import langfuse_key_access
from threadline.server.errors import BadRequest, ThreadlineError
from threadline.server.model import KeyAccess, ScoreIn, ScoreRecord
from threadline.server.redaction.annotations import redact_scores
from threadline.server.score_types import name_types
from threadline.server.store import Store

router = APIRouter(prefix="/api/public", tags=["langfuse"])

LangfuseAccess = Annotated[KeyAccess, Depends(langfuse_key_access)]

_DATA_TYPES = {"NUMERIC": "numeric", "BOOLEAN": "boolean", "CATEGORICAL": "categorical"}


class LangfuseScore(BaseModel):
    """A score as Langfuse's SDK sends it (fields Threadline does not keep are allowed)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    id: str | None = None
    name: str
    value: bool | float | str
    trace_id: str | None = Field(default=None, alias="traceId")
    observation_id: str | None = Field(default=None, alias="observationId")
    session_id: str | None = Field(default=None, alias="sessionId")
    dataset_run_id: str | None = Field(default=None, alias="datasetRunId")
    data_type: str | None = Field(default=None, alias="dataType")
    comment: str | None = None
    timestamp: datetime | None = None


class Accepted(BaseModel):
    message: str = "Accepted"


class BatchError(BaseModel):
    message: str
    id: str | None = None


class BatchResults(BaseModel):
    accepted: int
    rejected: int
    errors: list[BatchError]


def _score_in(raw: Any) -> tuple[ScoreIn, int | None]:
    """Threadline's ``ScoreIn`` of a Langfuse score, and its timestamp in ns if given;
    ``BadRequest`` saying what is wrong with it."""
    try:
        score = LangfuseScore.model_validate(raw)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'score'}: {e['msg']}" for e in error.errors()
        )
        raise BadRequest(f"invalid score: {problems}") from None
    data_type = None
    if score.data_type is not None:
        data_type = _DATA_TYPES.get(score.data_type.upper())
        if data_type is None:
            raise BadRequest(
                f"score {score.name!r}: Langfuse's {score.data_type} scores are not kept;"
                " Threadline takes NUMERIC, BOOLEAN and CATEGORICAL"
            )
    if score.dataset_run_id and not (score.trace_id or score.session_id):
        raise BadRequest(f"score {score.name!r}: dataset run scores are not kept")
    try:
        converted = ScoreIn(
            id=score.id,
            name=score.name,
            value=score.value,
            data_type=data_type,  # type: ignore[arg-type]
            session_id=score.session_id,
            trace_id=score.trace_id,
            span_id=score.observation_id,
            comment=score.comment,
        )
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
        )
        raise BadRequest(f"score {score.name!r}: {problems}") from None
    stamp = int(score.timestamp.timestamp() * 1e9) if score.timestamp else None
    return converted, stamp


def _write(
    request: Request, store: Store, access: KeyAccess, items: list[Any]
) -> tuple[list[ScoreRecord], dict[int, str]]:
    """Write the scores of ``items`` that are valid; (the records written, the error of
    each refused item by its position)."""
    project_id = access.project.id
    configs = {c.name: c for c in store.list_score_configs(project_id)}
    types = name_types(store, project_id, configs)
    now = time.time_ns()
    records: dict[int, ScoreRecord] = {}
    errors: dict[int, str] = {}
    for index, raw in enumerate(items):
        try:
            score, stamp = _score_in(raw)
            record = score_types.prepare(score, configs, "sdk", now, types)
        except ThreadlineError as error:
            errors[index] = error.message
            continue
        refusal = types.refusal(record)
        if refusal is not None:
            errors[index] = refusal
            continue
        if stamp is not None and stamp > 0:
            record.created_ns = stamp
        records[index] = record
    if access.scope == "scores":
        # As on the JSON API: a browser's key writes end-user scores and may replace
        # only those.
        stored = store.get_scores(project_id, [r.id for r in records.values()])
        for index, record in list(records.items()):
            record.source = "end-user"
            existing = stored.get(record.id)
            if existing is not None and existing.source != "end-user":
                errors[index] = f"score {record.id!r} was not written by an end user"
                del records[index]
    rules = project_rules.redaction_rules(request.app.state, project_id)
    written = redact_scores(list(records.values()), rules)
    indexes = {id(record): index for index, record in zip(records, written, strict=True)}
    while written:
        # Checked again as they are written: another source's score of one of the ids
        # may have been written since; those are refused, the others written.
        refused = store.write_scores(
            project_id,
            written,
            over_end_user_only=access.scope == "scores",
            configs=list(configs.values()),
        )
        if not refused:
            break
        for record in [r for r in written if r.id in refused]:
            errors[indexes[id(record)]] = f"score {record.id!r} was not written by an end user"
        written = [r for r in written if r.id not in refused]
    return written, errors


def _check_size(count: int) -> None:
    if count > MAX_SCORES_PER_REQUEST:
        raise BadRequest(f"at most {MAX_SCORES_PER_REQUEST} scores a request")


@router.post(
    "/scores",
    summary="Langfuse SDK: create scores (a list: 202, or 207 naming the refused ones)",
    responses={207: {"model": BatchResults}},
)
def create_scores(
    request: Request,
    access: LangfuseAccess,
    store: CurrentStore,
    body: Annotated[list[Any] | dict[str, Any], Body()],
) -> Response:
    headers = cors_headers(request, store, access.project.id)
    if isinstance(body, dict):
        # One score, as Langfuse's older clients send it: all or nothing, with its id.
        written, errors = _write(request, store, access, [body])
        if errors:
            raise BadRequest(errors[0])
        return JSONResponse({"id": written[0].id}, headers=headers)
    _check_size(len(body))
    written, errors = _write(request, store, access, body)
    if not errors:
        return JSONResponse(Accepted().model_dump(), status_code=202, headers=headers)
    results = BatchResults(
        accepted=len(written),
        rejected=len(errors),
        errors=[
            BatchError(message=message, id=_id_of(body[index]))
            for index, message in sorted(errors.items())
        ],
    )
    return JSONResponse(results.model_dump(), status_code=207, headers=headers)


class IngestionBatch(BaseModel):
    batch: list[dict[str, Any]]
    metadata: Any = None


@router.post(
    "/ingestion",
    summary="Langfuse SDK (3.x): the ingestion batch; its score-create events become scores",
    status_code=207,
)
def ingestion(
    request: Request, access: LangfuseAccess, store: CurrentStore, body: IngestionBatch
) -> Response:
    headers = cors_headers(request, store, access.project.id)
    _check_size(len(body.batch))
    successes: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    positions: list[str] = []  # the event id of each score body sent to _write
    bodies: list[Any] = []
    for event in body.batch:
        event_id = str(event.get("id") or "")
        if event.get("type") != "score-create":
            failures.append(
                {
                    "id": event_id,
                    "status": 400,
                    "message": f"event type {event.get('type')!r} is not kept: Threadline"
                    " takes scores here and traces over OTLP (/api/public/otel/v1/traces)",
                }
            )
            continue
        positions.append(event_id)
        bodies.append(event.get("body"))
    _, errors = _write(request, store, access, bodies)
    for index, event_id in enumerate(positions):
        if index in errors:
            failures.append({"id": event_id, "status": 400, "message": errors[index]})
        else:
            successes.append({"id": event_id, "status": 201})
    return JSONResponse(
        {"successes": successes, "errors": failures}, status_code=207, headers=headers
    )


def _id_of(raw: Any) -> str | None:
    value = raw.get("id") if isinstance(raw, dict) else None
    return value if isinstance(value, str) else None
