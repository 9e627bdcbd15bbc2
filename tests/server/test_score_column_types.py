"""A list's score column types, read once per name and process (``WrittenTypes``)."""

from __future__ import annotations

from threadline.server.web.score_columns import WrittenTypes


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
