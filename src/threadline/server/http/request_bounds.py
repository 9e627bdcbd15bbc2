"""Every request body bounded in size and in time, before any route reads it.

An ASGI middleware around the whole app: a body is refused with 413 on its declared
``Content-Length`` before a byte of it is read, or as soon as what arrives passes the
limit, so a route that reads its body never holds more than the limit in memory. A
body still arriving ``body_timeout`` seconds after the request began is refused with
408. OTLP routes take up to ``max_body_bytes``, the JSON API (scores, notes: up to
1,000 scores a request) up to ``API_BODY_BYTES``, the web UI's score and note forms
(``/ui/``) up to ``ANNOTATION_FORM_BYTES`` and its other forms up to
``FORM_BODY_BYTES``. Both answers close the connection, so the rest of a
refused body is never read.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from threadline.server.errors import PayloadTooLarge, RequestTimeout
from threadline.server.settings import Settings

API_BODY_BYTES = 8 * 1024 * 1024
FORM_BODY_BYTES = 16 * 1024
# A comment or note of 10,000 characters, percent-encoded from up to 4-byte UTF-8.
ANNOTATION_FORM_BYTES = 128 * 1024
OTLP_PATHS = frozenset({"/v1/traces", "/v1/logs", "/v1/metrics", "/api/public/otel/v1/traces"})


class RequestBounds:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.otlp_limit = settings.max_body_bytes
        self.timeout = float(settings.body_timeout)

    def limit(self, path: str) -> int:
        if path in OTLP_PATHS:
            return self.otlp_limit
        if path.startswith("/api/"):
            return API_BODY_BYTES
        return ANNOTATION_FORM_BYTES if path.startswith("/ui/") else FORM_BODY_BYTES

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit(scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(send, 413, f"body of {declared} bytes exceeds the limit of {limit}")
            return
        deadline = time.monotonic() + self.timeout
        received = 0
        complete = False

        async def bounded_receive() -> Message:
            nonlocal received, complete
            if complete:
                # The body is in: all a route still receives is the client's disconnect,
                # which a streamed answer (an export) listens for for as long as it
                # streams. The bound is on the body, not on the answer.
                return await receive()
            remaining = deadline - time.monotonic()
            try:
                message = await asyncio.wait_for(receive(), max(remaining, 0.001))
            except TimeoutError:
                raise RequestTimeout(
                    f"request body not received within {self.timeout:g} s (body_timeout)"
                ) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise PayloadTooLarge(f"body exceeds the limit of {limit} bytes")
                complete = not message.get("more_body", False)
            return message

        await self.app(scope, bounded_receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            if not (text.isascii() and text.isdigit()):
                return None  # not a length: the parser refuses it, or the read is bounded
            return int(text) if len(text) < 20 else 1 << 63
    return None


async def _refuse(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    headers: list[tuple[bytes, bytes]] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    start: dict[str, Any] = {"type": "http.response.start", "status": status, "headers": headers}
    await send(start)
    await send({"type": "http.response.body", "body": body})
