"""``create_app``: wires ingest, the JSON API and the web UI onto one store."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from threadline.server import pricing
from threadline.server.api.deletion import router as deletion_api_router
from threadline.server.api.docs import install as install_api_docs
from threadline.server.api.evaluations import router as evaluations_api_router
from threadline.server.api.export import router as export_api_router
from threadline.server.api.langfuse_scores import router as langfuse_scores_router
from threadline.server.api.project_rules import router as project_rules_api_router
from threadline.server.api.routes import router as api_router
from threadline.server.api.scores import router as scores_api_router
from threadline.server.api.session_inference import router as session_inference_router
from threadline.server.api.shares import router as shares_api_router
from threadline.server.errors import BadRequest, Overloaded, ThreadlineError
from threadline.server.evaluation.service import EvaluationService
from threadline.server.http.path_values import controls_in_path
from threadline.server.http.query_names import DECLARED_QUERY_ONLY, SINGLE_VALUES_ONCE
from threadline.server.http.query_values import NO_NUL_IN_QUERY
from threadline.server.http.request_bounds import RequestBounds
from threadline.server.ingest.otlp_http import router as otlp_router
from threadline.server.ingest.pipeline import IngestPipeline
from threadline.server.ingest.tuning import tune_garbage_collector
from threadline.server.metric_refresh import MetricRefreshService
from threadline.server.retention import RetentionService
from threadline.server.score_types import WrittenTypes
from threadline.server.settings import Settings
from threadline.server.store import Store, open_store, sqlite_path
from threadline.server.version import VERSION
from threadline.server.web import install as install_web_ui
from threadline.server.web.auth import sign_in_first
from threadline.server.web.error_pages import error_page, wants_page
from threadline.server.web.live_position import LivePositions, load_secret

log = logging.getLogger("threadline.server")

# Requests held by /healthz?wait= at once (the route needs no key).
MAX_HEALTH_WAITERS = 64


def create_app(settings: Settings, store: Store) -> FastAPI:
    """The ASGI app. It owns ``store`` from here on and closes it when it shuts down."""

    ingest = IngestPipeline(store, settings)
    evaluations = EvaluationService(store, settings, ingest_quiet=ingest.quiet_seconds)
    retention = RetentionService(
        store,
        settings.retention_days,
        ingest_quiet=ingest.quiet_seconds,
        event_wait_seconds=settings.genai_event_wait_seconds,
    )
    metric_refresh = MetricRefreshService(
        store, settings.metrics_refresh_seconds, settings.metrics_refresh_margin_seconds
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pricing.load()
        # The API key's lookup (a sync dependency) runs in the thread pool, whose
        # backend (anyio's) is imported on first use: ~20 ms the first export waited.
        await run_in_threadpool(lambda: None)
        tune_garbage_collector()  # after loading what lives as long as the process
        await ingest.start()  # the server answers once it can ingest
        # The gRPC receiver shares this process's event loop and ingest pipeline, so it
        # starts and stops with the app (each worker process runs its own lifespan).
        grpc_receiver = None
        if settings.grpc_port:
            from threadline.server.ingest.otlp_grpc import OtlpGrpcReceiver

            grpc_receiver = OtlpGrpcReceiver(ingest, settings.host, settings.grpc_port)
            await grpc_receiver.start()
        await evaluations.start()
        retention.start()
        metric_refresh.start()
        yield
        await run_in_threadpool(metric_refresh.stop)  # ends after the pass in hand
        await evaluations.stop()  # unfinished runs go back in the stored queue
        await run_in_threadpool(retention.stop)  # ends after the batch in hand
        # uvicorn answers SIGTERM by finishing in-flight requests, running this, and
        # then re-raising the signal: code after uvicorn.run() would never run.
        if grpc_receiver is not None:
            await grpc_receiver.stop()  # lets in-flight exports commit and answer
        ingest.close()
        store.close()

    app = FastAPI(
        lifespan=lifespan,
        title="Threadline",
        summary="OpenTelemetry-native observability for LLM applications, sessions first.",
        # Shown atop /docs, which the web UI's top bar opens: the way back, and how to try.
        description="[Back to the web UI](/sessions). To try a route here, *Authorize* "
        "with a project API key (`tl_...`), sent as `Authorization: Bearer <key>`. "
        "The routes are described in docs/api.md.",
        version=VERSION,
        docs_url=None,  # api/docs.py serves /docs with local assets
        redoc_url=None,
        dependencies=[NO_NUL_IN_QUERY],
    )
    app.state.settings = settings
    app.state.store = store
    app.state.ingest = ingest
    app.state.live_positions = LivePositions(_live_position_secret(settings))
    app.state.score_types = WrittenTypes()
    app.state.evaluations = evaluations
    app.state.retention = retention
    app.add_middleware(RequestBounds, settings=settings)
    app.include_router(otlp_router)
    app.include_router(langfuse_scores_router)
    # The JSON API (/api/v1): a query parameter a route does not take is a 400.
    for router in (
        api_router,
        scores_api_router,
        evaluations_api_router,
        deletion_api_router,
        export_api_router,
        shares_api_router,
        session_inference_router,
        project_rules_api_router,
    ):
        app.include_router(router, dependencies=[DECLARED_QUERY_ONLY, SINGLE_VALUES_ONCE])
    install_web_ui(app)
    install_api_docs(app)

    waiters = _Waiters()

    @app.get("/healthz", tags=["health"], summary="Liveness, and exports not yet committed")
    async def healthz(
        wait: Annotated[
            float,
            Query(
                ge=0,
                le=60,
                description=(
                    "Seconds to hold the answer until no export is in hand (received and not "
                    "yet committed). An exporter needs no such wait: each export is answered "
                    "once committed."
                ),
            ),
        ] = 0,
    ) -> dict[str, str | int]:
        # queued_exports: exports received and not yet committed (each is answered once
        # it is). The route needs no key, so the waiters are bounded: past
        # MAX_HEALTH_WAITERS, 503 at once.
        if not ingest.in_hand or not wait:
            return health()
        if waiters.count >= MAX_HEALTH_WAITERS:
            raise Overloaded(
                f"{waiters.count} requests already wait on /healthz (at most "
                f"{MAX_HEALTH_WAITERS}): retry later"
            )
        waiters.count += 1
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ingest.wait_idle(), wait)
        finally:
            waiters.count -= 1
        return health()

    def health() -> dict[str, str | int]:
        counts = ingest.writer.counts
        # How well the writer groups exports under load: exports per transaction.
        figures = {
            "queued_exports": ingest.in_hand,
            "write_transactions": counts.transactions,
            "exports_written": counts.exports,
            "exports_prepared_by_writer": counts.prepared_by_writer,
            # Spans with GenAI log events waiting for them (this server's index).
            "genai_spans_waiting": ingest.waiting.count(),
            # What their events weigh (bounded a project: waiting_events.py).
            "genai_events_waiting_bytes": ingest.waiting.weight(),
        }
        # Still 200 on a full disk: the server is alive, and tells exporters to retry.
        if ingest.disk_full is not None:
            return {"status": "disk_full", **figures, "problem": ingest.disk_full}
        return {"status": "ok", **figures}

    _install_error_handlers(app)
    return app


class _Waiters:
    """Requests held by /healthz?wait= (counted on the event loop only)."""

    def __init__(self) -> None:
        self.count = 0


def _live_position_secret(settings: Settings) -> bytes:
    """The secret of live positions: beside the SQLite file, or, on ClickHouse, this
    process's own, so that a server on ClickHouse keeps nothing on its local disk (a
    position made before a restart, or by another server, does not open, and the
    browser reloads the page: see web/live_position.py)."""
    if sqlite_path(settings.store_url) is not None:
        return load_secret(settings.data_dir)
    return secrets.token_bytes(32)


def app_from_environment() -> FastAPI:
    """The app of one server process, its settings resolved from THREADLINE_* variables
    (``threadline serve`` puts its flags there before starting the workers)."""
    settings = Settings.resolve()
    _log_to_stderr(settings.log_level)
    return create_app(settings, open_store(settings.store_url, settings.retention_days))


def _log_to_stderr(level: str) -> None:
    """Send the server's own log lines (``threadline.*``) where uvicorn sends its own:
    uvicorn configures only its loggers, so without this they were never shown."""
    logger = logging.getLogger("threadline")
    if not any(getattr(h, "threadline", False) for h in logger.handlers):
        handler = logging.StreamHandler()
        handler.threadline = True  # type: ignore[attr-defined]
        handler.setFormatter(logging.Formatter("%(levelname)s:     %(name)s: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(level.upper())
    logger.propagate = False


def _error(status: int, message: str, headers: dict[str, str] | None = None, **extra: object):
    return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)


def _unreadable_body(cause: BaseException) -> str:
    """Why FastAPI could not read a JSON body (it says only "There was an error parsing
    the body"; JSON that does not parse is a 422 of its own)."""
    if isinstance(cause, RecursionError):
        why = "it is nested more deeply than the server reads"
    elif isinstance(cause, UnicodeDecodeError):
        why = "it is not UTF-8"
    else:  # e.g. an integer of more digits than Python converts
        why = str(cause)[:200]
    return f"the JSON body cannot be read: {why}"


# What FastAPI says when a route that reads a JSON body got something else: it reads JSON
# only when the request says so, and hands a model the raw bytes otherwise.
_WHOLE_BODY_TYPES = frozenset({"model_attributes_type", "dict_type", "list_type", "model_type"})


def _body_sent_as(request: Request, errors: Sequence[Any]) -> str | None:
    """The content type a JSON route's body came as, when that is why it could not be
    read (``curl -d`` sends ``application/x-www-form-urlencoded`` unless told):
    the field-by-field complaints would hide it."""
    sent = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if not sent or sent == "application/json" or sent.endswith("+json"):
        return None
    whole = (e for e in errors if e["loc"][:1] == ("body",) and len(e["loc"]) <= 2)
    return sent if any(e["type"] in _WHOLE_BODY_TYPES for e in whole) else None


def _install_error_handlers(app: FastAPI) -> None:
    """One rendering of every error: ``{"error": "<what the client got wrong>"}``, but for
    a browser loading a page (``web/error_pages.py``)."""

    @app.exception_handler(ThreadlineError)
    async def threadline_error(request: Request, exc: ThreadlineError) -> Response:
        if exc.status == 404 and (malformed := controls_in_path(request)) is not None:
            exc = BadRequest(malformed)
        if exc.status == 400 and (signing_in := await sign_in_first(request)) is not None:
            return await http_error(request, signing_in)
        if wants_page(request, exc.status):
            faults = exc.faults if isinstance(exc, BadRequest) else frozenset()
            return await error_page(request, exc.status, exc.headers, exc.message, faults)
        return _error(exc.status, exc.message, exc.headers)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 404 and (malformed := controls_in_path(request)) is not None:
            return await threadline_error(request, BadRequest(malformed))
        if wants_page(request, exc.status_code):
            return await error_page(request, exc.status_code, getattr(exc, "headers", None))
        message = str(exc.detail)
        if exc.status_code == 400 and exc.__cause__ is not None:
            message = _unreadable_body(exc.__cause__)
        return _error(exc.status_code, message, getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        if (signing_in := await sign_in_first(request)) is not None:
            return await http_error(request, signing_in)
        # A page's address a person edited is a bad request, not an API's 422.
        if wants_page(request, 400):
            return await error_page(request, 400, message=problems)
        if (sent := _body_sent_as(request, exc.errors())) is not None:
            problems = (
                "the body must be JSON, sent with 'Content-Type: application/json'"
                f" (this one came as '{sent}')"
            )
        return _error(422, f"invalid request: {problems}")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        if wants_page(request, 500):
            return await error_page(request, 500)
        return _error(500, "internal error: see the server log")
