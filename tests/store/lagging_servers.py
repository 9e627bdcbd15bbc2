"""Threadline server processes on one chDB engine, each through its own lagging replica
(``delayed_inserts.py``): the set-up the ClickHouse lag tests share."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import ServerProcess, new_project_key, start_server, stop_server
from tests.store.chdb_http import ChdbHttpServer, database_name, shared_server
from tests.store.delayed_inserts import DelayedInserts


@dataclass
class LaggingServers:
    url: str  # the database itself, read without lag
    key: str  # a key of the one project, "lagging"
    servers: list[ServerProcess]
    replicas: list[DelayedInserts]  # servers[i] writes and reads through replicas[i]


@contextmanager
def lagging_servers(
    tmp_path: Path, count: int, delay_s: tuple[float, float]
) -> Iterator[LaggingServers]:
    shared = shared_server()
    database = database_name(tmp_path.name)
    key = new_project_key(shared.url(database), "lagging")
    replicas = [DelayedInserts(shared.engine, seed=i, delay_s=delay_s) for i in range(count)]
    doors = [ChdbHttpServer(engine=replica).start() for replica in replicas]  # type: ignore[arg-type]
    servers = [
        start_server(
            tmp_path / f"data-{i}",
            tmp_path / f"server-{i}.log",
            "--store",
            doors[i].url(database),
            "--grpc-port",
            "0",
        )
        for i in range(count)
    ]
    try:
        yield LaggingServers(shared.url(database), key, servers, replicas)
    finally:
        for server in servers:
            stop_server(server)
        for door, replica in zip(doors, replicas, strict=True):
            door.stop()
            replica.close()
