"""The storage contract: every backend runs this suite unchanged.

Add a backend by adding a parameter to the ``store`` fixture.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.store.chdb_http import database_name, shared_server
from threadline.server.model import SessionQuery, SpanRecord, TraceQuery
from threadline.server.store import Store, open_store

MS = 1_000_000
T0 = 1_790_000_000_000_000_000


def _open(backend: str, tmp_path: Path) -> Store:
    if backend == "sqlite":
        return open_store(f"sqlite://{tmp_path / 'contract.db'}")
    # A database of its own for each test, on the chDB endpoint or on a real server.
    database = database_name(tmp_path.name)
    if backend == "clickhouse":
        return open_store(shared_server().url(database))
    if backend == "clickhouse-server":
        return open_store(os.environ["CLICKHOUSE_URL"].rstrip("/") + f"/{database}")
    raise AssertionError(backend)


@pytest.fixture(
    params=[
        "sqlite",
        "clickhouse",
        pytest.param(
            "clickhouse-server",
            marks=pytest.mark.skipif(
                not os.environ.get("CLICKHOUSE_URL"),
                reason="CLICKHOUSE_URL names no ClickHouse server (e.g. clickhouse://default:@host:8123)",
            ),
        ),
    ]
)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def store(backend: str, tmp_path: Path) -> Iterator[Store]:
    opened = _open(backend, tmp_path)
    yield opened
    opened.close()


def record(
    trace: int,
    span: int,
    parent: int | None = None,
    *,
    start: int = 0,
    length: int = 10,
    session: str | None = None,
    user: str | None = None,
    error: bool = False,
    tokens: tuple[int, int] | None = None,
    cost: float | None = None,
    input: str | None = None,
    output: str | None = None,
    **extra,
) -> SpanRecord:
    return SpanRecord(
        trace_id=f"{trace:032x}",
        span_id=f"{span:016x}",
        parent_span_id=f"{parent:016x}" if parent else None,
        name=f"span-{span}",
        kind="INTERNAL",
        start_ns=T0 + start * MS,
        end_ns=T0 + (start + length) * MS,
        status="error" if error else "ok",
        input_tokens=tokens[0] if tokens else None,
        output_tokens=tokens[1] if tokens else None,
        total_tokens=sum(tokens) if tokens else None,
        cost_usd=cost,
        input=input,
        output=output,
        session_id=session,
        user_id=user,
        **extra,
    )


def test_writes_are_idempotent(store: Store):
    project = store.create_project("p").id
    spans = [record(1, 1, session="s"), record(1, 2, 1, start=2)]
    assert store.write_spans(project, spans) == 2
    assert store.write_spans(project, spans) == 0
    assert store.write_spans(project, [record(1, 2, 1, start=2), record(1, 3, 1)]) == 1
    assert store.get_trace(project, f"{1:032x}").span_count == 3


def test_trace_and_session_rollups(store: Store):
    project = store.create_project("p").id
    store.write_spans(
        project,
        [
            record(
                1, 1, start=0, length=100, session="s", user="u", input='{"q": 1}', output='"a1"'
            ),
            record(1, 2, 1, start=10, length=20, tokens=(100, 10), cost=0.5, error=True),
            record(2, 3, start=1000, length=50, input='"second"', output='"a2"'),
            record(2, 4, 3, start=1010, length=10, tokens=(5, 5), session="s", user="v"),
        ],
    )
    first = store.get_trace(project, f"{1:032x}")
    assert (first.span_count, first.error_count, first.status) == (2, 1, "error")
    assert (first.input_tokens, first.output_tokens, first.total_tokens) == (100, 10, 110)
    assert first.cost_usd == 0.5 and first.duration_ms == 100
    assert first.input_preview == '{"q": 1}' and first.output_preview == '"a1"'
    session = store.get_session(project, "s")
    assert session.trace_count == 2 and session.span_count == 4
    assert session.duration_ms == 1050  # wall-clock from first start to last end
    assert session.total_tokens == 120 and session.cost_usd == 0.5
    assert session.error_count == 1 and session.user_ids == ["u", "v"]
    assert session.first_input == '{"q": 1}' and session.last_output == '"a2"'
    assert [t.trace_id for t in session.traces] == [f"{1:032x}", f"{2:032x}"]


def test_metadata_filters_compare_values_as_pages_show_them(store: Store):
    project = store.create_project("p").id
    shown = {"vip": True, "beta": False, "n": 3, "ratio": 0.5, "plan": "pro", "x": {"a": 1}}
    store.write_spans(
        project,
        [
            record(1, 1, session="s1", metadata=shown),
            record(2, 2, start=100, session="s2", metadata={"vip": False, "n": "3"}),
        ],
    )

    def traces(**metadata: str) -> list[int]:
        page = store.list_traces(project, TraceQuery(metadata=metadata))
        return sorted(int(t.trace_id, 16) for t in page.items)

    def sessions(**metadata: str) -> list[str]:
        page = store.list_sessions(project, SessionQuery(metadata=metadata))
        return sorted(s.session_id for s in page.items)

    assert traces(vip="true") == [1] and sessions(vip="true") == ["s1"]
    assert traces(vip="false") == [2] and sessions(vip="false") == ["s2"]
    assert traces(beta="false") == [1]
    assert traces(vip="1") == [] and traces(vip="0") == []  # a boolean is not a number
    assert traces(n="3") == [1, 2] and traces(ratio="0.5") == [1]
    assert traces(plan="pro", vip="true") == [1]
    assert traces(x='{"a":1}') == [1]


def test_a_late_span_moves_a_trace_into_a_session(store: Store):
    project = store.create_project("p").id
    store.write_spans(project, [record(1, 1, session=None)])
    assert store.list_sessions(project, SessionQuery()).items == []
    store.write_spans(project, [record(1, 2, 1, start=5, session="late")])
    assert store.get_session(project, "late").trace_count == 1


def test_a_conversation_written_turn_by_turn(store: Store):
    """Next turns, a late turn, a resent turn and a late span of a stored turn: the
    session always totals its traces, however each write rolled it up."""
    project = store.create_project("p").id

    def turn(n: int, start: int, **fields) -> list[SpanRecord]:
        return [
            record(
                n,
                100 + n,
                start=start,
                length=50,
                session="s",
                user=f"u{n % 2}",
                input=f'"in {n}"',
                output=f'"out {n}"',
            ),
            record(n, 200 + n, 100 + n, start=start + 5, length=10, **fields),
        ]

    for n in range(1, 6):
        store.write_spans(project, turn(n, n * 100, tokens=(n, 1), cost=0.1 * n))
    store.write_spans(project, turn(9, 50, tokens=(9, 1)))  # late: starts before turn 1
    store.write_spans(project, turn(3, 300, tokens=(3, 1), cost=0.3))  # resent
    store.write_spans(
        project, [record(4, 300, 104, start=420, length=5, error=True, tokens=(40, 0))]
    )  # a late span of turn 4
    store.write_spans(project, turn(6, 600, tokens=(6, 1)))
    session = store.get_session(project, "s")
    assert session.trace_count == 7 and session.span_count == 15
    assert session.input_tokens == 1 + 2 + 3 + 4 + 5 + 9 + 40 + 6
    assert session.output_tokens == 7 and session.error_count == 1
    assert session.cost_usd == pytest.approx(0.1 + 0.2 + 0.3 + 0.4 + 0.5)
    assert session.duration_ms == 650 - 50
    assert session.user_ids == ["u1", "u0"]  # in the order of the turns' starts
    assert (session.first_input, session.last_output) == ('"in 9"', '"out 6"')
    assert [t.trace_id for t in session.traces] == [f"{n:032x}" for n in (9, 1, 2, 3, 4, 5, 6)]
    assert store.list_sessions(project, SessionQuery()).items[0].trace_count == 7


def test_projects_do_not_see_each_other(store: Store):
    a, b = store.create_project("a").id, store.create_project("b").id
    store.write_spans(a, [record(1, 1, session="s")])
    store.write_spans(b, [record(1, 1, session="s"), record(1, 2, 1)])
    assert store.get_trace(a, f"{1:032x}").span_count == 1
    assert store.get_trace(b, f"{1:032x}").span_count == 2
    assert store.get_session(a, "s").span_count == 1
    assert store.list_traces(store.create_project("c").id, TraceQuery()).items == []


def test_paging_is_complete_with_ties(store: Store):
    project = store.create_project("p").id
    # Ten sessions ending at the same instant: the id breaks the tie.
    store.write_spans(project, [record(i, i, start=0, session=f"s{i}") for i in range(1, 11)])
    seen, cursor = [], None
    while True:
        page = store.list_sessions(project, SessionQuery(limit=3, cursor=cursor))
        seen += [s.session_id for s in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert sorted(seen) == sorted(f"s{i}" for i in range(1, 11)) and len(seen) == 10


def test_keys(store: Store):
    project = store.create_project("p")
    assert store.create_project("p") == project  # same name, same project
    key = store.create_key(project.id)
    access = store.access_for_key(key)
    assert access.project == project and access.scope == "full" and access.can_read
    assert store.access_for_key(key + "x") is None
    (info,) = store.list_keys()
    assert key not in info.model_dump_json() and key.startswith(info.prefix)
    assert store.revoke_key(info.id) and not store.revoke_key(info.id)
    assert store.access_for_key(key) is None


def test_ingest_only_keys_and_rotation(store: Store):
    project = store.create_project("p")
    key = store.create_key(project.id, "ingest")
    access = store.access_for_key(key)
    assert access.project == project and access.scope == "ingest" and not access.can_read
    (info,) = store.list_keys()
    successor = store.rotate_key(info.id)
    assert successor and successor != key
    assert store.access_for_key(key) is None  # the old key stops at once
    assert store.access_for_key(successor).scope == "ingest"  # same project and scope
    assert store.rotate_key(info.id) is None  # a revoked key has no successor


def test_data_survives_reopening(backend: str, tmp_path: Path):
    first = _open(backend, tmp_path)
    project = first.create_project("p").id
    key = first.create_key(project)
    first.write_spans(project, [record(1, 1, session="kept")])
    first.close()
    first.close()  # closing twice is harmless
    second = _open(backend, tmp_path)
    try:
        assert second.get_session(project, "kept").trace_count == 1
        assert second.access_for_key(key).project.id == project
    finally:
        second.close()


def test_sqlite_keeps_no_secret_and_one_copy_of_payloads(tmp_path: Path):
    store = open_store(f"sqlite://{tmp_path / 'raw.db'}")
    project = store.create_project("p").id
    key = store.create_key(project)
    payload = '{"marker": "' + "unique-payload-text " * 150 + '"}'
    store.write_spans(
        project,
        [
            record(
                1,
                1,
                input=payload,
                input_source="input.value",
                attributes={"input.value": payload, "k": 1},
            )
        ],
    )
    (span,) = store.get_trace(project, f"{1:032x}").spans
    assert span.attributes == {"input.value": payload, "k": 1}
    store.close()
    assert key.encode() not in (tmp_path / "raw.db").read_bytes()
    # The payload is kept once, compressed (the trace keeps a preview of its start).
    with sqlite3.connect(tmp_path / "raw.db") as conn:
        assert conn.execute(
            "SELECT typeof(input), instr(attributes, 'unique-payload') FROM spans"
        ).fetchone() == ("blob", 0)


def test_sqlite_keeps_short_payloads_as_text(tmp_path: Path):
    store = open_store(f"sqlite://{tmp_path / 'short.db'}")
    project = store.create_project("p").id
    store.write_spans(project, [record(1, 1, input="hi", output="é" * 200, session="s")])
    (span,) = store.get_trace(project, f"{1:032x}").spans
    assert (span.input, span.output) == ("hi", "é" * 200)
    assert store.get_session(project, "s").traces[0].output_preview == "é" * 200
    store.close()
    with sqlite3.connect(tmp_path / "short.db") as conn:
        # 400 bytes of UTF-8: under the threshold, so stored as text.
        assert conn.execute("SELECT typeof(input), typeof(output) FROM spans").fetchone() == (
            "text",
            "text",
        )
