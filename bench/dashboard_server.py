"""The durable ingest rate of a server with the dashboard's aggregates and without them,
in one run: what the dashboard costs the rate a user sees.

    python bench/dashboard_server.py --shape backfill --round-spans 20000 --pairs 5
    python bench/dashboard_server.py --shape live --round-spans 20000 --pairs 5

``dashboard.py --ingest-only`` measures the same cost on the store alone (its writes
from one thread); here it is measured through a whole server, which also decodes,
normalises and prepares every span, so the dashboard's upkeep is a smaller share of the
work. The spans are ``dashboard.py``'s (sessions of 2 traces of 5 spans: a root and 4
children, 2 of them LLM calls with tokens and cost of two models, 5,000 users, tags and
an ``app_version`` metadata key, 3 % of traces failing), as OTLP exports of ``--batch``
spans: ``--shape backfill`` spreads the sessions over the 30 days before now in random
order, ``--shape live`` has them start in order over the last hour. The bodies are made
once, before the first round, and every round sends the same ones. Their texts are
``dashboard.py``'s few bytes a span, unless ``--text-bytes`` gives each span an input and
output of that many bytes (``workload.py``'s spans average ~4 KB of protobuf): a server's
CPU a span grows with its text, the dashboard's upkeep does not. ``--corpus real`` sends
``corpus_otlp.py``'s chats of real text instead (a trace per LLM call: a root span with
the session and user, the call with its whole history in the GenAI conventions, tool
spans in two of its applications; ~3 spans a trace), its sessions starting a second apart
over the hour before the store's end: spans of the size and shape a chat application
sends, priced by model (``--shape`` does not apply to it).

Rounds alternate with, without, without, with, with, without, ... (so a machine speeding
up or slowing down during the run favours neither): each round starts a fresh server
(``--workers`` ingest processes, SQLite in a new data directory), sends the exports
from ``--senders`` concurrent exporters and times from the first export to every span
written (``/healthz?wait``). The server without the dashboard runs with
the benchmark hook ``without_dashboard`` (``bench/hooks/sitecustomize.py``, added to any
the environment names): it takes from the store, in the server and its worker
processes, exactly what ``dashboard.py``'s store without the dashboard lacks
(``no_dashboard.py`` defines it for both). Each round checks
which arm it ran: the store's activity aggregates count its traces with the dashboard, none
without.
Printed: each round's spans/s and the CPU per span (read from ``/proc``) of the server's
processes, of its own process (where the event loop, the writer and the WAL checkpointer
share one GIL, while the workers prepare in theirs), of its busiest thread, the
writer, and of its WAL checkpointer (the servers run with the ``thread_names`` hook,
which names their threads for ``/proc``); each pair's shares (rate; spans per CPU second
of each of the three, the whole server's disturbed far less than the rate by a shared
machine's other jobs) and the main process's extra CPU a span with the dashboard, split
between the writer, the checkpointer and the rest (the event loop, loading the workers'
answers); and their medians. A base store's copy is flushed to disk before its server
starts (``copied_base``).

``--base-sessions N`` starts every round's server on a copy of one store already
holding ``N`` of ``dashboard.py``'s backfilled sessions (10 N spans over the 30 days,
filled once, with the dashboard, before the first round; the arm without it loses the
dashboard's schema when its server opens the copy, before the clock starts): what the
aggregates cost a store of the issue's size (1M spans: ``--base-sessions 100000``), whose
indexes no longer fit the caches as a fresh store's do. ``--keep-base DIR`` keeps that
store in ``DIR`` and starts later runs on it rather than filling it again (1-7 minutes
at 1M spans): its name holds the session count and a digest of the running tree's
SQLite migrations (``base-100000-s0029-<digest>.db``), so a tree of another schema (an
A/B arm in another worktree) fills and keeps its own, and never opens a base of another
schema. A kept base also keeps the end of its 30 days (beside it, in a ``.json``), which
every run on it then ends its exports at too, so that its rounds relate to the base as
in the run that filled it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime
from itertools import groupby
from pathlib import Path
from typing import NamedTuple

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from threadline import semconv
from threadline.server.model import SpanRecord
from threadline.server.store import migrations
from threadline.server.store.sqlite.driver import sqlite3

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import corpus_otlp  # noqa: E402
import dashboard  # noqa: E402
import workload  # noqa: E402
from server import measured_ingest, server_environment, start_server  # noqa: E402

KINDS = {"SERVER": Span.SPAN_KIND_SERVER, "CLIENT": Span.SPAN_KIND_CLIENT}


class Round(NamedTuple):
    rate: float  # spans per second, from the first export to the last written
    cpu_us: float  # CPU of the server and its workers, µs per span
    main_us: float  # CPU of the server's own process (event loop, writer, checkpointer)
    writer_us: float  # CPU of its busiest thread (the writer), µs per span
    grouped: float  # exports a write transaction (the writer's group commit)
    checkpointer_us: float  # CPU of its WAL checkpointer thread, µs per span


def _value(value: object) -> AnyValue:
    if isinstance(value, list):
        return AnyValue(array_value=ArrayValue(values=[_value(v) for v in value]))
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    return AnyValue(string_value=str(value))


def otlp_span(record: SpanRecord, texts: tuple[str, str] | None = None) -> Span:
    """``record`` as an exporter sends it, in Threadline's and the GenAI conventions;
    ``texts``, if given, its input and output instead of its own."""
    attributes: dict[str, object] = {}
    if record.session_id:
        attributes[semconv.SESSION_ID] = record.session_id
    if record.user_id:
        attributes[semconv.USER_ID] = record.user_id
    if record.tags:
        attributes[semconv.TAGS] = list(record.tags)
    for key, value in (record.metadata or {}).items():
        attributes[semconv.METADATA_PREFIX + key] = value
    if record.span_type:
        attributes[semconv.SPAN_TYPE] = record.span_type
    if record.model:
        attributes["gen_ai.request.model"] = record.model
    if record.input_tokens is not None:
        attributes["gen_ai.usage.input_tokens"] = record.input_tokens
    if record.output_tokens is not None:
        attributes["gen_ai.usage.output_tokens"] = record.output_tokens
    if record.cost_usd is not None:
        attributes["gen_ai.usage.cost"] = float(record.cost_usd)
    given, taken = (record.input, record.output), None
    if texts:
        taken = json.dumps({"text": texts[0]}), json.dumps({"text": texts[1]})
    for key, value in zip((semconv.SPAN_INPUT, semconv.SPAN_OUTPUT), taken or given, strict=True):
        if value is not None:
            attributes[key] = value
    return Span(
        trace_id=bytes.fromhex(record.trace_id),
        span_id=bytes.fromhex(record.span_id),
        parent_span_id=bytes.fromhex(record.parent_span_id or ""),
        name=record.name,
        kind=KINDS[record.kind],
        start_time_unix_nano=record.start_ns,
        end_time_unix_nano=record.end_ns,
        attributes=[KeyValue(key=k, value=_value(v)) for k, v in attributes.items()],
        status=Status(
            code=Status.STATUS_CODE_ERROR if record.status == "error" else Status.STATUS_CODE_UNSET
        ),
    )


def bodies(
    shape: str, spans: int, batch: int, end_ns: int, text_bytes: int = 0
) -> list[workload.Batch]:
    """``dashboard.py``'s sessions (10 spans each) of ``shape``, as exports of ``batch``
    spans (a trace may be split between two); with ``text_bytes``, each span's input
    and output are that many bytes of ``workload.py``'s text between them."""
    rng = random.Random(3)

    def texts() -> tuple[str, str] | None:
        if not text_bytes:
            return None
        return workload._text(rng, text_bytes // 2), workload._text(rng, text_bytes // 2)

    def traces() -> Iterator[tuple[str | None, list[Span]]]:
        sessions = max(spans // 10, 1)
        for records in dashboard.batches(sessions, 2, end_ns, live=shape == "live"):
            for _, trace in groupby(records, key=lambda r: r.trace_id):
                each = list(trace)
                yield each[0].session_id, [otlp_span(r, texts()) for r in each]

    return list(workload.in_batches(traces(), batch))


def real_bodies(spans: int, batch: int, end_ns: int) -> list[workload.Batch]:
    """``corpus_otlp.py``'s real chats, at least ``spans`` spans in exports of ``batch``,
    starting an hour before ``end_ns``."""
    return list(corpus_otlp.batches(spans, batch, start_ns=end_ns - 3600 * dashboard.S))


def aggregated(database: Path) -> int:
    """Traces counted by the dashboard's activity aggregates in a stopped server's store
    (none added without the dashboard: its metrics queries, which name the dropped
    indexes, fail). Traces, not rows: a live round onto a base store adds to the rows of
    hours the base already has."""
    with closing(sqlite3.connect(database)) as conn:
        row = conn.execute("SELECT COALESCE(SUM(traces), 0) FROM metric_activity").fetchone()
        # Their log's rows too, where the schema has one (migration 0033): a round may
        # end before its log is folded.
        logged = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'metric_activity_log'"
        ).fetchone()
        if logged:
            (more,) = conn.execute("SELECT COALESCE(SUM(traces), 0) FROM metric_activity_log")
            return int(row[0]) + int(more[0])
        return int(row[0])


def filled_base(directory: Path, sessions: int, end_ns: int) -> int:
    """A store of ``sessions`` backfilled sessions (``dashboard.fill``, with the
    dashboard) in ``directory``, closed; the traces its activity aggregates count."""
    store, _, took = dashboard.fill(directory / "threadline.db", sessions, end_ns)
    store.close()
    rows = aggregated(directory / "threadline.db")
    print(
        f"base store: {sessions:,} sessions ({10 * sessions:,} spans) in {took:.0f} s", flush=True
    )
    return rows


def schema_key() -> str:
    """The SQLite schema this tree makes: its highest migration and a digest of all of
    its migrations' names and texts."""
    scripts = migrations.scripts("threadline.server.store.sqlite")
    digest = hashlib.sha256()
    for version, text in scripts:
        digest.update(f"{version}\0{text}\0".encode())
    return f"s{scripts[-1][0]:04d}-{digest.hexdigest()[:12]}"


def kept_base(keep: Path, sessions: int, end_ns: int) -> tuple[Path, int, int]:
    """The base store of ``sessions`` sessions kept in ``keep`` for this tree's schema,
    filled there first if there is none: (its directory, the traces its activity
    aggregates count, the end of its 30 days)."""
    directory = keep / f"base-{sessions}-{schema_key()}"
    about = directory.with_suffix(".json")
    if about.exists():
        kept = json.loads(about.read_text())
        print(f"base store: kept, {directory} (filled {kept['filled']})", flush=True)
        return directory, kept["traces"], kept["end_ns"]
    shutil.rmtree(directory, ignore_errors=True)  # a fill stopped before its .json
    directory.mkdir(parents=True)
    traces = filled_base(directory, sessions, end_ns)
    filled = datetime.now(UTC).isoformat(timespec="seconds")
    about.write_text(json.dumps({"traces": traces, "end_ns": end_ns, "filled": filled}))
    return directory, traces, end_ns


def one_round(
    with_dashboard: bool,
    exports: list[workload.Batch],
    senders: int,
    workers: int,
    base: tuple[Path, int] | None = None,
    flush: bool = True,
) -> Round:
    """One fresh server's ingest of ``exports``, into a copy of ``base`` (its
    directory and the traces its activity aggregates count) if given."""
    spans = sum(body.spans for body in exports)
    hooks = ["thread_names"] + ([] if with_dashboard else ["without_dashboard"])
    with (
        server_environment(hooks),
        tempfile.TemporaryDirectory(prefix="threadline-dashboard-server-") as tmp,
    ):
        if base:
            copied_base(base[0] / "threadline.db", Path(tmp) / "threadline.db", flush)
        process, base_url, key = start_server(Path(tmp), workers)
        try:
            ingest = measured_ingest(process, base_url, key, exports, senders)
        finally:
            process.terminate()
            process.wait()
        rows = aggregated(Path(tmp) / "threadline.db") - (base[1] if base else 0)
        if bool(rows) != with_dashboard:
            raise SystemExit(f"with the dashboard: {with_dashboard}, but {rows} traces aggregated")
    grouped = ingest.health["exports_written"] / max(ingest.health["write_transactions"], 1)
    return Round(
        spans / ingest.elapsed,
        ingest.cpu / spans * 1e6,
        ingest.main / spans * 1e6,
        ingest.writer / spans * 1e6,
        grouped,
        ingest.checkpointer / spans * 1e6,
    )


def copied_base(source: Path, target: Path, flush: bool = True) -> None:
    """A copy of a base store's file, on disk before the server opens it (unless not
    ``flush``): a copy the kernel is still writing back (hundreds of MB at 1M spans) is
    written by the first checkpoint's fsync of the database file, in the checkpointer's
    thread, during the round; the arm without the dashboard checkpointed its schema's
    change before its clock started, and so wrote its copy back then."""
    shutil.copy(source, target)
    if flush:
        with open(target, "rb+") as copied:
            os.fsync(copied.fileno())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", choices=("backfill", "live"), default="backfill")
    parser.add_argument(
        "--corpus",
        choices=("dashboard", "real"),
        default="dashboard",
        help="dashboard.py's sessions (of --shape) or corpus_otlp.py's real chats",
    )
    parser.add_argument("--round-spans", type=int, default=20_000)
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--batch", type=int, default=512, help="spans per export")
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--text-bytes",
        type=int,
        default=0,
        help="each span's input and output together (0: dashboard.py's few bytes)",
    )
    parser.add_argument(
        "--base-sessions",
        type=int,
        default=0,
        help="start each round on a copy of a store holding this many backfilled sessions",
    )
    parser.add_argument(
        "--keep-base",
        type=Path,
        metavar="DIR",
        help="keep the --base-sessions store in DIR and reuse it in later runs (one per"
        " session count and per digest of this tree's SQLite migrations, so an arm never"
        " opens another schema's base); its rounds then end where the kept base's 30 days end",
    )
    parser.add_argument(
        "--unflushed",
        action="store_true",
        help="do not flush a base's copy to disk before its server starts (as until round 16)",
    )
    args = parser.parse_args()
    end_ns = int(datetime.now(UTC).timestamp()) * dashboard.S
    base: tuple[Path, int] | None = None
    if args.base_sessions and args.keep_base:
        directory, traces, end_ns = kept_base(args.keep_base, args.base_sessions, end_ns)
        base = directory, traces
    if args.corpus == "real":
        exports = real_bodies(args.round_spans, args.batch, end_ns)
    else:
        exports = bodies(args.shape, args.round_spans, args.batch, end_ns, args.text_bytes)
    spans = sum(b.spans for b in exports)
    shape = "real chats" if args.corpus == "real" else args.shape
    print(
        f"{shape}: {spans:,} spans in {len(exports)} exports,"
        f" {sum(len(b.body) for b in exports) / spans:,.0f} bytes a span;"
        f" load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    base_dir = tempfile.TemporaryDirectory(prefix="threadline-dashboard-base-")
    if args.base_sessions and base is None:
        base = Path(base_dir.name), filled_base(Path(base_dir.name), args.base_sessions, end_ns)
    shares: dict[str, list[float]] = {"rate": [], "cpu": [], "main": [], "writer": []}
    # The main process's extra CPU a span with the dashboard, by thread, a pair each.
    extra: dict[str, list[float]] = {"main": [], "writer": [], "checkpointer": [], "rest": []}
    for pair in range(args.pairs):
        order = (True, False) if pair % 2 == 0 else (False, True)
        rounds = {}
        for with_dashboard in order:
            rounds[with_dashboard] = r = one_round(
                with_dashboard, exports, args.senders, args.workers, base, not args.unflushed
            )
            print(
                f"  {'with' if with_dashboard else 'without':7s} {r.rate:7.0f} spans/s;"
                f" CPU {r.cpu_us:6.1f} µs/span, main process {r.main_us:6.1f},"
                f" writer thread {r.writer_us:6.1f}, checkpointer {r.checkpointer_us:5.1f};"
                f" {r.grouped:.2f} exports a transaction",
                flush=True,
            )
        with_, without = rounds[True], rounds[False]
        shares["rate"].append(with_.rate / without.rate)
        # A share of CPU: how many spans a CPU second ingests with the dashboard, against
        # without (the same as the rate's share where the CPU is the bound).
        shares["cpu"].append(without.cpu_us / with_.cpu_us)
        shares["main"].append(without.main_us / with_.main_us)
        shares["writer"].append(without.writer_us / with_.writer_us)
        extra["main"].append(with_.main_us - without.main_us)
        extra["writer"].append(with_.writer_us - without.writer_us)
        extra["checkpointer"].append(with_.checkpointer_us - without.checkpointer_us)
        extra["rest"].append(extra["main"][-1] - extra["writer"][-1] - extra["checkpointer"][-1])
        print(
            f"pair {pair + 1}: rate {shares['rate'][-1]:.1%}, per CPU second"
            f" {shares['cpu'][-1]:.1%}, per main process CPU second {shares['main'][-1]:.1%},"
            f" per writer CPU second {shares['writer'][-1]:.1%}; main process extra"
            f" {extra['main'][-1]:.1f} µs a span (writer {extra['writer'][-1]:.1f},"
            f" checkpointer {extra['checkpointer'][-1]:.1f}, rest {extra['rest'][-1]:.1f});"
            f" load average {os.getloadavg()[0]:.1f}",
            flush=True,
        )
    base_dir.cleanup()
    print(
        f"medians of {args.pairs} pairs, {shape}: "
        + ", ".join(f"{key} {statistics.median(values):.1%}" for key, values in shares.items())
        + "; the main process's extra µs a span: "
        + ", ".join(f"{key} {statistics.median(values):.1f}" for key, values in extra.items())
    )


if __name__ == "__main__":
    main()
