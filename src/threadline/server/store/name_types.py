"""One score name, one type: the rule every score write keeps, whichever store holds it.

A name's type is its configuration's if it has one, else its newest stored score's,
else that of the first score of the write to use it. A score of another type would mix
values that cannot be averaged or filtered together (``helpful>=4`` over true/false),
so it is refused with 409 (``Conflict``), and so is a configuration whose type differs
from the scores its name holds. Each store applies the rule where it writes: SQLite
inside the write transaction (its single writer makes read and write one step),
ClickHouse just before its insert (``clickhouse/scores.py`` says what holds there).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from threadline.server.errors import Conflict
from threadline.server.model import ScoreRecord


class NameTypes:
    """The type of each score name of one project, as a write must keep it.

    ``stored`` reads the type a name's newest score holds (None: it has none), once a
    name; ``configured`` gives the configured names' types, which win over what was
    written before them."""

    def __init__(self, stored: Callable[[str], str | None], configured: Mapping[str, str]):
        self._stored = stored
        self._types: dict[str, str | None] = dict(configured)

    def held(self, name: str) -> str | None:
        """The type ``name`` holds, or None: any type may be its first."""
        if name not in self._types:
            self._types[name] = self._stored(name)
        return self._types[name]

    def refusal(self, record: ScoreRecord) -> str | None:
        """Why ``record`` may not be written (its name holds another type), or None; a
        record let through sets its name's type for the records after it."""
        held = self.held(record.name)
        if held is None:
            self._types[record.name] = record.data_type
        elif held != record.data_type:
            return (
                f"score {record.name!r} holds {held} values: a {record.data_type} score"
                f" cannot join them (a name keeps its first score's type; use another name)"
            )
        return None

    def check(self, records: Iterable[ScoreRecord]) -> None:
        """``Conflict`` (409) on the first record whose name holds another type."""
        for record in records:
            refusal = self.refusal(record)
            if refusal is not None:
                raise Conflict(refusal)

    def prepared(self, record: ScoreRecord) -> None:
        """Note ``record``'s type for its name, without reading the store: the scores
        after it in one request take that type when they give none (``scoring.prepare``).
        The write itself still checks every record against what is stored."""
        if self._types.get(record.name) is None:
            self._types[record.name] = record.data_type


def check_config(name: str, data_type: str, stored: str | None) -> None:
    """``Conflict`` when a configuration of ``name`` as ``data_type`` would disagree with
    the type its scores hold (``stored``): new scores would take the configuration's
    type, and the name would mix two."""
    if stored is not None and stored != data_type:
        raise Conflict(
            f"score {name!r} holds {stored} values: it cannot be configured as {data_type}"
            " (a name keeps one type; delete its scores first, or configure another name)"
        )
