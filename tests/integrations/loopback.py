"""A local HTTP server on a free loopback port, served by a thread: what the fake
OpenAI-compatible servers (``fake_openai``, ``fake_judge``) run on."""

from __future__ import annotations

import http.server
import json
import threading
from typing import Any, Self


class LoopbackServer:
    """Serves ``handler`` from ``start()`` (or ``with``) on, until ``stop()``."""

    def __init__(self, handler: type[http.server.BaseHTTPRequestHandler]) -> None:
        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        """What ``openai.OpenAI(base_url=...)`` or ``OPENAI_BASE_URL`` takes."""
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class JsonHandler(http.server.BaseHTTPRequestHandler):
    """A handler that answers JSON and logs nothing (keeps test output clean)."""

    def send_json(self, status: int, document: dict[str, Any] | str) -> None:
        payload = json.dumps(document).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (a timeout under test)

    def log_message(self, *args: object) -> None:
        pass
