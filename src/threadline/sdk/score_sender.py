"""Scores sent to the server in the background: a bounded queue, one daemon thread, and
batched ``POST /api/v1/scores`` requests.

Why not the span path: scores are not spans (the server stores them apart, and a score
may arrive before or long after its trace), and the host's thread must never wait on the
network. ``score`` only puts a dict on a queue; the thread takes everything queued at that
moment (up to ``MAX_BATCH``) and sends it as one JSON list. A burst therefore batches by
itself while the previous request is in flight, and a lone score leaves at once, so
``flush`` has no batching interval to wait out.

HTTP is the standard library's ``urllib``: the SDK's install stays OpenTelemetry and its
exporter, nothing more. Every score carries an id made on the client, so a retry after
a lost answer replaces the score rather than writing it twice.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from threadline.sdk import refusals

logger = logging.getLogger("threadline")

#: Scores waiting to be sent; more are dropped (with a warning) rather than let memory grow
#: while the server is unreachable.
MAX_QUEUED = 10_000
#: Scores in one request (the server takes up to 1,000).
MAX_BATCH = 100
#: How long one batch is retried when the server is unreachable, overloaded (503) or
#: limiting (429), with doubling pauses from ``FIRST_BACKOFF_S`` up to ``MAX_BACKOFF_S``
#: between attempts. Bounded by time, not by a count of attempts: an application often
#: starts beside its server (a compose file, a CI job), and a server opening a large store
#: or on a loaded machine can take tens of seconds to listen; a minute covers that.
RETRY_FOR_S = 60.0
FIRST_BACKOFF_S = 0.5
MAX_BACKOFF_S = 8.0
REQUEST_TIMEOUT_S = 10.0
_RETRIED_STATUSES = frozenset({429, 502, 503, 504})


class _Retry(Exception):
    """A failure worth another attempt, after ``delay`` seconds if the server said so."""

    def __init__(self, reason: str, delay: float | None = None) -> None:
        super().__init__(reason)
        self.delay = delay


class ScoreSender:
    """Owns the queue and the thread. ``submit`` and ``flush`` are safe from any thread."""

    def __init__(self, endpoint: str, headers: Mapping[str, str]) -> None:
        self.endpoint = endpoint
        self.headers = {**headers, "Content-Type": "application/json"}
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue(MAX_QUEUED)
        # Scores submitted and not yet sent or given up on; flush waits for zero.
        self._unfinished = 0
        self._idle = threading.Condition()
        self._stopping = threading.Event()
        self.dropped = 0
        self._pid = os.getpid()
        self._thread = threading.Thread(target=self._run, name="threadline-scores", daemon=True)
        self._thread.start()

    def in_this_process(self) -> bool:
        """False in a child forked after the thread started (the child has no thread)."""
        return self._pid == os.getpid()

    def submit(self, score: dict[str, Any]) -> bool:
        """Queue ``score`` for sending; False (and a warning) if the queue is full."""
        if self._stopping.is_set():
            logger.warning("threadline: score %r not sent: the SDK is shut down", score["name"])
            return False
        with self._idle:
            self._unfinished += 1
        try:
            self._queue.put_nowait(score)
        except queue.Full:
            self._finished(1)
            self.dropped += 1
            logger.warning(
                "threadline: score %r dropped: %d scores already wait to be sent "
                "(is the server reachable?)",
                score["name"],
                MAX_QUEUED,
            )
            return False
        return True

    def flush(self, timeout_s: float) -> bool:
        """Wait until every score submitted so far is sent (or given up on); False if
        ``timeout_s`` passed first."""
        deadline = time.monotonic() + max(timeout_s, 0.0)
        with self._idle:
            while self._unfinished:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    def shutdown(self, timeout_s: float) -> None:
        """Send what is queued (for up to ``timeout_s``), then stop the thread. Scores
        still unsent then are dropped with a warning."""
        self.flush(timeout_s)
        self._stopping.set()
        try:
            self._queue.put_nowait(_STOP)  # wakes the thread if it waits for scores
        except queue.Full:
            pass  # then it is busy sending, and sees the stop flag when done
        self._thread.join(timeout=1.0)
        with self._idle:
            unsent = self._unfinished  # still queued (a batch in flight logs itself)
        if unsent:
            logger.warning("threadline: %d scores not sent before shutdown", unsent)

    # ---- the sending thread ------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            first = self._queue.get()
            if first is _STOP:
                break
            batch = [first]
            while len(batch) < MAX_BATCH:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    self._stopping.set()
                    break
                batch.append(item)
            try:
                self._deliver(batch)
            except Exception:  # the thread must outlive any one batch
                logger.warning("threadline: sending %d scores failed", len(batch), exc_info=True)
            finally:
                self._finished(len(batch))

    def _deliver(self, batch: list[dict[str, Any]]) -> None:
        """Send ``batch``, retrying what may pass later. A batch the server refuses as
        bad input is resent score by score, so one bad score loses only itself."""
        status, error = self._send_with_retries(batch)
        if status == 400 and len(batch) > 1:
            for score in batch:
                self._deliver([score])
            return
        if status is None or status >= 300:
            names = sorted({score["name"] for score in batch})
            advice = refusals.refusal_advice(status) if status is not None else None
            logger.warning(
                "threadline: %d scores (%s) not recorded: %s%s",
                len(batch),
                ", ".join(names),
                error,
                f"; {advice}" if advice else "",
            )

    def _send_with_retries(self, batch: list[dict[str, Any]]) -> tuple[int | None, str]:
        """(status, error text) of the last attempt; status None: never reached."""
        body = json.dumps(batch).encode()
        pause = FIRST_BACKOFF_S
        give_up = time.monotonic() + RETRY_FOR_S
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._post(body), ""
            except _Retry as retry:
                wait = min(retry.delay if retry.delay is not None else pause, MAX_BACKOFF_S * 4)
                if self._stopping.is_set() or time.monotonic() + wait > give_up:
                    return None, f"gave up after {attempt} attempts: {retry}"
                logger.debug("threadline: scores: %s; retrying in %.1fs", retry, wait)
                if self._stopping.wait(wait):
                    return None, f"shut down while retrying: {retry}"
                pause = min(pause * 2, MAX_BACKOFF_S)
            except _Refused as refused:
                return refused.status, str(refused)

    def _post(self, body: bytes) -> int:
        request = urllib.request.Request(
            self.endpoint, data=body, headers=self.headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:
                response.read()
                return int(response.status)
        except urllib.error.HTTPError as error:
            text = _error_text(error)
            if error.code in _RETRIED_STATUSES:
                raise _Retry(f"HTTP {error.code}: {text}", _retry_after(error)) from None
            raise _Refused(error.code, f"HTTP {error.code}: {text}") from None
        except (urllib.error.URLError, OSError) as error:  # refused, reset, timed out
            raise _Retry(f"{self.endpoint} unreachable: {error}") from None

    def _finished(self, count: int) -> None:
        with self._idle:
            self._unfinished -= count
            if self._unfinished <= 0:
                self._unfinished = 0
                self._idle.notify_all()


class _Refused(Exception):
    """The server answered and will answer the same again (bad key, bad score)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


# Put on the queue to wake the thread for shutdown; compared by identity.
_STOP: dict[str, Any] = {}


def _error_text(error: urllib.error.HTTPError) -> str:
    try:
        body = error.read()
    except OSError:
        body = b""
    return refusals.server_error(body) or str(error.reason)


def _retry_after(error: urllib.error.HTTPError) -> float | None:
    try:
        return max(float(error.headers.get("Retry-After", "")), 0.0)
    except ValueError:
        return None
