"""What the SDK says when the server refuses its key or is not at its address: the cause,
and the setting to fix.

OpenTelemetry's exporter logs a refused span export as ``Failed to export span batch
code: 401, reason: Unauthorized``, which names neither Threadline nor what to change.
The server's answer does (``{"error": "unknown or revoked API key"}``), so the span
exporter's HTTP session reads it (``SpanRefusals``, a response hook of ``requests``)
and the score sender adds the same advice to its own warning.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from threadline.sdk import config

logger = logging.getLogger("threadline")


def refusal_advice(status: int) -> str | None:
    """What to change after ``status``, or None when it is not about the settings: the
    key (401, 403) or the server's address (404, 405: no receiver at that path). Every
    later request would get the same answer."""
    if status in (404, 405):
        return (
            f"no Threadline server answers at that path: set ${config.ENV_BASE_URL} (or "
            "Threadline.initialize(base_url=...)) to the server's address, such as "
            f"{config.DEFAULT_BASE_URL}, with no path unless a proxy serves it under one "
            f"(spans go to {{base_url}}{config.TRACES_PATH}, scores to "
            f"{{base_url}}{config.SCORES_PATH})"
        )
    if status == 401:
        return (
            f"set ${config.ENV_API_KEY} (or Threadline.initialize(project_api_key=...)) to a "
            "project's API key: the server prints the first one when it first starts, and "
            "`threadline keys create --project NAME` makes another"
        )
    if status == 403:
        return (
            f"this key may not do that: set ${config.ENV_API_KEY} (or "
            "Threadline.initialize(project_api_key=...)) to a full key, made by "
            "`threadline keys create --project NAME`"
        )
    return None


def server_error(body: bytes) -> str | None:
    """The ``error`` of a Threadline error answer, if the body is one."""
    try:
        detail = json.loads(body or b"{}").get("error")
    except (ValueError, AttributeError):
        return None
    return str(detail) if detail else None


class SpanRefusals:
    """A ``requests`` response hook on the span exporter's session: a refused key or a
    wrong address is logged once per distinct answer, with the setting to fix
    (OpenTelemetry's own line still follows each failed batch)."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self._said: set[tuple[int, str | None]] = set()
        self._lock = threading.Lock()

    def __call__(self, response: Any, *args: Any, **kwargs: Any) -> Any:
        status = int(getattr(response, "status_code", 0) or 0)
        advice = refusal_advice(status)
        if advice is None:
            return response
        error = server_error(getattr(response, "content", b""))
        with self._lock:
            if (status, error) in self._said:
                return response
            self._said.add((status, error))
        logger.warning(
            "threadline: spans not recorded: %s answered HTTP %d (%s); %s",
            self.endpoint,
            status,
            error or getattr(response, "reason", "") or "refused",
            advice,
        )
        return response
