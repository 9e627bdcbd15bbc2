"""The SQLite store packs payloads with a dictionary it trains on its own payloads.

Checked on the stored bytes: which frames name which dictionary, and that every
payload, packed before or after, by this process or another, reads back as sent.
"""

from __future__ import annotations

import fcntl
import json
import os
import random
import threading
from pathlib import Path

import zstandard

from tests.store.test_contract import record
from threadline.server.store.sqlite import SQLiteStore, payloads
from threadline.server.store.sqlite.driver import sqlite3

_WORDS = (
    "refund order shipping customer invoice the a to of and with please status "
    "update tracking package"
).split()


def _spans(first_trace: int, traces: int, seed: int) -> list:
    """Traces of 2 spans, each with a chat-sized input and output (packed payloads)."""
    rng = random.Random(seed)

    def text() -> str:
        return (
            '{"role": "user", "content": "'
            + " ".join(rng.choice(_WORDS) for _ in range(rng.randint(120, 400)))
            + '"}'
        )

    return [
        record(
            trace,
            trace * 10 + span,
            trace * 10 if span else None,
            start=span,
            session=f"s{trace % 7}",
            input=text(),
            output=text(),
        )
        for trace in range(first_trace, first_trace + traces)
        for span in range(2)
    ]


def _frame_dictionaries(path: Path) -> list[int]:
    with sqlite3.connect(path) as conn:
        return [
            zstandard.get_frame_parameters(value).dict_id
            for (value,) in conn.execute("SELECT input FROM spans ORDER BY rowid")
        ]


def _stored_dictionaries(path: Path) -> list[int]:
    with sqlite3.connect(path) as conn:
        return [row[0] for row in conn.execute("SELECT dict_id FROM payload_dictionaries")]


def _assert_reads_back(store: SQLiteStore, project: int, spans: list) -> None:
    for sent in spans[::37]:
        read = {s.span_id: s for s in store.get_trace(project, sent.trace_id).spans}
        assert (read[sent.span_id].input, read[sent.span_id].output) == (
            json.loads(sent.input),
            json.loads(sent.output),
        )
    copied = {r.span_id: r for _, records in store.iter_spans(500) for r in records}
    assert {s.span_id: (s.input, s.output) for s in spans} == {
        i: (r.input, r.output) for i, r in copied.items()
    }


