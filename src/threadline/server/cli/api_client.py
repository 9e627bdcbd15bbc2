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


# The most of a JSON answer read: a server answering without end must not fill memory.
MAX_ANSWER_BYTES = 64 << 20


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Redirects are answers, not followed: urllib would send the request's headers, the
    key among them, to whatever host the redirect names."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects())


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
            return _OPENER.open(request, timeout=timeout)
        except urllib.error.HTTPError as answer:
            if 300 <= answer.code < 400:
                raise ApiError(
                    f"the server answered {answer.code}, a redirect to"
                    f" {answer.headers.get('Location')!r}, which is not followed (it would"
                    " carry the key): give that address with --base-url or THREADLINE_BASE_URL"
                ) from None
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
            raw = response.read(MAX_ANSWER_BYTES + 1)
        if len(raw) > MAX_ANSWER_BYTES:
            raise ApiError(f"the server's answer is over {MAX_ANSWER_BYTES} bytes: not read")
        try:
            return json.loads(raw or b"null")
        except ValueError:
            raise ApiError(f"the server's answer is not JSON: {raw[:200]!r}") from None


def _error_text(answer: urllib.error.HTTPError) -> str:
    raw = answer.read(64 << 10)
    try:
        return str(json.loads(raw)["error"])
    except (ValueError, KeyError, TypeError):
        return raw.decode("utf-8", "replace")[:300] or answer.reason
