"""OTLP/gRPC receiver: ``TraceService/Export`` and ``LogsService/Export`` (its GenAI
events kept, as on HTTP: ``log_events.py``), and success for metrics.

Started by the app's lifespan on ``grpc_port``, in the same process and event loop as
the HTTP server, and feeding the same ``IngestPipeline``: one admission counter, the
same worker processes and writer, and the answer only after the commit
(https://opentelemetry.io/docs/specs/otlp/#otlpgrpc-response).

- Key: ``authorization: Bearer <key>`` metadata, as on HTTP (ingest-only keys may send).
- The key is checked from the metadata before the message is received; the message
  is then read within ``body_timeout`` holding a receiving place, and handed over
  holding a place of work (``admission.py``), as on HTTP.
- Messages arrive as raw bytes (no deserializer), so the pipeline decodes them exactly
  as it does HTTP bodies, in an ingest worker process (``pipeline.py``). gRPC inflates
  ``grpc-encoding: gzip`` itself, and refuses a message over ``max_decoded_bytes``,
  as sent and inflated: the limit an HTTP body has once inflated, so an export that
  passes one receiver passes the other (gRPC has one limit for both sizes, and does not
  tell the handler whether the message came compressed).
- An unexpected error is INTERNAL with a generic message (the log has the details).
- Status codes (``grpc_refusal.py``): UNAUTHENTICATED (no or unknown key),
  INVALID_ARGUMENT (not an ExportTraceServiceRequest), RESOURCE_EXHAUSTED (too large;
  or, with a RetryInfo, the work in hand past its bound, which OTLP exporters retry),
  UNAVAILABLE with a RetryInfo (stopping, a full disk), partial success for invalid
  spans.
- The one server process binds the port exclusively (``--workers`` are ingest worker
  processes, which listen on nothing), so a port already taken fails the start instead
  of silently sharing it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import grpc
from grpc import aio
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from threadline.server.errors import BadRequest, RequestTimeout, ThreadlineError, Unauthorized
from threadline.server.http.connections import connection_limit
from threadline.server.ingest.decode import PROTOBUF
from threadline.server.ingest.grpc_refusal import refusal
from threadline.server.ingest.pipeline import IngestPipeline
from threadline.server.model import Project

log = logging.getLogger("threadline.server.grpc")

# Seconds in-flight exports get to finish (and commit) when the server stops.
_SHUTDOWN_GRACE = 10.0

_Handler = Callable[[object, aio.ServicerContext], Awaitable[bytes]]


class OtlpGrpcReceiver:
    """The gRPC server of one process; ``start`` binds, ``stop`` drains and closes."""

    def __init__(self, pipeline: IngestPipeline, host: str, port: int) -> None:
        self.pipeline = pipeline
        self.address = f"{host}:{port}"
        settings = pipeline.settings
        self._server = aio.server(
            options=[
                ("grpc.max_receive_message_length", settings.max_decoded_bytes),
                # One server process binds the port: a port another process holds
                # fails the start instead of being silently shared.
                ("grpc.so_reuseport", 0),
                # As on HTTP: connections capped below the open-file limit, a slow
                # handshake cut off, an idle connection closed (clients reconnect).
                ("grpc.max_allowed_incoming_connections", connection_limit(settings)),
                ("grpc.server_handshake_timeout_ms", settings.header_timeout * 1000),
                ("grpc.max_connection_idle_ms", 30_000),
                ("grpc.http2.bdp_probe", 0),
                ("grpc.http2.lookahead_bytes", 256 * 1024),
            ]
        )
        self._server.add_generic_rpc_handlers(
            [
                _service(trace_service_pb2, "TraceService", self._export_traces),
                _service(logs_service_pb2, "LogsService", self._export_logs),
                _service(metrics_service_pb2, "MetricsService", self._export_discarded),
            ]
        )

    async def start(self) -> None:
        try:
            self._server.add_insecure_port(self.address)
        except RuntimeError as exc:
            raise RuntimeError(
                f"cannot listen for OTLP/gRPC on {self.address} ({exc}): is the port taken? "
                "Choose another with --grpc-port, or 0 for no gRPC receiver"
            ) from exc
        await self._server.start()
        log.info("OTLP/gRPC receiver listening on %s", self.address)

    async def stop(self) -> None:
        await self._server.stop(_SHUTDOWN_GRACE)

    async def _export_traces(self, _: object, context: aio.ServicerContext) -> bytes:
        return await self._export(context, logs=False)

    async def _export_logs(self, _: object, context: aio.ServicerContext) -> bytes:
        return await self._export(context, logs=True)

    async def _export(self, context: aio.ServicerContext, logs: bool) -> bytes:
        try:
            # The key comes from the metadata, before a byte of the message is read: an
            # unknown caller costs nothing but its headers.
            project = await self._project(context)
            with self.pipeline.receiving.hold(project.id):
                body = await self._receive(context)
            with self.pipeline.pending.hold(project.id):
                if logs:
                    await self.pipeline.export_logs(project, body, PROTOBUF)
                    return b""  # an empty ExportLogsServiceResponse
                response = await self.pipeline.export(project, body, PROTOBUF)
        except ThreadlineError as exc:
            code, trailers = refusal(exc)
            await context.abort(code, exc.message, trailing_metadata=trailers)
        except Exception:
            # Never the exception's class or text: they describe the server, not the call.
            log.exception("unexpected error in an OTLP/gRPC export")
            await context.abort(grpc.StatusCode.INTERNAL, "internal error: see the server log")
        return response.SerializeToString()

    async def _receive(self, context: aio.ServicerContext) -> bytes:
        """The call's one message, within ``body_timeout`` (gRPC bounds its size)."""
        timeout = float(self.pipeline.settings.body_timeout)
        try:
            message = await asyncio.wait_for(context.read(), timeout)
        except TimeoutError:
            raise RequestTimeout(
                f"message not received within {timeout:g} s (body_timeout)"
            ) from None
        if message is aio.EOF:
            raise BadRequest("the call sent no export request")
        return bytes(message)

    async def _export_discarded(self, _: object, context: aio.ServicerContext) -> bytes:
        # As on HTTP: exporters configured for every signal must not retry forever. The
        # message is never read.
        try:
            await self._project(context)
        except ThreadlineError as exc:
            code, trailers = refusal(exc)
            await context.abort(code, exc.message, trailing_metadata=trailers)
        except Exception:
            log.exception("unexpected error in an OTLP/gRPC export")
            await context.abort(grpc.StatusCode.INTERNAL, "internal error: see the server log")
        return b""  # an empty Export*ServiceResponse

    async def _project(self, context: aio.ServicerContext) -> Project:
        metadata = dict(context.invocation_metadata() or ())
        scheme, _, key = str(metadata.get("authorization", "")).partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise Unauthorized("missing API key: send the metadata 'authorization: Bearer <key>'")
        # A store read: off the event loop, like every other one.
        access = await asyncio.to_thread(self.pipeline.store.access_for_key, key.strip())
        if access is None:
            raise Unauthorized("unknown or revoked API key")
        return access.project


def _service(module: object, name: str, export: _Handler) -> grpc.GenericRpcHandler:
    full_name = module.DESCRIPTOR.services_by_name[name].full_name  # type: ignore[attr-defined]
    # No (de)serializers: the handler takes and returns the raw protobuf bytes. A
    # stream-unary handler (the wire is the same as a unary call's) reads its message
    # itself, so the key is checked, and a place taken, before the message is received.
    return grpc.method_handlers_generic_handler(
        full_name, {"Export": grpc.stream_unary_rpc_method_handler(export)}
    )
