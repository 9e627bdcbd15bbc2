"""The lag harness's replica (``delayed_inserts.py``) applies every insert it
acknowledged, even one the engine never answers: it tries that one again."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from tests.store import delayed_inserts
from tests.store.chdb_http import ChdbEngine, database_name, shared_server
from tests.store.delayed_inserts import DelayedInserts

pytestmark = pytest.mark.clickhouse


class _FirstInsertHangs:
    """The shared chDB engine, but the first insert into ``hanging`` never returns (as
    one insert on the pooled chDB connections now and then does)."""

    def __init__(self, engine: ChdbEngine):
        self._engine = engine
        self.released = threading.Event()
        self._hung = False

    def execute(self, *args: Any, **kwargs: Any) -> bytes:
        return self._engine.execute(*args, **kwargs)

    def insert(self, target: str, *args: Any, **kwargs: Any) -> None:
        if "hanging" in target and not self._hung:
            self._hung = True
            self.released.wait()  # blocks until the test ends, like the stuck call
            return
        self._engine.insert(target, *args, **kwargs)


def test_an_insert_the_engine_never_answers_is_applied_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(delayed_inserts, "STUCK_S", 1.0)
    engine = shared_server().engine
    database = database_name(tmp_path.name)
    engine.execute(f"CREATE DATABASE IF NOT EXISTS {database}", None, "Null")
    engine.execute("CREATE TABLE hanging (n UInt8) ENGINE = MergeTree ORDER BY n", database, "Null")
    hangs = _FirstInsertHangs(engine)
    replica = DelayedInserts(hangs, seed=1, delay_s=(0.0, 0.1))  # type: ignore[arg-type]
    try:
        rows = engine.execute("SELECT 7 AS n", database, "Native")
        replica.insert("hanging", "Native", rows, database)
        replica.settle(timeout_s=30)
        assert replica.stuck == 1 and replica.applied == 1
        assert engine.execute("SELECT sum(n) FROM hanging", database, "TSV") == b"7\n"
    finally:
        hangs.released.set()
        replica.close()
