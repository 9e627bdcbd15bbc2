"""The statements of a Sessions list page on ClickHouse, one by one, per window.

    python tests/store/chdb_http.py --port 8124 --path DIR &   # the engine; note its pid
    python bench/clickhouse_session_statements.py \\
        --url clickhouse://default:@127.0.0.1:8124 --database scale_10000000 \\
        --engine-pid PID [--repeat 9]

On a database filled by ``clickhouse_scale.py --fill``, opens the Sessions list (first
page of 50, latest activity first) for the last hour, day, 7 days and all time, and
prints for each window the page's wall p50 and mean engine CPU, then each statement it
ran (the start of its text, the rows it answered, its wall p50), however the store runs
them: every statement goes through the client's ``query``, so reads made beside
another (the score summaries) are listed too. Statements that overlap share the
engine, so their own engine CPU is not told apart; run one read alone
(``clickhouse_page_reads.py``) for that.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from threading import Lock
from typing import Any

from clickhouse_scale import engine_cpu_ms

from threadline.server.model import SessionQuery
from threadline.server.store import open_store

Recorded = list[tuple[str, int, float]]


def _recording(client: Any) -> Recorded:
    """Records (statement's start, rows, wall ms) of every query ``client`` runs."""
    recorded: Recorded = []
    lock = Lock()
    query = client.query

    def recording(sql: str, *args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        result = query(sql, *args, **kwargs)
        wall = (time.perf_counter() - began) * 1000
        with lock:
            recorded.append((" ".join(sql.split())[:72], len(result.result_rows), wall))
        return result

    client.query = recording
    return recorded


def profile(
    label: str, call: Callable[[], Any], recorded: Recorded, repeat: int, pid: int | None
) -> None:
    call()  # warm
    walls, cpus = [], []
    per_statement: dict[tuple[int, str], list[tuple[int, float]]] = {}
    for _ in range(repeat):
        recorded.clear()
        cpu = engine_cpu_ms(pid)
        began = time.perf_counter()
        call()
        walls.append((time.perf_counter() - began) * 1000)
        cpus.append(engine_cpu_ms(pid) - cpu)
        seen: dict[str, int] = {}
        for sql, rows, wall in recorded:  # in the order they ended
            seen[sql] = seen.get(sql, 0) + 1
            per_statement.setdefault((seen[sql], sql), []).append((rows, wall))
    engine = f", engine CPU {statistics.mean(cpus):.1f} ms" if pid else ""
    print(f"{label}: page p50 {statistics.median(walls):.1f} ms{engine}")
    for (_, sql), runs in per_statement.items():
        wall = statistics.median(w for _, w in runs)
        print(f"    {sql:<72} rows {runs[0][0]:>4}  p50 {wall:6.1f} ms  ({len(runs)} runs)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="clickhouse://user:pw@host:port (no db)")
    parser.add_argument("--database", required=True)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--engine-pid", type=int, help="also print the engine's CPU per page")
    args = parser.parse_args()
    store = open_store(f"{args.url.rstrip('/')}/{args.database}")
    project = next(p.id for p in store.list_projects() if p.name == "scale")
    recorded = _recording(store._ch)  # type: ignore[attr-defined]
    now = datetime.now(UTC)
    windows = (
        ("last hour", timedelta(hours=1)),
        ("last day", timedelta(days=1)),
        ("last 7 days", timedelta(days=7)),
        ("all time", None),
    )
    for label, back in windows:
        query = SessionQuery(start=None if back is None else now - back, limit=50)
        profile(
            label,
            partial(store.list_sessions, project, query),
            recorded,
            args.repeat,
            args.engine_pid,
        )
    store.close()


if __name__ == "__main__":
    main()
