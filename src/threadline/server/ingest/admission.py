"""Admission: how many exports may be in one stage at once, and each project's share.

Two stages are bounded, each by its own ``Gate``: bodies being received (the client
is still sending; ``max_receiving_exports``) and exports in hand (a whole body,
being checked, decoded or written; ``max_pending_exports``). A slow client therefore
holds only a receiving place, never a place of work in hand, and a gate that is full
answers 503 with ``Retry-After`` (gRPC RESOURCE_EXHAUSTED with a RetryInfo:
grpc_refusal.py), which OTLP exporters retry.

No project may hold more than its share of a gate, three quarters of it (all of a
gate of one place): whatever one key does, a quarter stays open for every other
project. Counted on the event loop only (both receivers run there), so plain
integers are race-free.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from threadline.server.errors import Overloaded


def project_share(limit: int) -> int:
    """The most places of a gate of ``limit`` that one project may hold."""
    if limit <= 1:
        return limit
    return limit - max(1, limit // 4)


class Gate:
    def __init__(self, stage: str, setting: str, limit: int) -> None:
        self.stage = stage  # "being received", "in flight"
        self.setting = setting
        self.limit = limit
        self.share = project_share(limit)
        self.held = 0
        self._by_project: Counter[int] = Counter()

    @contextmanager
    def hold(self, project_id: int) -> Iterator[None]:
        """A place for one export of ``project_id``, or ``Overloaded``."""
        if self.held >= self.limit:
            raise Overloaded(
                f"{self.held} exports {self.stage}, the limit ({self.setting}): retry later"
            )
        if self._by_project[project_id] >= self.share:
            raise Overloaded(
                f"this project has {self._by_project[project_id]} exports {self.stage}, its "
                f"share of the {self.limit} allowed ({self.setting}): retry later"
            )
        self.held += 1
        self._by_project[project_id] += 1
        try:
            yield
        finally:
            self.held -= 1
            self._by_project[project_id] -= 1
            if not self._by_project[project_id]:
                del self._by_project[project_id]
