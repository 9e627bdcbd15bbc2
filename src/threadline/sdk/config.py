"""SDK settings, resolved once at ``initialize``: argument > environment > default.

One table, so that the docs (docs/sdk.md, "Environment variables") and the code agree.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from threadline.sdk.state import ENV_DISABLED, env_disabled

ENV_API_KEY = "THREADLINE_API_KEY"
ENV_BASE_URL = "THREADLINE_BASE_URL"
ENV_CAPTURE_CONTENT = "THREADLINE_CAPTURE_CONTENT"
#: OpenTelemetry's, read by its GenAI instrumentors; a user who set it to false is obeyed.
OTEL_CAPTURE_CONTENT = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
_CONTENT_OFF = frozenset({"0", "false", "no", "off", "no_content"})
DEFAULT_BASE_URL = "http://127.0.0.1:8000"
#: OTLP/HTTP's standard path, appended to the base URL (the server serves it there).
TRACES_PATH = "/v1/traces"
#: The JSON API's score route, where ``Threadline.score`` sends.
SCORES_PATH = "/api/v1/scores"

#: (environment variable, meaning, default): the table in docs/sdk.md, which
#: tests/sdk/test_client.py checks against this one.
ENVIRONMENT: tuple[tuple[str, str, str], ...] = (
    (ENV_API_KEY, "project API key, sent as `Authorization: Bearer <key>`", "none"),
    (
        ENV_BASE_URL,
        "server URL (scheme, host, optional port, optional path prefix)",
        DEFAULT_BASE_URL,
    ),
    (ENV_DISABLED, "`1`/`true`/`yes`/`on`: run decorated code untouched, create no spans", "false"),
    (
        ENV_CAPTURE_CONTENT,
        "`0`/`false`/`no`/`off`: do not record the messages of instrumented OpenAI calls",
        "true",
    ),
)


@dataclass(frozen=True)
class Settings:
    api_key: str | None
    base_url: str
    disabled: bool

    @property
    def traces_endpoint(self) -> str:
        return self.base_url + TRACES_PATH

    @property
    def scores_endpoint(self) -> str:
        return self.base_url + SCORES_PATH

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}


def resolve(
    api_key: str | None = None,
    base_url: str | None = None,
    disabled: bool | None = None,
    environ: Mapping[str, str] = os.environ,
) -> Settings:
    url = (base_url or environ.get(ENV_BASE_URL) or DEFAULT_BASE_URL).strip().rstrip("/")
    # Accept the full endpoint too (a common copy-paste from OTel docs).
    url = url.removesuffix(TRACES_PATH)
    return Settings(
        api_key=api_key or environ.get(ENV_API_KEY) or None,
        base_url=url,
        disabled=env_disabled(environ) if disabled is None else disabled,
    )


def capture_content_enabled(
    argument: bool | None = None, environ: Mapping[str, str] = os.environ
) -> bool:
    """Argument, else ``THREADLINE_CAPTURE_CONTENT``, else off only if OpenTelemetry's
    variable says false; on by default."""
    if argument is not None:
        return argument
    ours = environ.get(ENV_CAPTURE_CONTENT, "").strip().lower()
    if ours:
        return ours not in _CONTENT_OFF
    return environ.get(OTEL_CAPTURE_CONTENT, "").strip().lower() not in _CONTENT_OFF
