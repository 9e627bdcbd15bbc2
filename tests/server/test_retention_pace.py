"""Retention's pace: small paced batches while ingest is busy, batches that grow to
about half a second with hardly a pause in a lull, on a real SQLite store holding
expired traces."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.spans import span_record
from threadline.server.retention import DAY_NS, RetentionService
from threadline.server.retention_pace import (
    BUSY_BATCH,
    LULL_BATCH_S,
    MAX_BATCH,
    MIN_PAUSE_S,
    PACE,
    RetentionPace,
)
from threadline.server.store.sqlite.store import SQLiteStore

T0 = 1_600_000_000 * 10**9  # years ago: every trace written here has expired


class _Recorded(SQLiteStore):
    """The real store, noting the size of each delete retention asks of it."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.batches: list[int] = []

    def delete_traces(self, project_id: int, trace_ids: Sequence[str]) -> int:
        self.batches.append(len(trace_ids))
        return super().delete_traces(project_id, trace_ids)


def _expired_store(path: Path, traces: int) -> tuple[_Recorded, int]:
    store = _Recorded(path)
    project = store.create_project("p").id
    store.write_spans(
        project,
        [
            span_record(
                n,
                n,
                T0 + n * 1000,
                10,
                name="turn",
                session_id=f"s{n // 10}",
            )
            for n in range(1, traces + 1)
        ],
    )
    return store, project


@pytest.mark.parametrize(("quiet", "busy"), [(0.0, True), (float("inf"), False)])
def test_batches_are_small_while_ingest_is_busy_and_grow_in_a_lull(
    tmp_path: Path, quiet: float, busy: bool
) -> None:
    store, project = _expired_store(tmp_path / "t.db", 3_000)
    try:
        service = RetentionService(store, 1, ingest_quiet=lambda: quiet)
        service.run_pass()
        assert service.deleted_traces == 3_000
        assert store.expired_traces(project, time.time_ns() - DAY_NS, 10) == []
        if busy:
            assert set(store.batches) == {BUSY_BATCH}
        else:
            assert max(store.batches) > BUSY_BATCH
            assert len(store.batches) < 3_000 // BUSY_BATCH
    finally:
        store.close()


def test_the_pace_by_what_ingest_does() -> None:
    pace = RetentionPace()
    # Busy: 100 traces, then four times the batch's time.
    assert pace.next_batch(0.0) == BUSY_BATCH
    assert pace.pause_after(0.1, BUSY_BATCH, 0.0) == pytest.approx(0.1 * PACE)
    assert pace.pause_after(0.0, BUSY_BATCH, 0.0) == MIN_PAUSE_S
    # A lull: quick batches double, up to the bound, with the least pause.
    sizes = []
    for _ in range(8):
        size = pace.next_batch(5.0)
        sizes.append(size)
        assert pace.pause_after(0.01, size, 5.0) == MIN_PAUSE_S
    assert sizes[:3] == [BUSY_BATCH, 2 * BUSY_BATCH, 4 * BUSY_BATCH]
    assert max(sizes) == pace.next_batch(5.0) == MAX_BATCH
    # A batch over the time bound halves the next one; a short last batch (the backlog
    # ran out) does not grow it.
    pace.pause_after(LULL_BATCH_S * 2, MAX_BATCH, 5.0)
    assert pace.next_batch(5.0) == MAX_BATCH // 2
    pace.pause_after(0.01, 3, 5.0)
    assert pace.next_batch(5.0) == MAX_BATCH // 2
    # Spans arrive again: back to small, paced batches at once.
    assert pace.next_batch(0.1) == BUSY_BATCH
