"""Shared fixtures: the real Threadline server, started as a subprocess.

``threadline_process`` starts one server for the test session on a free loopback port
with a temporary data directory. ``server`` gives each test a project of its own (a new
project and key, made through the real store), so tests never see each other's data;
``server_on_each_store`` gives it on SQLite and again on ClickHouse (chDB).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.otlp import new_span_id, new_trace_id, request, span

if TYPE_CHECKING:  # for annotations: the server's modules are imported where a test uses them
    from opentelemetry.proto.trace.v1.trace_pb2 import Span

    from threadline.server.model import KeyScope

_projects = itertools.count(1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_ports(count: int) -> list[int]:
    """``count`` different free ports: the sockets are held open together while the
    kernel picks, since two ``free_port()`` calls may be given the same port (a port is
    free again once its socket is closed, and CI once got one port for both)."""
    with contextlib.ExitStack() as held:
        socks = [held.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]


@dataclass
class ServerProcess:
    base_url: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    store_url: str  # its --store, by default the SQLite file in data_dir
    # host:port of the OTLP/gRPC receiver, None when started with --grpc-port 0.
    grpc_address: str | None = None

    def new_key(self, project: str, scope: KeyScope = "full") -> str:
        """A key to a new project in this server's store."""
        return new_project_key(self.store_url, project, scope)

    def cli(self, *args: str) -> str:
        """The output of ``threadline *args`` on this server's store, run beside it as an
        operator runs it; fails the test unless the command succeeds."""
        result = subprocess.run(
            [sys.executable, "-m", "threadline.server", *args, "--store", self.store_url],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def new_project_key(store_url: str, project: str, scope: KeyScope = "full") -> str:
    """A new project in the store at ``store_url`` and a key to it, made through the
    real store: keys live in the store, where every server on it reads them."""
    from threadline.server.store import open_store

    store = open_store(store_url)
    try:
        return store.create_key(store.create_project(project).id, scope)
    finally:
        store.close()


def start_server(
    data_dir: Path, log_path: Path, *extra: str, open_files: int | None = None
) -> ServerProcess:
    """A server on free ports: never the default 4317 for gRPC, which many servers started
    at once would share (gRPC binds with SO_REUSEPORT when workers > 1) or fight over.
    Pass ``--grpc-port 0`` in ``extra`` for none; ``open_files`` sets the process's
    open-file limit (soft and hard)."""
    port = free_port()
    grpc_port = int(extra[extra.index("--grpc-port") + 1]) if "--grpc-port" in extra else None
    grpc_flags: tuple[str, ...] = ()
    if grpc_port is None:
        grpc_port = free_port()
        while grpc_port == port:  # see free_ports
            grpc_port = free_port()
        grpc_flags = ("--grpc-port", str(grpc_port))
    log = log_path.open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "threadline.server",
            "serve",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
            "--log-level",
            "warning",
            *grpc_flags,
            *extra,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        preexec_fn=None if open_files is None else lambda: _limit_files(open_files),
    )
    base_url = f"http://127.0.0.1:{port}"
    # Generous: on a loaded 2-core machine a start (imports, workers spawned, migrations)
    # has taken over 30 s, and how fast a server starts is not what these tests check.
    deadline = time.monotonic() + 90
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {log_path.read_text()}")
        try:
            if httpx.get(base_url + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"server did not start: {log_path.read_text()}")
        time.sleep(0.05)
    grpc_address = f"127.0.0.1:{grpc_port}" if grpc_port else None
    store_url = (
        extra[extra.index("--store") + 1]
        if "--store" in extra
        else f"sqlite://{data_dir / 'threadline.db'}"
    )
    return ServerProcess(base_url, data_dir, process, log_path, store_url, grpc_address)


def _limit_files(count: int) -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_NOFILE, (count, count))


def stop_server(server: ServerProcess) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@pytest.fixture(scope="session")
def threadline_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("threadline")
    server = start_server(root / "data", root / "server.log")
    yield server
    stop_server(server)


@dataclass
class ProjectClient:
    """One project's view of the running server: its key, and HTTP helpers."""

    base_url: str
    api_key: str
    process: ServerProcess
    http: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.http = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {self.api_key}"},
            timeout=30,
        )

    def get(self, path: str, **params: Any) -> Any:
        """GET a JSON API route; fails the test unless it answers 200."""
        params = {k: v for k, v in params.items() if v is not None}
        response = self.http.get(path, params=params)
        assert response.status_code == 200, (response.status_code, response.text)
        return response.json()

    def export(
        self, body: bytes, content_type: str = "application/x-protobuf", **headers: str
    ) -> httpx.Response:
        """POST an OTLP/HTTP body to /v1/traces."""
        return self.http.post(
            "/v1/traces", content=body, headers={"Content-Type": content_type, **headers}
        )

    def send(self, spans: Iterable[Span]) -> None:
        """Export ``spans`` in one OTLP/HTTP protobuf request; fails the test unless it
        answers 200."""
        response = self.export(request(spans).SerializeToString())
        assert response.status_code == 200, response.text

    def new_key(self, scope: KeyScope) -> str:
        """Another key to this project, of ``scope`` (``ingest``, ``scores``), made
        through the real store, as ``threadline keys create`` makes one."""
        from threadline.server.store import open_store

        store = open_store(self.process.store_url)
        try:
            access = store.access_for_key(self.api_key)
            assert access is not None
            return store.create_key(access.project.id, scope)
        finally:
            store.close()

    def send_span(self, attributes: Mapping[str, Any], **fields: Any) -> str:
        """Export a new trace of one span carrying ``attributes`` (``fields``: any other
        of ``tests.otlp.span``'s, such as name or start_ns); its trace id."""
        trace_id = new_trace_id()
        self.send([span(trace_id, new_span_id(), attributes=attributes, **fields)])
        return trace_id


@pytest.fixture
def server(threadline_process: ServerProcess) -> Iterator[ProjectClient]:
    key = threadline_process.new_key(f"test-project-{next(_projects)}")
    client = ProjectClient(threadline_process.base_url, key, threadline_process)
    yield client
    client.http.close()


@pytest.fixture(params=["sqlite", pytest.param("clickhouse", marks=pytest.mark.clickhouse)])
def server_on_each_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ProjectClient]:
    """A project on a server of each store in turn: the ``server`` fixture's (SQLite),
    then a server of the test's own on a ClickHouse (chDB) database of its own."""
    if request.param == "sqlite":
        yield request.getfixturevalue("server")
        return
    from tests.store.chdb_http import own_database_url

    url = own_database_url(tmp_path)
    key = new_project_key(url, "each-store")
    process = start_server(
        tmp_path / "data", tmp_path / "server.log", "--store", url, "--grpc-port", "0"
    )
    try:
        yield ProjectClient(process.base_url, key, process)
    finally:
        stop_server(process)


_INTEGRATIONS = Path(__file__).resolve().parent / "integrations"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        # Every test that drives Chromium is a browser test, whichever file it is in.
        if "browser" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.browser)
        # Other vendors' SDKs, each driving an app through the real server: seconds each.
        if item.path.is_relative_to(_INTEGRATIONS):
            item.add_marker(pytest.mark.slow)
