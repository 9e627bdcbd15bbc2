"""A small client of the server's JSON API, for the CLI's data commands (``delete``,
``export``): the standard library's HTTP, so the commands need nothing the server
install lacks. Errors carry the server's own ``{"error": ...}`` text."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, Any

from threadline.server.settings import local_base_url


class ApiError(Exception):
    """The server refused the request or could not be reached; the message says why."""


@dataclass(frozen=True)
class ApiClient:
    base_url: str
    api_key: str

    @classmethod
    def from_args(cls, base_url: str | None, api_key: str | None) -> ApiClient:
        """Flags first, then the variables the SDK reads (THREADLINE_BASE_URL/API_KEY)."""
        key = api_key or os.environ.get("THREADLINE_API_KEY")
        if not key:
            raise ApiError("give --api-key or set THREADLINE_API_KEY (a full key)")
        url = base_url or os.environ.get("THREADLINE_BASE_URL") or local_base_url()
        return cls(url.rstrip("/"), key)

    def url(self, path: str, query: Sequence[tuple[str, str]] = ()) -> str:
        return self.base_url + path + ("?" + urllib.parse.urlencode(list(query)) if query else "")

    def open(
        self,
        method: str,
        path: str,
        query: Sequence[tuple[str, str]] = (),
        body: dict[str, Any] | None = None,
        timeout: float = 300,
    ) -> IO[bytes]:
        """The open response (the caller reads and closes it), or ``ApiError``."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.url(path, query),
            data=data,
            method=method,
            headers={
                "Authorization": f"Bearer {self.api_key}",
                **({"Content-Type": "application/json"} if data is not None else {}),
            },
        )
        try:
            return urllib.request.urlopen(request, timeout=timeout)
        except urllib.error.HTTPError as answer:
            raise ApiError(f"the server answered {answer.code}: {_error_text(answer)}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ApiError(
                f"cannot reach a server at {self.base_url} ({reason}): give its address with"
                " --base-url or THREADLINE_BASE_URL"
            ) from None

    def call(
        self,
        method: str,
        path: str,
        query: Sequence[tuple[str, str]] = (),
        body: dict[str, Any] | None = None,
    ) -> Any:
        with self.open(method, path, query, body) as response:
            return json.loads(response.read() or b"null")


def _error_text(answer: urllib.error.HTTPError) -> str:
    raw = answer.read()
    try:
        return str(json.loads(raw)["error"])
    except (ValueError, KeyError, TypeError):
        return raw.decode("utf-8", "replace")[:300] or answer.reason
