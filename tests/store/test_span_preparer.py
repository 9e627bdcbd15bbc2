"""The SQLite store's work before its transaction, done in another process (as the
ingest workers do it): spans written with what a spawned process prepared read back as
spans written alone, before the payload dictionary exists (its samples still train
it) and after (the frames name it)."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from tests.store.test_payload_dictionaries import (
    _assert_reads_back,
    _frame_dictionaries,
    _spans,
    _stored_dictionaries,
)
from threadline.server.store.sqlite import SQLiteStore, payloads
from threadline.server.store.sqlite.span_batch import PreparedSpans


def test_spans_prepared_in_another_process_are_stored_as_if_written_alone(tmp_path: Path):
    path = tmp_path / "prepared.db"
    store = SQLiteStore(path)
    project = store.create_project("p").id
    before = _spans(1, payloads.TRAIN_AFTER // 4, seed=1)
    after = _spans(1000, 100, seed=2)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        for batch in (before[i : i + 100] for i in range(0, len(before), 100)):
            prepared = pool.submit(store.span_preparer(), project, batch).result()
            assert isinstance(prepared, PreparedSpans) and prepared.samples
            assert store.write_spans(project, batch, prepared) == len(batch)
        (dictionary,) = _stored_dictionaries(path)  # trained on the worker's samples
        preparer = store.span_preparer()
        assert preparer.dictionary is not None
        prepared = pool.submit(preparer, project, after).result()
        assert prepared.samples is None
        assert store.write_spans(project, after, prepared) == len(after)
    frames = _frame_dictionaries(path)
    assert set(frames[: len(before)]) == {0} and set(frames[len(before) :]) == {dictionary}
    _assert_reads_back(store, project, before + after)
    trace = store.get_trace(project, after[0].trace_id)
    assert trace is not None and trace.span_count == 2 and trace.input_preview
    store.close()
