"""The Users list filtered by score, and a session's scores listed, at 100k sessions.

    python bench/users_by_score.py --sessions 100000 [--clickhouse URL] [--keep DIR]
    python bench/users_by_score.py --reuse DIR --only session-scores   # an A/B arm

Fills a store (SQLite in DIR, or a ClickHouse database on URL, e.g. the chDB endpoint of
``tests/store/chdb_http.py``) with ``--sessions`` sessions a minute apart, two turns
each (one span a turn), of 10,000 users (each user a session every 10,000 minutes).
Every session has a ``resolved`` score (false on one in ten) and one in a thousand a
``vip`` label; each session's first turn has a ``helpful`` score written with its trace
id alone, half of them before the spans. Then times, each ``--repeat`` times, median:

- the Users page (50 users) over the last 7 days of the data and over all time:
  unfiltered, ``resolved<1`` (common), ``vip=yes`` (rare) and ``missing_score=resolved``
  (matches nobody: the bounded worst case);
- ``list_scores(session_id=...)`` of a session (its own score and its turn's).

SQLite runs in this thread, so its figures are this thread's CPU time; on ClickHouse
they are wall time, and the engine's CPU when ``--engine-pid`` names its process.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

from threadline.server.model import (
    ScoreQuery,
    ScoreRecord,
    SpanRecord,
    UserQuery,
    ns_to_datetime,
)
from threadline.server.store import Store, open_store

T0 = 1_790_000_000_000_000_000
MINUTE = 60 * 10**9
USERS = 10_000


def _trace(s: int, turn: int) -> str:
    return f"{s * 2 + turn + 1:032x}"


def _spans(sessions: int) -> Iterator[SpanRecord]:
    for s in range(sessions):
        for turn in range(2):
            start = T0 + s * MINUTE + turn * 20 * 10**9
            yield SpanRecord(
                trace_id=_trace(s, turn),
                span_id=f"{s * 2 + turn + 1:016x}",
                parent_span_id=None,
                name="turn",
                kind="INTERNAL",
                start_ns=start,
                end_ns=start + 2 * 10**9,
                status="ok",
                session_id=f"session-{s:07d}",
                user_id=f"user-{s % USERS:05d}",
            )


def _score(
    score_id: str, name: str, data_type: str, value: float | None, label: str | None, **target
) -> ScoreRecord:
    return ScoreRecord(
        id=score_id,
        name=name,
        data_type=data_type,
        value=value,
        label=label,
        session_id=target.get("session_id"),
        trace_id=target.get("trace_id"),
        span_id=None,
        source="api",
        author=None,
        comment=None,
        created_ns=T0 + int(score_id.split("-")[-1]) * MINUTE + 10**9,
    )


def _turn_scores(sessions: range) -> list[ScoreRecord]:
    return [
        _score(f"helpful-{s}", "helpful", "numeric", float(1 + s % 5), None, trace_id=_trace(s, 0))
        for s in sessions
    ]


def _session_scores(sessions: range) -> list[ScoreRecord]:
    out = []
    for s in sessions:
        sid = f"session-{s:07d}"
        resolved = 0.0 if s % 10 == 3 else 1.0
        out.append(_score(f"resolved-{s}", "resolved", "boolean", resolved, None, session_id=sid))
        if s % 1000 == 17:
            out.append(_score(f"vip-{s}", "vip", "categorical", None, "yes", session_id=sid))
    return out


def fill(store: Store, sessions: int) -> int:
    started = time.perf_counter()
    project = store.create_project("users-by-score").id
    half = sessions // 2
    for i in range(0, half, 5000):  # the first half's turn scores before their spans
        store.write_scores(project, _turn_scores(range(i, min(i + 5000, half))))
    batch: list[SpanRecord] = []
    for span in _spans(sessions):
        batch.append(span)
        if len(batch) == 10_000:
            store.write_spans(project, batch)
            batch = []
    if batch:
        store.write_spans(project, batch)
    for i in range(half, sessions, 5000):
        store.write_scores(project, _turn_scores(range(i, min(i + 5000, sessions))))
    for i in range(0, sessions, 5000):
        store.write_scores(project, _session_scores(range(i, min(i + 5000, sessions))))
    print(f"filled {sessions:,} sessions in {time.perf_counter() - started:.0f} s")
    return project


def _engine_cpu(pid: int | None) -> float:
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(run: Callable[[], object], repeat: int, engine_pid: int | None) -> str:
    cpu, wall, engine = [], [], []
    result = None
    for _ in range(repeat):
        e0, t0, w0 = _engine_cpu(engine_pid), time.thread_time(), time.perf_counter()
        result = run()
        cpu.append(time.thread_time() - t0)
        wall.append(time.perf_counter() - w0)
        engine.append(_engine_cpu(engine_pid) - e0)
    text = (
        f"thread CPU {statistics.median(cpu) * 1000:7.1f} ms, "
        f"wall {statistics.median(wall) * 1000:7.1f} ms"
    )
    if engine_pid is not None:
        text += f", engine CPU {statistics.median(engine) * 1000:7.1f} ms"
    return text + f"  [{result}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--clickhouse", help="clickhouse://user:pw@host:port (no database)")
    parser.add_argument("--database", default="users_by_score")
    parser.add_argument(
        "--reuse", help="a SQLite folder (or, with --clickhouse, any) filled before"
    )
    parser.add_argument("--keep", help="fill the SQLite store in this folder and keep it")
    parser.add_argument("--only", choices=["users", "session-scores"])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--engine-pid", type=int)
    args = parser.parse_args()
    folder = Path(args.reuse or args.keep or tempfile.mkdtemp(prefix="users-by-score-"))
    folder.mkdir(parents=True, exist_ok=True)
    url = (
        f"{args.clickhouse.rstrip('/')}/{args.database}"
        if args.clickhouse
        else f"sqlite://{folder / 'threadline.db'}"
    )
    store = open_store(url)
    if args.reuse:
        project = next(p.id for p in store.list_projects() if p.name == "users-by-score")
    else:
        project = fill(store, args.sessions)
    print(f"{url}, load {os.getloadavg()[0]:.1f}")
    last = T0 + (args.sessions - 1) * MINUTE + 60 * 10**9
    windows: list[tuple[str, datetime | None, datetime | None]] = [
        ("7 days", ns_to_datetime(last - 7 * 24 * 60 * MINUTE), ns_to_datetime(last)),
        ("all time", None, None),
    ]
    if args.only != "session-scores":
        from threadline.server.model import ScoreFilter

        filters = {
            "unfiltered": [],
            "resolved<1": [ScoreFilter(name="resolved", op="<", value=1.0)],
            "vip=yes": [ScoreFilter(name="vip", op="=", value="yes")],
            "missing resolved": [ScoreFilter(name="resolved", missing=True)],
        }
        for label, start, end in windows:
            for name, wanted in filters.items():
                query = UserQuery(limit=50, start=start, end=end, scores=wanted)

                def page(query: UserQuery = query) -> str:
                    got = store.list_users(project, query)
                    return f"{len(got.items)} users, more: {got.next_cursor is not None}"

                print(f"users {label:8} {name:17} {timed(page, args.repeat, args.engine_pid)}")
    if args.only != "users":
        for s in (12_345, args.sessions - 7):
            by_session = ScoreQuery(limit=50, session_id=f"session-{s:07d}")

            def listed(by_session: ScoreQuery = by_session) -> str:
                return f"{len(store.list_scores(project, by_session).items)} scores"

            print(f"session scores s={s:<7}        {timed(listed, args.repeat, args.engine_pid)}")
    store.close()


if __name__ == "__main__":
    main()
