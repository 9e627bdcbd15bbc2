"""Evaluators and evaluation runs: ``/api/v1/evaluators`` and ``/api/v1/evaluation-runs``.

Full keys only (an evaluator spends money on its judge). Keys of judges are never sent
or stored: an evaluator names the environment variable of the server that holds one.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel

from threadline.server.api.routes import CurrentStore, Cursor, Limit
from threadline.server.auth import CurrentProject
from threadline.server.errors import BadRequest, Conflict, NotFound
from threadline.server.evaluation import ondemand
from threadline.server.evaluation.key_urls import KeyUrls
from threadline.server.evaluation.model import (
    EvaluationRun,
    Evaluator,
    EvaluatorCreate,
    RunQuery,
    RunRecord,
    RunRequest,
    RunStatus,
)
from threadline.server.evaluation.saving import save_evaluator
from threadline.server.evaluation.service import wake_runner
from threadline.server.model import Page
from threadline.server.store import Store

router = APIRouter(prefix="/api/v1", tags=["evaluations"])

# Sessions one request may queue runs for, the runs (a trace evaluator queues one a
# trace) and the sessions read to find them; the CLI has no such bound.
MAX_SESSIONS_PER_REQUEST = 1000
MAX_RUNS_PER_REQUEST = ondemand.EXISTING_MAX_RUNS
MAX_READ_PER_REQUEST = ondemand.EXISTING_MAX_READ


class EvaluatorList(BaseModel):
    items: list[Evaluator]


class RunList(BaseModel):
    items: list[EvaluationRun]


def key_urls(request: Request) -> KeyUrls:
    return KeyUrls.of(request.app.state.settings)


@router.get("/evaluators", summary="The project's evaluators, with what they did and cost")
def list_evaluators(project: CurrentProject, store: CurrentStore) -> EvaluatorList:
    return EvaluatorList(items=store.list_evaluators(project.id))


@router.post("/evaluators", summary="Define an evaluator", status_code=201)
def create_evaluator(
    body: EvaluatorCreate, request: Request, project: CurrentProject, store: CurrentStore
) -> Evaluator:
    if store.get_evaluator(project.id, body.name) is not None:
        raise Conflict(f"evaluator {body.name!r} exists: PUT it to replace it")
    return _save(body, request, project.id, store)


def _save(body: EvaluatorCreate, request: Request, project_id: int, store: Store) -> Evaluator:
    settings = request.app.state.settings
    saved, queued = save_evaluator(
        store,
        project_id,
        body.definition(),
        key_urls(request),
        body.judge_existing_since,
        settings.session_idle_seconds,
        max_waiting=settings.evaluation_max_waiting_runs,
    )
    if queued:
        wake_runner(request.app.state)
    return saved


@router.get("/evaluators/{name}", summary="One evaluator")
def get_evaluator(name: str, project: CurrentProject, store: CurrentStore) -> Evaluator:
    found = store.get_evaluator(project.id, name)
    if found is None:
        raise NotFound(f"no evaluator {name!r} in project {project.name!r}")
    return found


@router.put("/evaluators/{name}", summary="Create or replace an evaluator")
def put_evaluator(
    name: str,
    body: EvaluatorCreate,
    request: Request,
    project: CurrentProject,
    store: CurrentStore,
) -> Evaluator:
    if body.name != name:
        raise BadRequest(f"the body names {body.name!r}, the path {name!r}")
    return _save(body, request, project.id, store)


@router.delete("/evaluators/{name}", summary="Delete an evaluator", status_code=204)
def delete_evaluator(name: str, project: CurrentProject, store: CurrentStore) -> Response:
    if not store.delete_evaluator(project.id, name):
        raise NotFound(f"no evaluator {name!r} in project {project.name!r}")
    return Response(status_code=204)


@router.get("/evaluation-runs", summary="Evaluation runs, newest first")
def list_runs(
    project: CurrentProject,
    store: CurrentStore,
    limit: Limit = 50,
    cursor: Cursor = None,
    evaluator: str | None = None,
    session_id: str | None = None,
    status: Annotated[RunStatus | None, Query()] = None,
) -> Page[EvaluationRun]:
    query = RunQuery(
        limit=limit, cursor=cursor, evaluator=evaluator, session_id=session_id, status=status
    )
    return store.list_runs(project.id, query)


@router.get("/evaluation-runs/{run_id}", summary="One evaluation run")
def get_run(run_id: str, project: CurrentProject, store: CurrentStore) -> EvaluationRun:
    found = store.get_runs(project.id, [run_id]).get(run_id)
    if found is None:
        raise NotFound(f"no evaluation run {run_id!r} in project {project.name!r}")
    return found


@router.post(
    "/evaluation-runs",
    summary="Judge a session, or every session active since a time, now",
    status_code=202,
)
def request_runs(
    body: RunRequest, request: Request, project: CurrentProject, store: CurrentStore
) -> RunList:
    evaluator = store.get_evaluator(project.id, body.evaluator)
    if evaluator is None:
        raise NotFound(f"no evaluator {body.evaluator!r} in project {project.name!r}")
    if (body.session_id is None) == (body.since is None):
        raise BadRequest("give either session_id or since")
    runs: list[RunRecord]
    max_waiting = request.app.state.settings.evaluation_max_waiting_runs
    if body.session_id is not None:
        runs = ondemand.runs_for_session(store, project.id, evaluator, body.session_id, max_waiting)
    else:
        assert body.since is not None
        runs = ondemand.runs_since(
            store,
            project.id,
            evaluator,
            body.since,
            body.filter,
            MAX_SESSIONS_PER_REQUEST,
            MAX_RUNS_PER_REQUEST,
            MAX_READ_PER_REQUEST,
            max_waiting,
        )
    wake_runner(request.app.state)
    found = store.get_runs(project.id, [r.id for r in runs])
    return RunList(items=[found[r.id] for r in runs if r.id in found])
