"""Scores, score configurations and notes: the write side of the JSON API.

``POST /api/v1/scores`` takes any key: a full or ingest-only key writes scores from an
application's back end (source ``api`` unless it says ``sdk`` or ``eval``); a ``scores``
key, the one a browser app ships for its feedback buttons, writes ``end-user`` scores
only, and only from the origins its project allows (CORS). Reading, deleting and
configuring need a full key. Handlers are plain ``def``: the store blocks.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Body, Query, Request, Response
from pydantic import BaseModel

from threadline.server import project_rules, score_types, scoring
from threadline.server.api.routes import CurrentStore, Cursor, Limit
from threadline.server.auth import CurrentProject, ScoringAccess
from threadline.server.errors import BadRequest, Forbidden, NotFound
from threadline.server.model import (
    Note,
    NoteIn,
    Page,
    Score,
    ScoreConfig,
    ScoreIn,
    ScoreQuery,
    ScoreRecord,
    ScoreSource,
)
from threadline.server.redaction.annotations import redact_note, redact_scores
from threadline.server.score_types import name_types, written_types
from threadline.server.store import Store

router = APIRouter(prefix="/api/v1", tags=["scores"])

MAX_SCORES_PER_REQUEST = 1000


class ScoreBatch(BaseModel):
    items: list[Score]


class ScoreConfigList(BaseModel):
    items: list[ScoreConfig]


class NoteList(BaseModel):
    items: list[Note]


def cors_headers(request: Request, store: Store, project_id: int) -> dict[str, str]:
    """The CORS answer for a browser's request from another origin, or ``Forbidden``
    when the project does not allow that origin. Same-origin and non-browser requests
    (no ``Origin`` header) need none."""
    origin = request.headers.get("origin")
    if origin is None or origin == f"{request.url.scheme}://{request.url.netloc}":
        return {}
    if origin not in store.allowed_origins(project_id):
        raise Forbidden(
            f"origin {origin!r} may not send scores to this project: allow it with"
            " `threadline projects allow-origin`"
        )
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}


def prepare_scores(
    store: Store, project_id: int, scores: list[ScoreIn], source: str
) -> tuple[list[ScoreRecord], list[ScoreConfig]]:
    """Validate ``scores`` against the project's score configurations (400 on the first
    bad one, naming it); a score without a type takes its name's when its value reads as
    one, and the first score of a new name gives the name's type to the untyped ones
    after it. The store's write refuses the batch if a type differs from its name's
    (409). Also the configurations read, which the write is given."""
    configs = {c.name: c for c in store.list_score_configs(project_id)}
    types = name_types(store, project_id, configs)
    now = time.time_ns()
    records = []
    for score in scores:
        record = score_types.prepare(score, configs, source, now, types)
        types.prepared(record)
        records.append(record)
    return records, list(configs.values())


@router.options("/scores", include_in_schema=False)
def score_preflight(request: Request) -> Response:
    # A preflight carries no key, so it cannot name a project: it is answered for any
    # origin, and the POST that follows is refused unless its project allows the origin.
    origin = request.headers.get("origin", "*")
    return Response(
        status_code=204,
        headers={
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": "POST",
            "Access-Control-Allow-Headers": "Authorization, Content-Type",
            "Access-Control-Max-Age": "600",
            "Vary": "Origin",
        },
    )


@router.post(
    "/scores",
    summary="Write one score, or a list of up to 1,000",
    response_model=Score | ScoreBatch,
)
def write_scores(
    request: Request,
    response: Response,
    access: ScoringAccess,
    store: CurrentStore,
    body: Annotated[ScoreIn | list[ScoreIn], Body()],
) -> Score | ScoreBatch:
    project = access.project
    response.headers.update(cors_headers(request, store, project.id))
    batch = body if isinstance(body, list) else [body]
    if len(batch) > MAX_SCORES_PER_REQUEST:
        raise BadRequest(f"at most {MAX_SCORES_PER_REQUEST} scores a request")
    records, configs = prepare_scores(store, project.id, batch, "api")
    if access.scope == "scores":
        for record in records:
            record.source = "end-user"
        _refuse_overwrites(store, project.id, records)
    else:
        for record, score in zip(records, batch, strict=True):
            record.source = score.source or "api"
    records = redact_scores(records, project_rules.redaction_rules(request.app.state, project.id))
    refused = store.write_scores(
        project.id, records, over_end_user_only=access.scope == "scores", configs=configs
    )
    if refused:  # another source's score written since the check above
        raise Forbidden(f"score {min(refused)!r} was not written by an end user")
    written = [scoring.score(r) for r in records]
    return ScoreBatch(items=written) if isinstance(body, list) else written[0]


def _refuse_overwrites(store: Store, project_id: int, records: list[ScoreRecord]) -> None:
    """A ``scores`` key lives in a browser, where anyone can read it: it may replace
    end-user scores (a user changing their vote) but nothing a person or an evaluator
    wrote."""
    stored = store.get_scores(project_id, [r.id for r in records])
    for score in stored.values():
        if score.source != "end-user":
            raise Forbidden(f"score {score.id!r} was not written by an end user")


@router.get("/scores", summary="Scores, newest first")
def list_scores(
    project: CurrentProject,
    store: CurrentStore,
    limit: Limit = 50,
    cursor: Cursor = None,
    session_id: str | None = None,
    trace_id: str | None = None,
    span_id: str | None = None,
    name: str | None = None,
    source: ScoreSource | None = None,
) -> Page[Score]:
    query = ScoreQuery(
        limit=limit,
        cursor=cursor,
        session_id=session_id,
        trace_id=trace_id,
        span_id=span_id,
        name=name,
        source=source,
    )
    return store.list_scores(project.id, query)


@router.get("/scores/{score_id}", summary="One score")
def get_score(score_id: str, project: CurrentProject, store: CurrentStore) -> Score:
    score = store.get_scores(project.id, [score_id]).get(score_id)
    if score is None:
        raise NotFound(f"no score {score_id!r} in project {project.name!r}")
    return score


def _forget_score_types(request: Request, project_id: int) -> None:
    """The lists' score columns keep each name's type (``score_types.py``): a
    delete or a configuration change may change it, so they read it again."""
    written_types(request.app.state).forget(project_id)


@router.delete("/scores/{score_id}", summary="Delete a score", status_code=204)
def delete_score(
    score_id: str, request: Request, project: CurrentProject, store: CurrentStore
) -> Response:
    if not store.delete_score(project.id, score_id):
        raise NotFound(f"no score {score_id!r} in project {project.name!r}")
    _forget_score_types(request, project.id)
    return Response(status_code=204)


@router.get("/score-configs", summary="The project's score names and their types")
def list_score_configs(project: CurrentProject, store: CurrentStore) -> ScoreConfigList:
    return ScoreConfigList(items=store.list_score_configs(project.id))


@router.put("/score-configs/{name}", summary="Define a score name: its type, range or labels")
def put_score_config(
    name: str, config: ScoreConfig, request: Request, project: CurrentProject, store: CurrentStore
) -> ScoreConfig:
    if config.name != name:
        raise BadRequest(f"the body names {config.name!r}, the path {name!r}")
    store.put_score_config(project.id, scoring.check_config(config))
    _forget_score_types(request, project.id)
    return config


@router.delete("/score-configs/{name}", summary="Remove a score name's definition", status_code=204)
def delete_score_config(
    name: str, request: Request, project: CurrentProject, store: CurrentStore
) -> Response:
    if not store.delete_score_config(project.id, name):
        raise NotFound(f"no score configuration {name!r} in project {project.name!r}")
    _forget_score_types(request, project.id)
    return Response(status_code=204)


@router.get("/notes", summary="A session's notes, oldest first")
def list_notes(
    project: CurrentProject,
    store: CurrentStore,
    session_id: Annotated[str, Query(min_length=1)],
) -> NoteList:
    return NoteList(items=store.list_notes(project.id, session_id))


@router.post("/notes", summary="Leave a note on a session", status_code=201)
def add_note(note: NoteIn, request: Request, project: CurrentProject, store: CurrentStore) -> Note:
    rules = project_rules.redaction_rules(request.app.state, project.id)
    return store.add_note(project.id, redact_note(note, rules))


@router.delete("/notes/{note_id}", summary="Delete a note", status_code=204)
def delete_note(note_id: str, project: CurrentProject, store: CurrentStore) -> Response:
    if not store.delete_note(project.id, note_id):
        raise NotFound(f"no note {note_id!r} in project {project.name!r}")
    return Response(status_code=204)