def test_a_dictionary_is_trained_once_and_packs_what_follows(tmp_path: Path):
    path = tmp_path / "dict.db"
    store = SQLiteStore(path)
    project = store.create_project("p").id
    # 4 payloads a trace: the dictionary is trained after the last of these.
    before = _spans(1, payloads.TRAIN_AFTER // 4, seed=1)
    for i in range(0, len(before), 100):
        store.write_spans(project, before[i : i + 100])
    after = _spans(1000, 100, seed=2)
    store.write_spans(project, after)

    (dictionary,) = _stored_dictionaries(path)
    frames = _frame_dictionaries(path)
    assert set(frames[: len(before)]) == {0}
    assert set(frames[len(before) :]) == {dictionary}
    _assert_reads_back(store, project, before + after)
    # Traces written before it still have their previews.
    assert store.get_trace(project, before[0].trace_id).input_preview
    store.close()

    # A restart packs with the stored dictionary rather than training another.
    reopened = SQLiteStore(path)
    later = _spans(2000, 20, seed=3)
    reopened.write_spans(project, later)
    assert _stored_dictionaries(path) == [dictionary]
    assert set(_frame_dictionaries(path)[-len(later) :]) == {dictionary}
    _assert_reads_back(reopened, project, before + after + later)
    reopened.close()


def test_worker_processes_share_the_first_dictionary(tmp_path: Path):
    # Two stores on one file stand for two worker processes: neither knows what the
    # other holds in memory, only what is in the database.
    path = tmp_path / "workers.db"
    first, second = SQLiteStore(path), SQLiteStore(path)
    project = first.create_project("p").id
    early = _spans(1, payloads.TRAIN_AFTER // 4, seed=4)
    first.write_spans(project, early)
    (dictionary,) = _stored_dictionaries(path)
    packed_by_first = _spans(1000, 50, seed=5)
    first.write_spans(project, packed_by_first)

    # The second reads frames of a dictionary it has never loaded ...
    _assert_reads_back(second, project, early + packed_by_first)
    # ... and, once it has packed enough payloads itself, packs with that one.
    for i in range(2000, 2600, 100):
        second.write_spans(project, _spans(i, 100, seed=i))
    assert _stored_dictionaries(path) == [dictionary]
    assert _frame_dictionaries(path)[-1] == dictionary
    first.close()
    second.close()


def test_a_worker_writes_on_while_another_trains(tmp_path: Path):
    path = tmp_path / "training.db"
    store = SQLiteStore(path)
    project = store.create_project("p").id
    # The test holds the training lock, as a worker process busy training would.
    trainer = os.open(f"{path}-training", os.O_RDWR)
    fcntl.flock(trainer, fcntl.LOCK_EX)
    meanwhile = _spans(1, payloads.TRAIN_AFTER // 4 + 50, seed=6)

    def write_meanwhile() -> None:
        for i in range(0, len(meanwhile), 100):
            store.write_spans(project, meanwhile[i : i + 100])

    writer = threading.Thread(target=write_meanwhile)
    writer.start()
    writer.join(timeout=30)
    assert not writer.is_alive(), "a write waited for the other worker's training"
    # Past the point of training, it neither trained nor waited: no dictionary yet.
    assert _stored_dictionaries(path) == []
    assert set(_frame_dictionaries(path)) == {0}

    # The other worker's dictionary appears; the next write adopts it.
    dictionary = payloads.train([s.input.encode() for s in meanwhile[: payloads.TRAIN_AFTER]])
    assert dictionary is not None
    with sqlite3.connect(path) as conn:
        payloads.save(conn, dictionary)
    fcntl.flock(trainer, fcntl.LOCK_UN)
    os.close(trainer)
    adopting = _spans(2000, 50, seed=7)
    store.write_spans(project, adopting)
    later = _spans(3000, 50, seed=8)
    store.write_spans(project, later)
    assert _stored_dictionaries(path) == [dictionary.dict_id()]
    assert set(_frame_dictionaries(path)[-len(later) :]) == {dictionary.dict_id()}
    _assert_reads_back(store, project, meanwhile + adopting + later)
    store.close()


def test_payloads_zstd_cannot_learn_from_are_packed_without_a_dictionary():
    assert payloads.train([b"x" * 600] * 3) is None
    packer = payloads.Packer(None)
    frame = packer.pack("plain " * 200)
    assert zstandard.get_frame_parameters(frame).dict_id == 0
    assert payloads.Unpacker(lambda dict_id: None)(frame) == "plain " * 200


def test_each_thread_unpacks_the_exports_batches_with_one_unpacker(tmp_path: Path):
    """The bulk export reads traces in batches, many a second: each thread keeps one
    unpacker (its decompressors, each with its dictionary loaded, made once), and
    threads reading at once each read their payloads back whole."""
    store = SQLiteStore(tmp_path / "dict.db")
    project = store.create_project("p").id
    spans = _spans(1, payloads.TRAIN_AFTER // 4 + 60, seed=4)
    for i in range(0, len(spans), 100):
        store.write_spans(project, spans[i : i + 100])
    (dictionary,) = _stored_dictionaries(tmp_path / "dict.db")
    sent = {(s.trace_id, s.span_id): (s.input, s.output) for s in spans}
    trace_ids = sorted({s.trace_id for s in spans})

    def export(results: list) -> None:
        unpackers = set()
        for i in range(0, len(trace_ids), 50):
            found = store.trace_details_json(project, trace_ids[i : i + 50])
            unpackers.add(id(store._payloads.thread_unpacker()))
            for trace_id, text in found.items():
                for span in json.loads(text)["spans"]:
                    read = (json.dumps(span["input"]), json.dumps(span["output"]))
                    results.append(read == tuple(map(_canonical, sent[trace_id, span["span_id"]])))
        results.append(len(unpackers) == 1)

    outcomes: list[list] = [[], [], []]
    threads = [threading.Thread(target=export, args=(r,)) for r in outcomes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(all(r) and len(r) == len(spans) + 1 for r in outcomes)
    mine = store._payloads.thread_unpacker()
    assert mine is store._payloads.thread_unpacker()
    store.trace_details_json(project, trace_ids[-10:])
    assert dictionary in mine._decompressors  # the late spans' frames name the dictionary
    store.close()


def _canonical(text: str) -> str:
    return json.dumps(json.loads(text))
