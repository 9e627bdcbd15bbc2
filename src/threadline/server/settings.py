"""Every server setting in one table: name, default, environment variable, help.

Resolved once at start-up, in this order: command-line flag, then the environment
variable ``THREADLINE_<NAME>``, then the default. ``docs/configuration.md`` is this
table in prose; a test checks that they agree.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from threadline.server.errors import ConfigurationError


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str

    @property
    def env(self) -> str:
        return "THREADLINE_" + self.name.upper()

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


SETTINGS: tuple[Setting, ...] = (
    Setting("host", "127.0.0.1", "Address to listen on. Loopback unless you say otherwise."),
    Setting("port", 8000, "HTTP port for OTLP/HTTP ingest, the JSON API and the web UI."),
    Setting(
        "grpc_port",
        4317,
        "OTLP/gRPC ingest port, on the same host as HTTP. 0: no gRPC receiver.",
    ),
    Setting("data_dir", ".threadline", "Folder of the embedded SQLite store."),
    Setting(
        "store",
        "",
        "Storage URL, e.g. sqlite:///path/to/threadline.db. Empty: SQLite in data_dir.",
    ),
    Setting(
        "retention_days",
        0,
        "Delete a trace this many days after it ended (0: keep forever); a project may set "
        "its own (`threadline projects retention`). SQLite: a background task deletes in "
        "small batches; ClickHouse: a TTL on the span, trace and session tables.",
    ),
    Setting(
        "metrics_refresh_seconds",
        10,
        "ClickHouse: how often each server refreshes the dashboard's figures of the "
        "five-minute slices written to since its last pass (at least four times as long "
        "as a pass took, so a busy store spends at most a fifth of the time on it).",
    ),
    Setting(
        "metrics_refresh_margin_seconds",
        60,
        "ClickHouse: a refresh looks again at what was written this long before the "
        "previous pass began; set it above the replicas' lag (and clock skew), or a write "
        "a replica showed late may stay out of the dashboard's figures.",
    ),
    Setting(
        "metrics_max_models",
        20,
        "The dashboard's and GET /api/v1/metrics' by-model series: per metric and group, "
        "the models using the most in the range get a series each, at most this many; the "
        "rest are added up in one (0: all of them).",
    ),
    Setting(
        "metrics_max_score_names",
        50,
        "The dashboard's and GET /api/v1/metrics' score series: the score names with the "
        "most values in the range get series, at most this many.",
    ),
    Setting(
        "max_body_bytes",
        16 * 1024 * 1024,
        "Largest OTLP/HTTP request body accepted, compressed or not (larger: 413).",
    ),
    Setting(
        "max_decoded_bytes",
        32 * 1024 * 1024,
        "Largest body after gzip decompression (larger: 413): guards against gzip bombs. "
        "Also the limit of an OTLP/gRPC message, as sent and inflated.",
    ),
    Setting(
        "max_pending_exports",
        8,
        "Exports in hand at once (received, not yet committed and answered); more get 503 "
        "with Retry-After (exporters retry).",
    ),
    Setting(
        "max_receiving_exports",
        16,
        "OTLP bodies being received at once (HTTP and gRPC); more get 503 with Retry-After. "
        "One project may hold at most three quarters of these, and of max_pending_exports.",
    ),
    Setting(
        "max_spans_per_export",
        20_000,
        "Most spans one export may hold (more: 413, nothing stored).",
    ),
    Setting(
        "max_span_attributes",
        10_000,
        "Most attributes (and events) one span may carry (more: 413, nothing stored).",
    ),
    Setting(
        "genai_event_wait_seconds",
        900,
        "How long a GenAI log event (OTLP logs: a chat message of an instrumented model "
        "call) waits for its span; one whose span has not come by then is deleted.",
    ),
    Setting(
        "body_timeout",
        30,
        "Seconds a client has to send a whole request body (slower: 408, connection closed).",
    ),
    Setting(
        "header_timeout",
        10,
        "Seconds a client has to send a request's headers, or an idle connection's first "
        "request (slower: the connection is closed).",
    ),
    Setting(
        "max_connections",
        0,
        "Open connections, for HTTP and for gRPC each; more are closed at once. "
        "0: derived from the open-file limit, keeping files for the store and the workers.",
    ),
    Setting(
        "workers",
        1,
        "Ingest worker processes: they decode and normalise exports (CPU-bound Python) "
        "beside the one server process, whose writer thread commits them. On a machine with "
        "two or more cores, --workers 2 starts two ingest worker processes, one per core "
        "(docs/benchmarks.md).",
    ),
    Setting("log_level", "info", "Server log level: debug, info, warning or error."),
    Setting(
        "session_idle_seconds",
        600,
        "A session with no new trace for this long counts as ended: online evaluators "
        "judge it, and the Sessions list shows it as ended.",
    ),
    Setting(
        "evaluation_concurrency",
        4,
        "Judge calls in flight at once, per server process, shared fairly across "
        "projects (and one more for a project with none in flight). 0: this process "
        "runs no evaluations (another server, or `threadline evaluate`, does).",
    ),
    Setting(
        "evaluation_max_waiting_runs",
        50_000,
        "Evaluation runs one project may have waiting (pending or running). A request "
        "that would queue more (an evaluator created with judge_existing_since, an "
        "Evaluate, POST /api/v1/evaluation-runs) is refused with 409, and the sweep for "
        "ended sessions pauses for that project until its runs drop under it (it then "
        "catches up: no session is skipped).",
    ),
    Setting(
        "judge_timeout_seconds",
        60,
        "How long one call to an evaluator's judge may take before it counts as failed.",
    ),
    Setting(
        "judge_attempts",
        3,
        "Calls to a judge per run: a timeout, a connection error, 408, 409, 429, 500, 502, "
        "503 or 504 is retried after a growing pause (1 s, 2 s, 4 s...); other failures "
        "are not.",
    ),
    Setting(
        "judge_key_urls",
        "",
        "The base URLs each judge key variable may be sent to: `NAME=URL[,URL...]` "
        "entries separated by spaces, e.g. "
        "`THREADLINE_JUDGE_OPENAI_KEY=https://api.openai.com/v1`. An evaluator naming a "
        "key for another URL is refused, and the key is never sent there. Empty: any "
        "key to any URL, as before (the server warns at start).",
    ),
    Setting(
        "transcript_max_chars",
        60_000,
        "Longest transcript sent to a judge (about 15,000 tokens); longer ones are cut in "
        "the middle, with a marker saying how much was left out.",
    ),
)


# Each setting's default, as written once in SETTINGS: the Settings below, the CLI's
# --help and the docs all read it from there.
_DEFAULTS: dict[str, Any] = {setting.name: setting.default for setting in SETTINGS}


@dataclass(frozen=True)
class Settings:
    """Every setting resolved; each default is written once, in ``SETTINGS``."""

    host: str = _DEFAULTS["host"]
    port: int = _DEFAULTS["port"]
    grpc_port: int = _DEFAULTS["grpc_port"]
    data_dir: Path = Path(_DEFAULTS["data_dir"])
    store: str = _DEFAULTS["store"]
    retention_days: int = _DEFAULTS["retention_days"]
    metrics_refresh_seconds: int = _DEFAULTS["metrics_refresh_seconds"]
    metrics_refresh_margin_seconds: int = _DEFAULTS["metrics_refresh_margin_seconds"]
    metrics_max_models: int = _DEFAULTS["metrics_max_models"]
    metrics_max_score_names: int = _DEFAULTS["metrics_max_score_names"]
    max_body_bytes: int = _DEFAULTS["max_body_bytes"]
    max_decoded_bytes: int = _DEFAULTS["max_decoded_bytes"]
    max_pending_exports: int = _DEFAULTS["max_pending_exports"]
    max_receiving_exports: int = _DEFAULTS["max_receiving_exports"]
    max_spans_per_export: int = _DEFAULTS["max_spans_per_export"]
    max_span_attributes: int = _DEFAULTS["max_span_attributes"]
    genai_event_wait_seconds: int = _DEFAULTS["genai_event_wait_seconds"]
    body_timeout: int = _DEFAULTS["body_timeout"]
    header_timeout: int = _DEFAULTS["header_timeout"]
    max_connections: int = _DEFAULTS["max_connections"]
    workers: int = _DEFAULTS["workers"]
    log_level: str = _DEFAULTS["log_level"]
    session_idle_seconds: int = _DEFAULTS["session_idle_seconds"]
    evaluation_concurrency: int = _DEFAULTS["evaluation_concurrency"]
    evaluation_max_waiting_runs: int = _DEFAULTS["evaluation_max_waiting_runs"]
    judge_timeout_seconds: int = _DEFAULTS["judge_timeout_seconds"]
    judge_attempts: int = _DEFAULTS["judge_attempts"]
    judge_key_urls: str = _DEFAULTS["judge_key_urls"]
    transcript_max_chars: int = _DEFAULTS["transcript_max_chars"]

    @property
    def store_url(self) -> str:
        if self.store:
            return self.store
        return f"sqlite://{(self.data_dir / 'threadline.db').resolve()}"

    def to_environment(self) -> dict[str, str]:
        """These settings as the THREADLINE_* variables that ``resolve`` reads back."""
        return {s.env: str(getattr(self, s.name)) for s in SETTINGS}

    @classmethod
    def resolve(
        cls, flags: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
    ) -> Settings:
        """Flags (None means 'not given') win over the environment, which wins over defaults."""
        flags = flags or {}
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        types = {f.name: f.type for f in fields(cls)}
        for setting in SETTINGS:
            raw = flags.get(setting.name)
            if raw is None:
                raw = environ.get(setting.env)
            if raw is None:
                continue
            values[setting.name] = _coerce(setting, raw, types[setting.name])
        return cls(**values)


def _coerce(setting: Setting, raw: Any, annotation: object) -> Any:
    try:
        if annotation == "int":
            return int(raw)
        if annotation == "Path":
            return Path(raw)
        return str(raw)
    except ValueError:
        raise ConfigurationError(f"{setting.flag} / {setting.env}: not a number: {raw!r}") from None


def local_base_url() -> str:
    """Where ``threadline serve`` listens when told nothing: the CLI's client commands
    (``demo``, ``delete``, ``export``) send there unless given a URL."""
    return f"http://{Settings.host}:{Settings.port}"
