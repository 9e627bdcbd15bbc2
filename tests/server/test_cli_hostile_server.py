"""The CLI's data commands against a server that answers as it should not: a redirect
to another host, an answer without end. Both servers here are local fakes, as a
hostile or misconfigured server is one the project does not run."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest


class _Recorder(BaseHTTPRequestHandler):
    """Another host: records the Authorization header of what reaches it."""

    seen: ClassVar[list[str | None]] = []

    def do_GET(self) -> None:
        type(self).seen.append(self.headers.get("Authorization"))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    do_DELETE = do_GET

    def log_message(self, *args: object) -> None:
        pass


def _serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def other_host() -> Iterator[str]:
    _Recorder.seen = []
    yield from _serve(_Recorder)


def _redirecting_to(target: str) -> type[BaseHTTPRequestHandler]:
    class Redirect(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", target + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    return Redirect


class _Endless(BaseHTTPRequestHandler):
    """A JSON answer of 80 MiB (a list of zeros), sent without a length."""

    def do_DELETE(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        try:
            self.wfile.write(b"[")
            chunk = b"0," * (1 << 19)
            for _ in range(80):
                self.wfile.write(chunk)
            self.wfile.write(b"0]")
        except OSError:
            pass

    def log_message(self, *args: object) -> None:
        pass


def _cli(base_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "threadline.server",
            *args,
            "--base-url",
            base_url,
            "--api-key",
            "tl_secret-key",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_redirect_to_another_host_is_not_followed_with_the_key(other_host: str) -> None:
    """urllib sent every header of a GET, the key among them, to the host a redirect
    named (`threadline export` reads with GETs)."""
    for base_url in _serve(_redirecting_to(other_host)):
        result = _cli(base_url, "export", "sessions")
    assert result.returncode != 0
    assert "302" in result.stderr and "not followed" in result.stderr, result.stderr
    assert _Recorder.seen == []


def test_an_answer_past_the_bound_is_not_read_whole() -> None:
    """An answer of 80 MiB was read whole into memory (a server may send without end)."""
    for base_url in _serve(_Endless):
        result = _cli(base_url, "delete", "session", "s-1")
    assert result.returncode != 0
    assert "over 67108864 bytes" in result.stderr, result.stderr
