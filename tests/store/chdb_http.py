"""A loopback endpoint speaking enough of ClickHouse's HTTP interface for
clickhouse-connect, backed by chDB (the ClickHouse engine embedded in-process).

A real ClickHouse server is not installable on the test machines; chDB is the current
engine as a library. Serving it over HTTP lets the ClickHouse store run unchanged,
through clickhouse-connect's real HTTP transport, with every statement parsed and
executed by the real engine. Test and benchmark infrastructure only: it is not part of
the shipped package. Like a server, it runs several statements at once (a connection
each, from a pool: chDB 4.x runs queries of different connections to one path in
parallel), each with the settings its request names.

    python tests/store/chdb_http.py --port 8123 [--path DIR]   # stand-alone (bench)

What it implements: the query in the ``query`` URL parameter and/or the request body
(ClickHouse appends the body to the query); an ``INSERT ... FORMAT <fmt>`` whose data is
the body (written to a temporary file and inserted with ``SELECT * FROM file(...)``);
``database`` as the current database; the other URL parameters that name a setting
as the statement's settings (a connection opened with them); request bodies compressed
with gzip, deflate, zstd or lz4 (clickhouse-connect's framing); errors as HTTP 500 with
ClickHouse's ``X-ClickHouse-Exception-Code`` header. Responses are never compressed,
which the HTTP interface allows.
"""

from __future__ import annotations

import argparse
import atexit
import gzip
import json
import re
import socket
import tempfile
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

_INSERT = re.compile(
    r"^\s*INSERT\s+INTO\s+(?P<target>.+?)\s+FORMAT\s+(?P<format>\w+)\s*$",
    re.IGNORECASE | re.DOTALL,
)
# An insert whose statement leads the body, its data following the format name.
_INSERT_IN_BODY = re.compile(
    rb"^\s*INSERT\s+INTO\s+(?P<target>[^\n]+?)\s+FORMAT\s+(?P<format>\w+)[ \t]*\r?\n",
    re.IGNORECASE,
)
_FORMAT_CLAUSE = re.compile(r"\bFORMAT\s+(\w+)\s*;?\s*$", re.IGNORECASE)
_ERROR_CODE = re.compile(r"Code:\s*(\d+)")


class ChdbEngine:
    """The chDB engine of one data folder, through a pool of connections.

    chDB (4.x) runs queries from different connections to one path in parallel, and
    keeps each connection's settings and current database to itself; so each request
    takes an idle connection opened with its settings (or opens one), as a server
    gives each query its own context. Several statements run at once, as on a server.
    """

    def __init__(self, path: str | None = None):
        from chdb import session as chdb_session  # here: importing this module needs no chDB

        self._open = chdb_session.Session
        self._scratch = tempfile.TemporaryDirectory(prefix="chdb-http-")
        self._path = path or str(Path(self._scratch.name) / "data")
        self._lock = threading.Lock()
        self._closed = False
        # Idle connections by their settings (a URL query string, "" for none). The
        # first keeps the engine open while the others come and go.
        self._first = self._open(self._path)
        self._idle: dict[str, list[Any]] = {"": [self._first]}
        self._in_use: set[Any] = set()
        names = self._first.query("SELECT name FROM system.settings", "TSV")
        self._setting_names = frozenset(bytes(names.bytes()).decode().split())

    def execute(
        self,
        sql: str,
        database: str | None,
        output_format: str,
        settings: dict[str, str] | None = None,
    ) -> bytes:
        with self._connection(settings or {}) as connection:
            # A connection keeps its current database between statements: set it each time.
            connection.query(f"USE {_quote_identifier(database or 'default')}")
            result = connection.query(sql, output_format)
            return bytes(result.bytes()) if result is not None else b""

    def insert(
        self,
        target: str,
        data_format: str,
        data: bytes,
        database: str | None,
        settings: dict[str, str] | None = None,
    ) -> None:
        with tempfile.NamedTemporaryFile(dir=self._scratch.name, suffix=".bin") as file:
            file.write(data)
            file.flush()
            self.execute(
                f"INSERT INTO {target} SELECT * FROM file('{file.name}', '{data_format}')",
                database,
                "Null",
                settings,
            )

    @contextmanager
    def _connection(self, settings: dict[str, str]) -> Iterator[Any]:
        """An idle connection with these settings (those the engine knows: the HTTP
        interface's own parameters are not settings), opened if none is idle."""
        key = urlencode(sorted((k, v) for k, v in settings.items() if k in self._setting_names))
        with self._lock:
            if self._closed:
                raise RuntimeError("the chDB engine is closed")
            idle = self._idle.setdefault(key, [])
            connection = idle.pop() if idle else None
        if connection is None:
            connection = self._open(f"{self._path}?{key}" if key else self._path)
        with self._lock:
            self._in_use.add(connection)
        try:
            yield connection
        finally:
            with self._lock:
                self._in_use.discard(connection)
                keep = not self._closed
                if keep:
                    self._idle[key].append(connection)
            if not keep and connection is not self._first:
                connection.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle = [c for group in self._idle.values() for c in group]
            self._idle = {}
        # The first connection last: the engine shuts down with the last one.
        for connection in idle:
            if connection is not self._first:
                connection.close()
        self._first.close()
        self._scratch.cleanup()


