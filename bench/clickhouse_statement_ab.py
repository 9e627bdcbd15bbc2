"""Two store codes' page and detail statements, replayed alternately on one ClickHouse.

    # once per arm, with that arm's code on the path (a store filled by clickhouse_scale.py):
    PYTHONPATH=<before>/src python bench/clickhouse_statement_ab.py record \\
        --url clickhouse://default:@127.0.0.1:8124 --database scale_1000000 --out a.json
    PYTHONPATH=<after>/src python bench/clickhouse_statement_ab.py record ... --out b.json
    # then, in one process, the two alternately (A B B A, B A A B, ...):
    python bench/clickhouse_statement_ab.py replay --url ... --database scale_1000000 \\
        --arms a.json b.json --engine-pid <pid> --rounds 10 [--cold]

``record`` runs the Sessions list (first page of 50, last 7 days and all time), a
session's detail and a trace's detail through the store's own methods and keeps every
statement the store sends for each (text and parameters; the score summaries beside a
page are not kept: no change to them is measured here). ``replay`` sends each arm's
statements for each call, arms alternating within every round, and prints per call the
mean engine CPU (the endpoint process's user + system time from /proc: a machine shared
with others moves it far less than the wall time, and the mean of many calls sees
through its 10 ms ticks) and the wall p50. ``--cold`` turns ClickHouse's query
condition cache off, so every call costs what a page's first read does. One process,
one sitting: the arms see the same load, which a run of each arm's
``clickhouse_scale.py`` in turn does not.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from clickhouse_scale import engine_cpu_ms

Recorded = dict[str, list[tuple[str, dict[str, Any]]]]


def record(url: str, database: str) -> Recorded:
    """Each call's statements (text, parameters), as the store on the path sends them."""
    from threadline.server.model import SessionQuery
    from threadline.server.store import open_store

    store: Any = open_store(f"{url.rstrip('/')}/{database}")
    project = next(p.id for p in store.list_projects() if p.name == "scale")
    now = datetime.now(UTC)
    page = store.list_sessions(project, SessionQuery(start=now - timedelta(days=1), limit=50))
    session_id = page.items[0].session_id
    trace_id = store.get_session(project, session_id).traces[0].trace_id
    calls: dict[str, Callable[[], Any]] = {
        "sessions list, last 7 days": lambda: store.list_sessions(
            project, SessionQuery(start=now - timedelta(days=7), limit=50)
        ),
        "sessions list, all time": lambda: store.list_sessions(project, SessionQuery(limit=50)),
        "session detail": lambda: store.get_session(project, session_id),
        "trace detail": lambda: store.get_trace(project, trace_id),
    }
    rows = store._rows
    recorded: Recorded = {}
    for name, call in calls.items():
        sent: list[tuple[str, dict[str, Any]]] = []

        def recording(sql: str, params: dict[str, Any] | None = None, sent: Any = sent) -> Any:
            sent.append((sql, dict(params or {})))
            return rows(sql, params)

        store._rows = recording
        call()
        store._rows = rows
        recorded[name] = sent
    store.close()
    return recorded


def replay(args: argparse.Namespace) -> None:
    from urllib.parse import urlsplit

    import clickhouse_connect

    parts = urlsplit(args.url)
    settings = {"use_query_condition_cache": 0} if args.cold else {}
    client = clickhouse_connect.get_client(
        host=parts.hostname,
        port=parts.port,
        username=parts.username or "default",
        password=parts.password or "",
        database=args.database,
        settings=settings,
    )
    arms: list[Recorded] = []
    for path in args.arms:
        with open(path) as file:
            arms.append(json.load(file))
    names = list(arms[0])
    for arm in arms:  # warm: every statement once
        for name in names:
            for sql, params in arm[name]:
                client.query(sql, parameters=params)
    cpu: dict[tuple[int, str], list[float]] = {(a, n): [] for a in range(2) for n in names}
    wall: dict[tuple[int, str], list[float]] = {(a, n): [] for a in range(2) for n in names}
    for round_ in range(args.rounds):
        for a in (0, 1, 1, 0) if round_ % 2 == 0 else (1, 0, 0, 1):
            for name in names:
                cpu_before, began = engine_cpu_ms(args.engine_pid), time.perf_counter()
                for sql, params in arms[a][name]:
                    client.query(sql, parameters=params)
                wall[(a, name)].append((time.perf_counter() - began) * 1000)
                cpu[(a, name)].append(engine_cpu_ms(args.engine_pid) - cpu_before)
    with open("/proc/loadavg") as loadavg:
        load = " ".join(loadavg.read().split()[:3])
    mode = "cold (condition cache off)" if args.cold else "repeated"
    print(f"{args.database}, {mode}, {args.rounds * 2} calls an arm, load after {load}")
    heads = ("A CPU mean", "B CPU mean", "A wall p50", "B wall p50")
    print(f"  {'call':<28}" + "".join(f" {head:>11}" for head in heads))
    for name in names:
        figures = [statistics.fmean(cpu[(a, name)]) for a in range(2)]
        figures += [statistics.median(wall[(a, name)]) for a in range(2)]
        print(f"  {name:<28}" + "".join(f" {f:11.1f}" for f in figures))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record", help="keep the statements of the store code on the path")
    rec.add_argument("--url", required=True, help="clickhouse://user:pw@host:port (no db)")
    rec.add_argument("--database", required=True)
    rec.add_argument("--out", required=True)
    rep = sub.add_parser("replay", help="send two recordings' statements alternately")
    rep.add_argument("--url", required=True, help="clickhouse://user:pw@host:port (no db)")
    rep.add_argument("--database", required=True)
    rep.add_argument("--arms", nargs=2, required=True, metavar=("A", "B"))
    rep.add_argument("--engine-pid", type=int, required=True)
    rep.add_argument("--rounds", type=int, default=10, help="each round: 2 calls an arm")
    rep.add_argument("--cold", action="store_true", help="the query condition cache off")
    args = parser.parse_args()
    if args.command == "record":
        with open(args.out, "w") as file:
            json.dump(record(args.url, args.database), file, default=str)
    else:
        replay(args)


if __name__ == "__main__":
    main()
