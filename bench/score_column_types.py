"""What a list page pays to type a score column whose name nobody configured.

    python bench/score_column_types.py --store sqlite --sessions 20000 [--rounds 200]
    python bench/score_column_types.py --store clickhouse --sessions 20000   # on chDB

A rollup keeps no type, so the Sessions and Traces lists read one score of each such
name (``list_scores`` by the first row's session or trace, ``limit=1``) to show a
boolean as a thumb, once a minute per name and server process (``WrittenTypes``), at most 8 on
a page's first view. This fills a fresh store
with ``--sessions`` sessions, each with a boolean ``resolved``, a numeric
``helpfulness`` and a categorical ``tone`` on the session and on one trace of it, then
prints the wall time of one such read (p50 / p95 over ``--rounds`` reads of random
sessions and traces, by session and by trace in turn).
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scores import api_score  # noqa: E402

from threadline.server.model import ScoreQuery, ScoreRecord  # noqa: E402
from threadline.server.store import Store, open_store  # noqa: E402

T0 = 1_790_000_000_000_000_000


def fill(store: Store, project_id: int, sessions: int) -> None:
    rng = random.Random(7)
    batch: list[ScoreRecord] = []
    for i in range(sessions):
        sid, tid = f"s-{i:07d}", f"{i:032x}"
        for target in ({"session_id": sid}, {"session_id": sid, "trace_id": tid}):
            for name, data_type, value, label in (
                ("resolved", "boolean", float(rng.random() < 0.7), None),
                ("helpfulness", "numeric", float(rng.randint(1, 5)), None),
                ("tone", "categorical", None, rng.choice(["calm", "curt"])),
            ):
                batch.append(
                    api_score(rng, name, data_type, value, label, T0 + i * 1_000_000, **target)
                )
        if len(batch) >= 6_000:
            store.write_scores(project_id, batch)
            batch = []
    if batch:
        store.write_scores(project_id, batch)


def timed(read: Callable[[], object]) -> float:
    started = time.perf_counter()
    read()
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", choices=["sqlite", "clickhouse"], default="sqlite")
    parser.add_argument("--sessions", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="score-column-types-"))
    if args.store == "sqlite":
        url = f"sqlite://{folder / 'bench.db'}"
    else:
        from tests.store.chdb_http import database_name, shared_server

        url = shared_server().url(database_name(folder.name))
    store = open_store(url)
    project_id = store.create_project("bench").id
    started = time.perf_counter()
    fill(store, project_id, args.sessions)
    print(f"{args.store}: {args.sessions * 6:,} scores in {time.perf_counter() - started:.1f} s")
    rng = random.Random(11)
    lookups: list[float] = []
    for r in range(args.rounds):
        i = rng.randrange(args.sessions)
        target = {"session_id": f"s-{i:07d}"} if r % 2 == 0 else {"trace_id": f"{i:032x}"}
        query = ScoreQuery.model_validate({"limit": 1, "name": "resolved", **target})
        found = store.list_scores(project_id, query).items
        assert found and found[0].data_type == "boolean", found
        lookups.append(timed(partial(store.list_scores, project_id, query)))
    lookups.sort()
    p95 = lookups[int(len(lookups) * 0.95)]
    print(f"  one type read: p50 {statistics.median(lookups):.2f} ms, p95 {p95:.2f} ms")
    store.close()
    shutil.rmtree(folder)  # the SQLite file (ClickHouse's database goes with the endpoint)


if __name__ == "__main__":
    main()
