"""The first pages of the Sessions list sorted by a score, on a store of many sessions.

    python bench/score_sort.py --store sqlite --dir /work/bench-data/x
    python tests/store/chdb_http.py --port 8125 --path /work/bench-data/x/ch &
    python bench/score_sort.py --store clickhouse --url clickhouse://default:@127.0.0.1:8125 \
        [--server-pid PID]   # also the chDB server's CPU ms per read

Fills a fresh store through ``Store.write_spans`` and ``write_scores`` with
``--sessions`` sessions of one trace each over the last six days (every tenth failed),
60 % of them with a numeric ``stars`` (1 to 5: many ties) and 30 % with a categorical
``topic`` (five labels), then times each list query ``--repeat`` times (p50 and max, in
ms): the list as it opens, by cost (another sort, for comparison), by ``stars`` both
ways, by ``topic``'s label, by ``stars`` with a filter, the page after the scored ones,
the third page, the same within the last day's window and within the last hour's (a
window that holds few of the scored sessions), the Traces list by ``stars`` (every
trace past the scored ones: the scores are the sessions'), and the score type read the
Users tab and the dashboard make (``list_scores(name=..., limit=1)``) for a name written
a moment ago and for one written only before every other score. It then prints how each
backend reads the sorted page: SQLite's ``EXPLAIN QUERY PLAN`` of the two statements,
ClickHouse's ``EXPLAIN indexes = 1`` of the scored part's first statement.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, cast

from threadline.server.model import (
    NumericFilter,
    ScoreFilter,
    ScoreQuery,
    ScoreRecord,
    ScoreSort,
    SessionQuery,
    SpanRecord,
    TraceQuery,
)
from threadline.server.store import Store, cursors, open_store, score_sorts, sorts
from threadline.server.store.clickhouse import score_sorted as clickhouse_sorted
from threadline.server.store.clickhouse.queries import Filters
from threadline.server.store.sqlite import score_sorted as sqlite_sorted
from threadline.server.store.sqlite.driver import sqlite3

NS = 1_000_000_000
DAY_NS = 24 * 3600 * NS
LABELS = ("account", "billing", "delivery", "refund", "other")
# Each session's user is one of USERS; one session in TAGGED has the tag ``beta``: the
# filters the filtered reads use.
USERS = 50
TAGGED = 20
# A name scored only before every other score (a week ago): the type read of the Users
# tab and the dashboard walks furthest back for it.
OLD_NAME = "legacy"


def fill(store: Store, sessions: int, older: int, seed: int) -> int:
    rng = random.Random(seed)
    project = store.create_project("score-sort").id
    now = time.time_ns()
    batch: list[SpanRecord] = []
    scores: list[ScoreRecord] = []
    started = time.perf_counter()
    for i in range(sessions + older):
        # The first ``sessions`` over the last six days; the ``older`` ones (scored
        # data outside every window the bench reads) over the 60 days before.
        start = (
            now - rng.randrange(6 * DAY_NS)
            if i < sessions
            else now - 6 * DAY_NS - rng.randrange(60 * DAY_NS)
        )
        batch.append(
            SpanRecord(
                trace_id=f"{i + 1:032x}",
                span_id=f"{i + 1:016x}",
                parent_span_id=None,
                name="turn",
                kind="INTERNAL",
                start_ns=start,
                end_ns=start + rng.randrange(1, 5000) * 1_000_000,
                status="error" if i % 10 == 0 else "ok",
                session_id=f"session-{i:07d}",
                cost_usd=rng.random() / 100,
                user_id=f"user-{i % USERS}",
                tags=["beta"] if i % TAGGED == 0 else [],
            )
        )
        draw = rng.random()
        if draw < 0.6:
            scores.append(_score(rng, "stars", f"session-{i:07d}", float(rng.randint(1, 5))))
        if draw > 0.7:
            scores.append(_score(rng, "topic", f"session-{i:07d}", rng.choice(LABELS)))
        if len(batch) == 2000:
            store.write_spans(project, batch)
            batch = []
    if batch:
        store.write_spans(project, batch)
    scores[:0] = [
        _score(rng, OLD_NAME, f"session-{i:07d}", 1.0, created_ns=now - 7 * DAY_NS)
        for i in range(3)
    ]
    for at in range(0, len(scores), 2000):
        store.write_scores(project, scores[at : at + 2000])
    print(
        f"filled {sessions + older:,} sessions and {len(scores):,} scores"
        f" in {time.perf_counter() - started:.0f} s"
    )
    return project


def _score(
    rng: random.Random,
    name: str,
    session_id: str,
    value: float | str,
    created_ns: int | None = None,
) -> ScoreRecord:
    return ScoreRecord(
        id=uuid.UUID(int=rng.getrandbits(128)).hex,
        name=name,
        data_type="categorical" if isinstance(value, str) else "numeric",
        value=None if isinstance(value, str) else value,
        label=value if isinstance(value, str) else None,
        session_id=session_id,
        trace_id=None,
        span_id=None,
        source="api",
        author=None,
        comment=None,
        created_ns=time.time_ns() if created_ns is None else created_ns,
    )


# --server-pid: the database server's CPU time per read is printed too (its user and
# system time, from /proc): on a loaded machine it drifts far less than the wall time.
SERVER_PID: int | None = None
CPU_MS: list[float] = []


def _server_cpu_ms() -> float:
    fields = Path(f"/proc/{SERVER_PID}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def timed(read: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    times, cpu, result = [], [], None
    for _ in range(repeat):
        before = _server_cpu_ms() if SERVER_PID else 0.0
        started = time.perf_counter()
        result = read()
        times.append((time.perf_counter() - started) * 1000)
        cpu.append(_server_cpu_ms() - before if SERVER_PID else 0.0)
    CPU_MS[:] = [statistics.median(cpu)]
    return statistics.median(times), max(times), result


def _cpu() -> str:
    return f" {CPU_MS[0]:8.0f}" if SERVER_PID else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", choices=("sqlite", "clickhouse"), required=True)
    parser.add_argument("--dir", type=Path, help="SQLite: the data folder")
    parser.add_argument("--url", help="ClickHouse: clickhouse://user:pw@host:port (no db)")
    parser.add_argument("--database", default="score_sort")
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument(
        "--older",
        type=int,
        default=0,
        help="more sessions, scored alike, over the 60 days before the six (outside the windows)",
    )
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--server-pid", type=int, help="ClickHouse: the server's pid")
    parser.add_argument("--only", help="time only the reads whose name holds this text")
    args = parser.parse_args()
    global SERVER_PID
    SERVER_PID = args.server_pid
    if args.store == "sqlite":
        assert args.dir, "--dir"
        args.dir.mkdir(parents=True, exist_ok=True)
        store = open_store(f"sqlite://{args.dir / 'threadline.db'}")
    else:
        assert args.url, "--url"
        store = open_store(f"{args.url.rstrip('/')}/{args.database}")
    project = next((p.id for p in store.list_projects() if p.name == "score-sort"), None)
    if project is None:
        project = fill(store, args.sessions, args.older, args.seed)

    stars = ScoreSort(name="stars")
    # The first page after the scored sessions.
    unscored = _cursor(stars, 1, 2**62, "")
    day_ago = datetime.now(UTC) - timedelta(days=1)
    unscored_error = _cursor(stars, 1, 2**62, "", status="error")
    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    queries: list[tuple[str, SessionQuery]] = [
        ("last activity (as it opens)", SessionQuery()),
        ("sort=cost", SessionQuery(sort="cost")),
        ("sort=score:stars", SessionQuery(score_sort=stars)),
        (
            "sort=score:stars&order=asc",
            SessionQuery(score_sort=ScoreSort(name="stars", descending=False)),
        ),
        ("sort=score_label:topic", SessionQuery(score_sort=ScoreSort(name="topic", by="label"))),
        ("sort=score:stars&status=error", SessionQuery(score_sort=stars, status="error")),
        ("sort=score:stars, past the scored", SessionQuery(score_sort=stars, cursor=unscored)),
        ("sort=score:stars, last day", SessionQuery(score_sort=stars, start=day_ago)),
        (
            "sort=score:stars, last day, past scored",
            SessionQuery(score_sort=stars, start=day_ago, cursor=unscored),
        ),
        ("sort=score:stars, last hour", SessionQuery(score_sort=stars, start=hour_ago)),
        (
            "sort=score_label:topic, last hour",
            SessionQuery(score_sort=ScoreSort(name="topic", by="label"), start=hour_ago),
        ),
        # Filtered score sorts in a window: what they read should follow the window.
        (
            "filtered: stars, last day, user",
            SessionQuery(score_sort=stars, start=day_ago, user_id="user-7"),
        ),
        (
            "filtered: stars, last day, tag",
            SessionQuery(score_sort=stars, start=day_ago, tag="beta"),
        ),
        (
            "filtered: stars, last day, cost > 0.009",
            SessionQuery(
                score_sort=stars,
                start=day_ago,
                numbers=[NumericFilter(field="cost", op=">", value=0.009)],
            ),
        ),
        (
            "filtered: stars, last day, error",
            SessionQuery(score_sort=stars, start=day_ago, status="error"),
        ),
        (
            "filtered: stars, last day, error, past scored",
            SessionQuery(score_sort=stars, start=day_ago, status="error", cursor=unscored_error),
        ),
        (
            "filtered: topic, last hour, user",
            SessionQuery(
                score_sort=ScoreSort(name="topic", by="label"), start=hour_ago, user_id="user-7"
            ),
        ),
        # Score filters in a window (no score sort): what they read should follow it.
        (
            "score filter: stars >= 4, last day",
            SessionQuery(start=day_ago, scores=[ScoreFilter(name="stars", op=">=", value=4)]),
        ),
        (
            "score filter: stars missing, last day",
            SessionQuery(start=day_ago, scores=[ScoreFilter(name="stars", missing=True)]),
        ),
        (
            "score filter: topic = refund, last day",
            SessionQuery(start=day_ago, scores=[ScoreFilter(name="topic", op="=", value="refund")]),
        ),
        (
            "score filter: stars >= 4, last 3 days",
            SessionQuery(
                start=day_ago - timedelta(days=2),
                scores=[ScoreFilter(name="stars", op=">=", value=4)],
            ),
        ),
    ]
    cpu_title = f" {'cpu ms':>8}" if SERVER_PID else ""
    print(f"{'query':40s} {'p50 ms':>8} {'max ms':>8}{cpu_title}  first rows")

    def chosen(name: str) -> bool:
        return args.only is None or args.only in name

    for name, query in queries:
        if not chosen(name):
            continue
        p50, worst, page = timed(partial(store.list_sessions, project, query), args.repeat)
        named = query.score_sort.name if query.score_sort else ""
        first = ", ".join(
            f"{s.session_id[-7:]}:{_shown(s.scores.get(named))}" for s in page.items[:3]
        )
        print(f"{name:40s} {p50:8.1f} {worst:8.1f}{_cpu()}  {first}")
    if chosen("traces, sort=score:stars"):
        # The scores are the sessions': every trace is past the scored ones.
        p50, worst, page = timed(
            lambda: store.list_traces(project, TraceQuery(score_sort=stars)), args.repeat
        )
        first = ", ".join(t.trace_id[-7:] for t in page.items[:3])
        label = "traces, sort=score:stars (none scored)"
        print(f"{label:40s} {p50:8.1f} {worst:8.1f}{_cpu()}  {first}")
    if chosen("sort=score:stars, third page"):
        # The third page, through two cursors.
        cursor = None
        for _ in range(2):
            cursor = store.list_sessions(
                project, SessionQuery(score_sort=stars, cursor=cursor)
            ).next_cursor
        p50, worst, _ = timed(
            lambda: store.list_sessions(project, SessionQuery(score_sort=stars, cursor=cursor)),
            args.repeat,
        )
        print(f"{'sort=score:stars, third page':40s} {p50:8.1f} {worst:8.1f}{_cpu()}")
    for name in ("stars", OLD_NAME):
        if not chosen("score type read, " + name):
            continue
        p50, worst, found = timed(
            partial(store.list_scores, project, ScoreQuery(name=name, limit=1)), args.repeat
        )
        shown = found.items[0].data_type if found.items else "-"
        print(f"{'score type read, ' + name:40s} {p50:8.1f} {worst:8.1f}{_cpu()}  {shown}")
    if args.only is None:
        plans(store, project, stars)
    store.close()


def _cursor(sort: ScoreSort, *key: Any, **filters: Any) -> str:
    """A cursor of the Sessions list sorted by ``sort`` with ``filters``, at ``key``."""
    where = sorts.filtered_by(SessionQuery(score_sort=sort, **filters))
    return cursors.encode(*key, made_by=score_sorts.made_by(sort, "session", where=where))


def _shown(summary: Any) -> str:
    if summary is None:
        return "-"
    return f"{summary.average:g}" if summary.average is not None else str(summary.label)


def plans(store: Store, project: int, sort: ScoreSort) -> None:
    """How the backend reads the sorted first page (its statements, recorded)."""
    recorded: list[tuple[str, Any]] = []
    if hasattr(store, "_rows"):
        original = clickhouse_sorted.pick

        def recording_pick(
            rows: clickhouse_sorted.Rows,
            f: Filters,
            source: str,
            source_of: Callable[[str], str],
            kind: str,
            id_column: str,
            time_column: str,
            sort: ScoreSort,
            limit: int,
            cursor: str | None,
            where: str,
            newest: clickhouse_sorted.Newest | None = None,
            kept_among: Callable[[str], str] | None = None,
            windowed: bool = False,
        ) -> list[score_sorts.Picked[None]]:
            def recording_rows(sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
                recorded.append((sql, dict(params)))
                return rows(sql, params)

            return original(
                recording_rows,
                f,
                source,
                source_of,
                kind,
                id_column,
                time_column,
                sort,
                limit,
                cursor,
                where,
                newest,
                kept_among,
                windowed,
            )

        clickhouse_sorted.pick = recording_pick
        store.list_sessions(project, SessionQuery(score_sort=sort))
        clickhouse_sorted.pick = original
        sql, params = recorded[0]
        print("\nClickHouse, the scored part: EXPLAIN indexes = 1")
        for (line,) in store._rows("EXPLAIN indexes = 1 " + sql, params):
            if line.strip().startswith(
                (
                    "ReadFromMergeTree",
                    "Keys:",
                    "Condition:",
                    "Parts:",
                    "Granules:",
                    "PrimaryKey",
                    "Name:",
                )
            ):
                print("  " + line)
        return
    original_page = sqlite_sorted.page

    class Recording:
        def __init__(self, conn: Any) -> None:
            self.conn = conn

        def execute(self, sql: str, params: Any = ()) -> Any:
            recorded.append((sql, list(params)))
            return self.conn.execute(sql, params)

    def recording_page(
        conn: sqlite3.Connection,
        listed: sqlite_sorted.Listed,
        project_id: int,
        sort: ScoreSort,
        where: list[str],
        args: list[Any],
        query: SessionQuery | TraceQuery,
    ) -> tuple[list[Any], str | None]:
        # Recording has the one method page calls on a connection.
        recording = cast(sqlite3.Connection, Recording(conn))
        result = original_page(recording, listed, project_id, sort, where, args, query)
        for sql, params in recorded:
            print("\nSQLite: EXPLAIN QUERY PLAN")
            for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall():
                print("  " + str(row[-1]))
        recorded.clear()
        return result

    sqlite_sorted.page = recording_page
    # A page that runs out of scored sessions reads both parts.
    store.list_sessions(project, SessionQuery(score_sort=sort, status="error"))
    # After the lowest scored: the rest follows at once.
    last = _cursor(sort, 0, 1.0, "")
    store.list_sessions(project, SessionQuery(score_sort=sort, cursor=last))
    sqlite_sorted.page = original_page


if __name__ == "__main__":
    main()
