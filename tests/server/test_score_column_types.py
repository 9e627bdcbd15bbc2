"""A list's score column types, kept a while per name and process (``WrittenTypes``)."""

from __future__ import annotations

from threadline.server.score_types import WrittenTypes


def test_a_names_type_is_read_once_and_a_name_without_scores_again() -> None:
    reads: list[str] = []

    def read(found: str | None):
        def once() -> str | None:
            reads.append(str(found))
            return found

        return once

    types = WrittenTypes(limit=2)
    assert types.get(1, "resolved", read("boolean")) == "boolean"
    assert types.get(1, "resolved", read("numeric")) == "boolean"  # kept, not read
    assert types.get(2, "resolved", read("numeric")) == "numeric"  # another project's
    assert types.get(1, "gone", read(None)) is None
    assert types.get(1, "gone", read("categorical")) == "categorical"  # None is not kept
    assert reads == ["boolean", "numeric", "None", "categorical"]
    # Past the limit the names kept are dropped, and read again when next asked.
    assert types.get(1, "resolved", read("boolean")) == "boolean"
    assert reads[-1] == "boolean"


def test_a_names_type_is_read_again_once_old_or_forgotten() -> None:
    now = [100.0]
    types = WrittenTypes(max_age=60.0, clock=lambda: now[0])
    assert types.get(1, "verdict", lambda: "boolean") == "boolean"
    assert types.get(2, "verdict", lambda: "boolean") == "boolean"
    now[0] = 159.9
    assert types.get(1, "verdict", lambda: "numeric") == "boolean"  # still fresh
    now[0] = 160.0
    assert types.get(1, "verdict", lambda: "numeric") == "numeric"  # a minute old: read
    assert types.get(1, "verdict", lambda: "categorical") == "numeric"  # kept anew
    assert types.get(2, "verdict", lambda: "boolean") == "boolean"  # read anew too
    # Forgetting a project drops its names only.
    types.forget(1)
    assert types.get(1, "verdict", lambda: "categorical") == "categorical"
    assert types.get(2, "verdict", lambda: "numeric") == "boolean"
    # A name whose scores are gone reads None, and drops what was kept.
    now[0] = 300.0
    assert types.get(1, "verdict", lambda: None) is None
    assert types.get(1, "verdict", lambda: "boolean") == "boolean"
