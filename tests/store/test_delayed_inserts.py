"""The lag harness's replica (``delayed_inserts.py``): ``settle`` returns once every
insert acknowledged before it is visible, while a writer keeps inserting (as the
servers' dashboard refresher does every second); it waited for an empty queue before,
which such a writer never leaves."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.store.chdb_http import database_name, shared_server
from tests.store.delayed_inserts import DelayedInserts

pytestmark = pytest.mark.clickhouse


def test_settle_waits_for_what_was_acknowledged_before_it_not_for_an_empty_queue(
    tmp_path: Path,
):
    engine = shared_server().engine
    database = database_name(tmp_path.name)
    engine.execute(f"CREATE DATABASE IF NOT EXISTS {database}", None, "Null")
    engine.execute("CREATE TABLE t (n UInt32) ENGINE = MergeTree ORDER BY n", database, "Null")
    replica = DelayedInserts(engine, seed=1, delay_s=(0.3, 0.6))
    stop = threading.Event()

    def keep_writing() -> None:  # one insert every 50 ms, each visible 0.3-0.6 s later
        while not stop.wait(0.05):
            replica.insert(
                "t", "Native", engine.execute("SELECT 0 AS n", database, "Native"), database
            )

    writer = threading.Thread(target=keep_writing)
    try:
        for n in range(1, 6):
            rows = engine.execute(f"SELECT {n}::UInt32 AS n", database, "Native")
            replica.insert("t", "Native", rows, database)
        writer.start()
        replica.settle(timeout_s=20)
        assert replica.pending > 0  # the writer's latest inserts are not visible yet
        assert engine.execute("SELECT sum(n) FROM t", database, "TSV") == b"15\n"
    finally:
        stop.set()
        if writer.is_alive():
            writer.join()
        replica.close()
