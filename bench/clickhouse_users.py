"""Time the Users list on a ClickHouse database filled by ``clickhouse_scale.py``.

The windows start an hour, a day and 7 days before the newest activity of the data
(not now: a database filled hours ago would leave "the last hour" empty), open towards
now as the list opens, and again ending at the newest activity (a window in the past);
the list shows 50 users with their score summaries, as the page does. Run it with each
store code on the path, alternately:

    PYTHONPATH=<code>/src python bench/clickhouse_users.py \
        --url clickhouse://default:@127.0.0.1:18124 --database before_10m --repeat 5
"""

from __future__ import annotations

import argparse
from datetime import timedelta
from functools import partial

from clickhouse_scale import timed

from threadline.server.model import TraceQuery, UserQuery
from threadline.server.store import open_store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="clickhouse://user:pw@host:port (no db)")
    parser.add_argument("--database", required=True)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--all-time", action="store_true", help="time all time too (slow)")
    parser.add_argument("--engine-pid", type=int, help="the chDB endpoint's pid: its CPU too")
    parser.add_argument(
        "--end-before",
        type=float,
        default=0.0,
        help="end the ended windows this many hours before the newest activity (the traces"
        " begun after the end are then read too)",
    )
    args = parser.parse_args()
    store = open_store(f"{args.url.rstrip('/')}/{args.database}")
    project = next(p.id for p in store.list_projects() if p.name == "scale")
    newest = store.list_traces(project, TraceQuery(limit=1)).items[0].end_time
    end = newest - timedelta(hours=args.end_before)
    print(f"{args.database}: windows from before the newest trace end, {newest.isoformat()}")
    # The list as it opens (a window open towards now) and a window ending in the past,
    # over the same data.
    for label, span in (
        ("last hour", timedelta(hours=1)),
        ("last day", timedelta(days=1)),
        ("last 7 days", timedelta(days=7)),
    ):
        query = UserQuery(start=newest - span, limit=50)
        timed(
            f"users list, {label}",
            partial(store.list_users, project, query),
            args.repeat,
            args.engine_pid,
        )
        query = UserQuery(start=end - span, end=end, limit=50)
        timed(
            f"users list, {label}, ended",
            partial(store.list_users, project, query),
            args.repeat,
            args.engine_pid,
        )
    if args.all_time:
        timed(
            "users list, all time",
            lambda: store.list_users(project, UserQuery(limit=50)),
            1,
            args.engine_pid,
        )
    store.close()


if __name__ == "__main__":
    main()
