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
from threadline.server.evaluation.checks import check_evaluator
from threadline.server.evaluation.model import (
    EvaluationRun,
    Evaluator,
    EvaluatorIn,
    RunQuery,
    RunRecord,
    RunRequest,
    RunStatus,
)
from threadline.server.model import Page

router = APIRouter(prefix="/api/v1", tags=["evaluations"])

# Sessions one request may queue runs for; the CLI has no such bound.
MAX_SESSIONS_PER_REQUEST = 1000


class EvaluatorList(BaseModel):
    items: list[Evaluator]


class RunList(BaseModel):
    items: list[EvaluationRun]


def wake_runner(request: Request) -> None:
    service = getattr(request.app.state, "evaluations", None)
    if service is not None:
        service.wake()


@router.get("/evaluators", summary="The project's evaluators, with what they did and cost")
def list_evaluators(project: CurrentProject, store: CurrentStore) -> EvaluatorList:
    return EvaluatorList(items=store.list_evaluators(project.id))


@router.post("/evaluators", summary="Define an evaluator", status_code=201)
def create_evaluator(
    evaluator: EvaluatorIn, project: CurrentProject, store: CurrentStore
) -> Evaluator:
    if store.get_evaluator(project.id, evaluator.name) is not None:
        raise Conflict(f"evaluator {evaluator.name!r} exists: PUT it to replace it")
    return store.put_evaluator(project.id, check_evaluator(store, project.id, evaluator))


@router.get("/evaluators/{name}", summary="One evaluator")
def get_evaluator(name: str, project: CurrentProject, store: CurrentStore) -> Evaluator:
    found = store.get_evaluator(project.id, name)
    if found is None:
        raise NotFound(f"no evaluator {name!r} in project {project.name!r}")
    return found


@router.put("/evaluators/{name}", summary="Create or replace an evaluator")
def put_evaluator(
    name: str, evaluator: EvaluatorIn, project: CurrentProject, store: CurrentStore
) -> Evaluator:
    if evaluator.name != name:
        raise BadRequest(f"the body names {evaluator.name!r}, the path {name!r}")
    return store.put_evaluator(project.id, check_evaluator(store, project.id, evaluator))


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
    if body.session_id is not None:
        runs = ondemand.runs_for_session(store, project.id, evaluator, body.session_id)
    else:
        assert body.since is not None
        runs = ondemand.runs_since(
            store, project.id, evaluator, body.since, body.filter, MAX_SESSIONS_PER_REQUEST
        )
    wake_runner(request)
    found = store.get_runs(project.id, [r.id for r in runs])
    return RunList(items=[found[r.id] for r in runs if r.id in found])
