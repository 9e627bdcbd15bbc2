"""The chDB endpoint the ClickHouse tests run on behaves as a server does where the
store relies on it: statements from several clients run at once, and each statement
runs with the settings its request names (and only those)."""

from __future__ import annotations

import threading
import time

import pytest

from tests.store.chdb_http import shared_server

pytestmark = pytest.mark.clickhouse


def _client(settings: dict[str, object] | None = None):  # type: ignore[no-untyped-def]
    import clickhouse_connect

    server = shared_server()
    return clickhouse_connect.get_client(
        host="127.0.0.1",
        port=server.port,
        autogenerate_session_id=False,
        settings=settings or {},
    )


def test_a_quick_statement_is_not_held_behind_a_slow_one():
    slow, quick = _client(), _client()
    done: dict[str, float] = {}

    def sleep() -> None:
        slow.query("SELECT sleep(2)")
        done["slow"] = time.monotonic()

    thread = threading.Thread(target=sleep)
    thread.start()
    time.sleep(0.3)  # the slow statement is running
    began = time.monotonic()
    assert quick.query("SELECT 1").result_rows == [(1,)]
    done["quick"] = time.monotonic()
    thread.join()
    assert done["quick"] - began < 1.0
    assert done["quick"] < done["slow"]


def test_each_statement_runs_with_the_settings_it_names():
    named = _client({"max_threads": 3})
    plain = _client()
    assert named.query("SELECT getSetting('max_threads')").result_rows == [(3,)]
    per_query = plain.query("SELECT getSetting('max_threads')", settings={"max_threads": 5})
    assert per_query.result_rows == [(5,)]
    # Settings stay with the statements that named them.
    default = plain.query("SELECT getSetting('max_threads')").result_rows[0][0]
    assert default not in (3, 5)


@pytest.mark.parametrize("compression", ["lz4", "zstd"])
def test_an_insert_sent_as_several_compressed_blocks_is_stored_whole(compression: str):
    # clickhouse-connect cuts a large insert into blocks, each compressed as a frame of
    # its own; an endpoint that decompressed only the first stored ~1,000 of 8,000 rows.
    import clickhouse_connect

    client = clickhouse_connect.get_client(
        host="127.0.0.1",
        port=shared_server().port,
        autogenerate_session_id=False,
        compress=compression,
    )
    table = f"default.several_blocks_{compression}"
    client.command(f"DROP TABLE IF EXISTS {table}")
    client.command(f"CREATE TABLE {table} (i UInt64, s String) ENGINE = MergeTree ORDER BY i")
    text = "words of a long completion " * 150  # ~4 KB a row, as a span with its payloads
    client.insert(table, [[i, text] for i in range(8_000)], column_names=["i", "s"])
    assert client.query(f"SELECT count(), sum(i) FROM {table}").result_rows == [
        (8_000, sum(range(8_000)))
    ]