class ChdbHttpServer:
    """The engine behind a loopback HTTP server on a free port, served from a thread."""

    def __init__(self, path: str | None = None, port: int = 0, engine: ChdbEngine | None = None):
        # Another server's engine may be shared: a second door to the same data, which
        # a test can close to play a ClickHouse that is down.
        self._owns_engine = engine is None
        self.engine = engine or ChdbEngine(path)
        handler = type("Handler", (_Handler,), {"engine": self.engine})
        self._http = _Listener(("127.0.0.1", port), handler)
        self.port = self._http.server_address[1]
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    def url(self, database: str) -> str:
        return f"clickhouse://default:@127.0.0.1:{self.port}/{database}"

    def start(self) -> ChdbHttpServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._http.drop_connections()
        if self._owns_engine:
            self.engine.close()


class _Listener(ThreadingHTTPServer):
    """Keeps its open connections, so that stopping also ends the kept-alive ones (a
    stopped server must look stopped to a client with a connection pool)."""

    daemon_threads = True

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        with self._connections_lock:
            connections, self._connections = self._connections, set()
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by the client


class _Handler(BaseHTTPRequestHandler):
    engine: ChdbEngine
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without this, Nagle's algorithm and
    # the client's delayed ACK add 40 ms to every answer.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet: clickhouse-connect makes many requests

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/ping":
            self._answer(200, b"Ok.\n")
            return
        params = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        body = self._body()
        database = params.get("database") or self.headers.get("X-ClickHouse-Database")
        query = params.get("query", "")
        try:
            insert = _insert_statement(query, body)
            if insert:
                target, data_format, data = insert
                self.engine.insert(target, data_format, data, database, params)
                self._answer(200, b"", summary=True)
                return
            sql = f"{query}\n{body.decode()}" if query and body else query or body.decode()
            clause = _FORMAT_CLAUSE.search(sql)
            output_format = (
                clause.group(1) if clause else params.get("default_format", "TabSeparated")
            )
            if clause:
                sql = sql[: clause.start()]
            data = self.engine.execute(sql, database, output_format, params)
        except Exception as error:  # noqa: BLE001 - every engine error goes back as HTTP 500
            message = str(error)
            code = _ERROR_CODE.search(message)
            self._answer(
                500,
                (message if message.startswith("Code:") else f"Code: 1000. {message}").encode(),
                exception_code=code.group(1) if code else "1000",
            )
            return
        self._answer(200, data, summary=True)

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            raw = bytearray()
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    break
                raw += self.rfile.read(size)
                self.rfile.readline()
            data = bytes(raw)
        else:
            data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        return _decompress(data, self.headers.get("Content-Encoding", ""))

    def _answer(
        self, status: int, data: bytes, *, summary: bool = False, exception_code: str | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-ClickHouse-Server-Display-Name", "chdb-http")
        if summary:
            self.send_header("X-ClickHouse-Summary", json.dumps({"written_rows": "0"}))
        if exception_code:
            self.send_header("X-ClickHouse-Exception-Code", exception_code)
        self.end_headers()
        self.wfile.write(data)


_shared: ChdbHttpServer | None = None
_shared_lock = threading.Lock()


def shared_server() -> ChdbHttpServer:
    """One endpoint for the whole test process (chDB holds one engine per process),
    started on first use; tests keep apart by using a database each."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = ChdbHttpServer().start()
            atexit.register(_shared.stop)
        return _shared


def database_name(text: str) -> str:
    """A ClickHouse database name made from any text (a test's name, a folder)."""
    return "t_" + re.sub(r"[^A-Za-z0-9_]", "_", text)[-80:]


def own_database_url(tmp_path: Path) -> str:
    """The URL of a test's own database on the shared endpoint, named after the test's
    temporary folder: new to the test, and the same however often the test asks."""
    return shared_server().url(database_name(tmp_path.name))


def _insert_statement(query: str, body: bytes) -> tuple[str, str, bytes] | None:
    """(target, format, data) when the request is an insert with data, else None."""
    if query:
        match = _INSERT.match(query)
        return (match["target"], match["format"], body) if match else None
    in_body = _INSERT_IN_BODY.match(body)
    if in_body is None:
        return None
    return in_body["target"].decode(), in_body["format"].decode(), body[in_body.end() :]


def _decompress(data: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    if not encoding or encoding == "identity":
        return data
    if encoding == "gzip":
        return gzip.decompress(data)
    if encoding == "deflate":
        return zlib.decompress(data)
    # clickhouse-connect sends a large insert as several compressed frames, one after
    # another (a block each): every frame is decompressed, not only the first.
    if encoding == "zstd":
        import zstandard

        return zstandard.ZstdDecompressor().decompressobj(read_across_frames=True).decompress(data)
    if encoding == "lz4":
        import lz4.frame

        whole = bytearray()
        while data:
            frame = lz4.frame.LZ4FrameDecompressor()
            whole += frame.decompress(data)
            data = frame.unused_data
        return bytes(whole)
    raise ValueError(f"unsupported Content-Encoding {encoding!r}")


def _quote_identifier(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8123)
    parser.add_argument("--path", default=None, help="chDB data folder (default: temporary)")
    args = parser.parse_args()
    server = ChdbHttpServer(args.path, args.port)
    print(f"chdb-http listening on 127.0.0.1:{server.port}", flush=True)
    try:
        server._http.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server._http.server_close()
        server.engine.close()


if __name__ == "__main__":
    main()
