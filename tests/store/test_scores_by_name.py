"""A name's scores newest first (SQLite migration 0027, ClickHouse 0026): the score type
read of the Users tab and the dashboard (``list_scores`` with a name, limit 1) goes
straight to the name's latest score, however long ago it was written, rather than
walking every later score back from now (SQLite) or grouping every score row of the
project (ClickHouse); a session's or trace's scores of a name are still read by the
session or trace."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.store.clickhouse_statements import own_store, recorded_with_params
from tests.store.query_plans import statement_plans
from tests.store.test_contract import record, score
from threadline.server.model import ScoreQuery
from threadline.server.store.sqlite.store import SQLiteStore


def _plans(store: SQLiteStore, run: Callable[[], object]) -> list[str]:
    """The plan steps of the statements ``run`` makes the store read with."""
    return [step for steps in statement_plans(store, run).values() for step in steps]


def test_a_names_latest_score_is_read_by_the_name(tmp_path: Path):
    store = SQLiteStore(tmp_path / "t.db")
    project = store.create_project("p").id
    try:
        store.write_spans(project, [record(i, i, session=f"s{i}") for i in range(1, 4)])
        store.write_scores(
            project,
            [score("old", "legacy", True, session="s1", at=1)]
            + [
                score(f"n{i}", "stars", i % 5 + 1, session=f"s{i % 3 + 1}", at=10 + i)
                for i in range(60)
            ],
        )

        def latest(**fields: object) -> list[str]:
            query = ScoreQuery.model_validate({"limit": 1, **fields})
            return [s.id for s in store.list_scores(project, query).items]

        assert latest(name="legacy") == ["old"]
        assert latest(name="stars") == ["n59"]
        assert latest(name="nothing") == []
        assert latest(name="stars", session_id="s2") == ["n58"]

        by_name = _plans(store, lambda: latest(name="legacy"))
        assert by_name == ["SEARCH scores USING INDEX scores_by_name (project_id=? AND name=?)"]
        # With a filter on what else the index does not hold, still by the name.
        assert _plans(store, lambda: latest(name="legacy", source="api")) == by_name
        # A session's scores (its own and its turns') are few: by the session and by its
        # traces, the name checked on each; nothing scanned.
        of_session = _plans(store, lambda: latest(name="stars", session_id="s2"))
        assert [step for step in of_session if step.startswith(("SEARCH", "SCAN"))] == [
            "SEARCH scores USING INDEX scores_by_session (project_id=? AND session_id=?)",
            "SEARCH traces USING COVERING INDEX traces_by_session (project_id=? AND session_id=?)",
            "SEARCH scores USING INDEX scores_by_trace (project_id=? AND trace_id=?)",
        ]
        trace_id = f"{1:032x}"
        assert _plans(store, lambda: latest(name="stars", trace_id=trace_id)) == [
            "SEARCH scores USING INDEX scores_by_trace (project_id=? AND trace_id=?)"
        ]
    finally:
        store.close()


@pytest.mark.clickhouse
def test_clickhouse_reads_a_names_latest_score_by_its_few_ids(tmp_path: Path):
    """ClickHouse (migration 0026): the type read walks the name's entries in
    ``scores_by_name`` and reads back only the candidates' rows of ``scores``, by id,
    rather than every score row of the project."""
    with own_store(tmp_path) as store:
        project = store.create_project("p").id
        store.write_scores(
            project,
            [score("old", "legacy", True, session="s1", at=1)]
            + [score(f"n{i:02d}", "stars", i % 5 + 1, session="s2", at=10 + i) for i in range(60)],
        )
        store.write_scores(project, [score("n59", "other", 1, session="s2", at=69)])
        statements = recorded_with_params(store, scores=True)

        def latest(name: str) -> list[str]:
            statements.clear()
            return [s.id for s in store.list_scores(project, ScoreQuery(name=name, limit=1)).items]

        assert latest("legacy") == ["old"]
        reads = [(sql, p) for sql, p in statements if " FROM scores " in sql]
        assert reads and all(len(p["ids"]) <= 2 for _, p in reads), reads
        # n59 moved to another name: its stale entry is skipped, n58 is the latest.
        assert latest("stars") == ["n58"]
        reads = [(sql, p) for sql, p in statements if " FROM scores " in sql]
        assert reads and all(len(p["ids"]) <= 4 for _, p in reads), reads
        assert latest("other") == ["n59"]
