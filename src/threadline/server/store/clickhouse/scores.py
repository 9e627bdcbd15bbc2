"""Scores, score rollups, score configurations, notes and allowed origins in ClickHouse.

Append-only like the rest of the ClickHouse store (``migrations/0003_scores.sql``): a
write, a replacement and a deletion of a score each add a row, and a score is its row
with the newest ``written_ns``. After inserting, a writer recomputes the rollup of every
(target, name) it touched from the current state of every score ever in it, with the
shared rule of ``store/score_rollups.py``, and inserts it with version = the number of
score rows it saw; the most complete rollup wins, as for trace and session rollups.
Lists and filters read ``score_rollups`` only.
"""

from __future__ import annotations

import builtins
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from threadline.server.model import (
    Note,
    NoteIn,
    Page,
    Score,
    ScoreConfig,
    ScoreFilter,
    ScoreQuery,
    ScoreRecord,
    ScoreSummary,
    stored_config,
)
from threadline.server.scoring import score as present_score
from threadline.server.store import cursors, sorts
from threadline.server.store.base import StoredNote
from threadline.server.store.clickhouse.queries import Filters
from threadline.server.store.columns import Columns
from threadline.server.store.name_types import NameTypes, check_config
from threadline.server.store.record_columns import (
    NOTES,
    SCORE_CONFIGS,
    SCORE_ROLLUPS,
    SCORES,
    new_note,
)
from threadline.server.store.record_columns import note as present_note
from threadline.server.store.score_rollups import ScoreRollup, roll_up_scores

Rows = Callable[[str, dict[str, Any]], list[tuple[Any, ...]]]
Insert = Callable[[str, list[list[Any]], list[str]], None]

# Ids or targets per statement: keeps each statement well under max_query_size.
_IN_CHUNK = 1000
TABLES = ("scores", "score_rollups", "score_configs", "notes", "project_origins")

# A row of ``latest_scores``, and of an insert: the project, the record, the target it
# rolls up into, and whether this row deletes it. All but the first two are versioned.
_LATEST_SCORE = Columns("project_id") + SCORES + Columns("target_kind", "target_id", "deleted")
_SCORE_FIELDS = _LATEST_SCORE.names[2:]
_SCORE_INSERT_COLUMNS = list(_LATEST_SCORE.names)
# A rollup's versioned fields, after its (target, name).
ROLLUP_FIELDS = (*SCORE_ROLLUPS.names[3:], "average")
_ROLLUP_INSERT_COLUMNS = ["project_id", *SCORE_ROLLUPS.names, "average", "version"]
_CONFIG_FIELDS = (*SCORE_CONFIGS.names[1:], "deleted")
_NOTE_FIELDS = (*NOTES.names[1:], "deleted")
_NOTE_INSERT_COLUMNS = ["project_id", *NOTES.names, "deleted"]


def _unpacked(fields: tuple[str, ...]) -> str:
    return ", ".join(f"tupleElement(row, {i}) AS {f}" for i, f in enumerate(fields, 1))


def latest_scores(where: str) -> str:
    """Each score's newest row (deletions included: callers skip ``deleted``), among the
    scores with a row meeting ``where``. A deletion wins a tie with the row it copies."""
    return (
        f"SELECT project_id, id, {_unpacked(_SCORE_FIELDS)} FROM ("
        f"SELECT project_id, id, argMax(({', '.join(_SCORE_FIELDS)}), (written_ns, deleted))"
        f" AS row FROM scores WHERE {where} GROUP BY project_id, id)"
    )


def latest_rollups(where: str) -> str:
    """Each (target, name)'s newest rollup among those meeting ``where``, as
    target_kind, target_id, name, row (``ROLLUP_FIELDS``); emptied ones left out."""
    return (
        "SELECT target_kind, target_id, name, row FROM (SELECT target_kind, target_id, name,"
        f" argMax(({', '.join(ROLLUP_FIELDS)}), version) AS row FROM score_rollups"
        f" WHERE {where} GROUP BY target_kind, target_id, name) WHERE tupleElement(row, 1) > 0"
    )


def _latest(row: Sequence[Any]) -> tuple[ScoreRecord, bool]:
    """A row of ``latest_scores`` as a record, and whether that row deletes it."""
    named = _LATEST_SCORE.named(row)
    return SCORES.read(named, ScoreRecord), bool(named["deleted"])


def rollup_of(row: Sequence[Any]) -> ScoreRollup:
    """A row of ``latest_rollups``."""
    kind, target_id, name, fields = row
    return SCORE_ROLLUPS.read((kind, target_id, name, *fields), ScoreRollup)


def by_name(rollups: Iterable[ScoreRollup]) -> dict[str, ScoreSummary]:
    """One target's summaries per score name, in name order."""
    return {r.name: r.summary() for r in sorted(rollups, key=lambda r: r.name)}


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), _IN_CHUNK):
        yield items[i : i + _IN_CHUNK]


class ClickHouseScores:
    """The score half of ``ClickHouseStore``, over its query and insert functions."""

    def __init__(self, rows: Rows, insert: Insert):
        self._rows = rows
        self._insert = insert

    # --- scores -------------------------------------------------------------------

    def write(
        self,
        project_id: int,
        records: Sequence[ScoreRecord],
        check_types: bool = True,
        configs: Sequence[ScoreConfig] | None = None,
    ) -> None:
        """Insert ``records`` and roll their targets up again. Their names' types are
        checked first (``name_types.py``: ``Conflict``, nothing written), as late as
        can be: ClickHouse has no transaction, so two writers giving a new name two
        types at once can both pass between this read and the insert (a few ms); the
        name then holds both, and every later write is held to its newest score's type
        (newest by created time, then id: the same answer from any server). ``configs``:
        the project's configurations as the caller read them for these scores (a
        request's route does, to check values): not read again (a 6-22 ms read)."""
        if check_types:
            configured = self.list_configs(project_id) if configs is None else configs
            NameTypes(
                lambda name: self.stored_type(project_id, name),
                {c.name: c.data_type for c in configured},
            ).check(records)
        latest: dict[str, ScoreRecord] = {}
        for record in records:  # the last of one id in a batch wins, as separate writes would
            latest[record.id] = record
        stored = self._stored(project_id, list(latest))
        touched: set[tuple[str, str, str]] = set()
        data = []
        for record in latest.values():
            before = stored.get(record.id)
            touched.add((*record.target, record.name))
            if before is not None and not before[1]:
                touched.add((*before[0].target, before[0].name))
                if before[0].same_score(record):
                    continue
            data.append(self._score_row(project_id, record, deleted=False))
        self._insert("scores", data, _SCORE_INSERT_COLUMNS)
        # Rolled up even when nothing was new: the write may retry one whose server
        # failed between its score insert and its rollups.
        self._refresh(project_id, touched)

    def delete_annotations(self, project_id: int, column: str, ids: Sequence[str]) -> None:
        """Delete the scores and notes whose ``column`` (trace_id or session_id) is among
        ``ids`` (a deleted copy of each, as ``delete`` adds) and roll up their targets
        again."""
        if not ids:
            return
        wanted = set(ids)
        touched: set[tuple[str, str, str]] = set()
        data = []
        notes = []
        for chunk in _chunks(ids):
            params = {"project": project_id, "ids": list(chunk)}
            for row in self._rows(
                latest_scores(
                    "project_id = %(project)s AND id IN (SELECT id FROM scores"
                    f" WHERE project_id = %(project)s AND {column} IN %(ids)s)"
                ),
                params,
            ):
                record, deleted = _latest(row)
                # Picked by any of its rows: only its newest one says where it is now.
                if getattr(record, column) not in wanted:
                    continue
                touched.add((*record.target, record.name))
                if not deleted:
                    data.append(self._score_row(project_id, record, deleted=True))
            notes += [
                _note_row(project_id, note, deleted=True)
                for note in self._notes(project_id, f"{column} IN %(ids)s", ids=list(chunk))
            ]
        self._insert("scores", data, _SCORE_INSERT_COLUMNS)
        self._insert("notes", notes, _NOTE_INSERT_COLUMNS)
        self._refresh(project_id, touched)

    @staticmethod
    def _score_row(project_id: int, r: ScoreRecord, deleted: bool) -> list[Any]:
        return [project_id, *SCORES.values(r), *r.target, int(deleted)]

    def _stored(self, project_id: int, ids: Sequence[str]) -> dict[str, tuple[ScoreRecord, bool]]:
        """Each stored score among ``ids``, newest row, with whether that row deletes it."""
        found: dict[str, tuple[ScoreRecord, bool]] = {}
        for chunk in _chunks(ids):
            for row in self._rows(
                latest_scores("project_id = %(project)s AND id IN %(ids)s"),
                {"project": project_id, "ids": list(chunk)},
            ):
                record, deleted = _latest(row)
                found[record.id] = (record, deleted)
        return found

    def get(self, project_id: int, ids: Sequence[str]) -> dict[str, Score]:
        return {
            score_id: present_score(record)
            for score_id, (record, deleted) in self._stored(project_id, ids).items()
            if not deleted
        }

    def delete(self, project_id: int, score_id: str) -> bool:
        found = self._stored(project_id, [score_id]).get(score_id)
        if found is None:
            return False
        record, deleted = found
        if not deleted:
            self._insert(
                "scores", [self._score_row(project_id, record, deleted=True)], _SCORE_INSERT_COLUMNS
            )
        # A deletion found done is rolled up again too: its server may have failed
        # before the rollup.
        self._refresh(project_id, {(*record.target, record.name)})
        return not deleted

    def _refresh(self, project_id: int, touched: Iterable[tuple[str, str, str]]) -> None:
        """Recompute the rollups of ``touched`` (target kind, target id, name) from every
        score ever in them, read after this writer's insert was acknowledged."""
        targets = sorted(touched)
        if not targets:
            return
        members: dict[tuple[str, str, str], set[str]] = defaultdict(set)
        current: dict[str, tuple[ScoreRecord, bool]] = {}
        row_counts: dict[str, int] = {}
        for chunk in _chunks(targets):
            for row in self._rows(
                f"SELECT id, argMax(({', '.join(_SCORE_FIELDS)}), (written_ns, deleted)),"
                " count(), groupUniqArray((target_kind, target_id, name)) FROM scores"
                " WHERE project_id = %(project)s AND id IN (SELECT id FROM score_targets"
                " WHERE project_id = %(project)s AND (target_kind, target_id, name) IN %(t)s)"
                " GROUP BY id",
                {"project": project_id, "t": [tuple(t) for t in chunk]},
            ):
                score_id, fields, rows_seen, ever = row
                current[score_id] = _latest((project_id, score_id, *fields))
                row_counts[score_id] = rows_seen
                for target in ever:
                    members[tuple(target)].add(score_id)
        data = []
        for kind, target_id, name in targets:
            ids = members.get((kind, target_id, name), set())
            scores = [
                record
                for record, deleted in (current[i] for i in ids)
                if not deleted and record.target == (kind, target_id) and record.name == name
            ]
            version = sum(row_counts[i] for i in ids)
            rollup = roll_up_scores(kind, target_id, name, scores) or ScoreRollup(
                kind, target_id, name, 0, 0, None, None, None
            )
            data.append([project_id, *SCORE_ROLLUPS.values(rollup), rollup.average, version])
        self._insert("score_rollups", data, _ROLLUP_INSERT_COLUMNS)

    def list(self, project_id: int, query: ScoreQuery) -> Page[Score]:
        after = (
            cursors.decode(query.cursor, int, str, made_by=sorts.SCORES_BY_CREATION)
            if query.cursor
            else None
        )
        if query.name and not (
            query.session_id or query.trace_id or query.span_id or query.trace_ids
        ):
            records = self._of_name(project_id, query.name, query.source, query.limit + 1, after)
        else:
            records = self._matching(project_id, query, after)
        page, next_cursor = cursors.page(
            records, query.limit, lambda r: (r.created_ns, r.id), made_by=sorts.SCORES_BY_CREATION
        )
        return Page[Score](items=[present_score(r) for r in page], next_cursor=next_cursor)

    def stored_type(self, project_id: int, name: str) -> str | None:
        """The type ``name``'s newest score holds, or None."""
        newest = self._of_name(project_id, name, None, 1, None)
        return newest[0].data_type if newest else None

    def _of_name(
        self,
        project_id: int,
        name: str,
        source: str | None,
        wanted: int,
        after: tuple[int, str] | None,
    ) -> builtins.list[ScoreRecord]:
        """The first ``wanted`` current scores of ``name`` (and ``source``), newest first,
        below ``after``: walks ``scores_by_name`` back in stretches (doubling: the first
        is usually all there is) and keeps an entry only if its score's newest row still
        has that name and created time and is not deleted, so each current score is
        taken once, at its own place (an entry not merged yet with its copy is taken
        once too), and a stale entry (the score replaced, moved or deleted since) is
        skipped."""
        found: builtins.list[ScoreRecord] = []
        stretch = wanted
        while True:
            params: dict[str, Any] = {"project": project_id, "name": name, "n": stretch}
            below = ""
            if after is not None:
                below = " AND (created_ns, id) < (%(created)s, %(id)s)"
                params.update(created=after[0], id=after[1])
            # (Not DISTINCT: that reads the name's whole range before sorting; in key
            # order, the range is read from its end and only as far as the limit.)
            entries = self._rows(
                "SELECT created_ns, id FROM scores_by_name"
                f" WHERE project_id = %(project)s AND name = %(name)s{below}"
                " ORDER BY created_ns DESC, id DESC LIMIT %(n)s",
                params,
            )
            current = {
                record.id: record
                for record, deleted in self._stored(project_id, [i for _, i in entries]).values()
                if not deleted and record.name == name and source in (None, record.source)
            }
            for created_ns, score_id in entries:
                record = current.get(score_id)
                if record is None or record.created_ns != created_ns:
                    continue  # a stale entry (its score's own may come later), or taken
                del current[score_id]
                found.append(record)
                if len(found) == wanted:
                    return found
            if len(entries) < stretch:
                return found
            after = (entries[-1][0], entries[-1][1])
            stretch *= 2

    def _matching(
        self, project_id: int, query: ScoreQuery, after: tuple[int, str] | None
    ) -> builtins.list[ScoreRecord]:
        """The first ``query.limit + 1`` current scores ``query`` picks, newest first,
        below ``after``, from the newest rows of every score with a row that matches."""
        f = Filters(project_id)
        if query.session_id and query.session_own:
            f.add(f"session_id = {f.param(query.session_id)} AND trace_id IS NULL")
        elif query.session_id:
            # A session's scores are those written with its id and those on its traces
            # (``session_members``, by its sort key), however they were written: a turn's
            # score written with its trace id alone, before or after the trace, is the
            # session's too. Resolved here, at read time, so a write still never reads.
            session = f.param(query.session_id)
            f.add(
                f"(session_id = {session} OR trace_id IN (SELECT trace_id FROM"
                f" session_members WHERE project_id = %(project)s AND session_id = {session}))"
            )
        for column in ("trace_id", "span_id", "name", "source"):
            value = getattr(query, column)
            if value:
                value = value.lower() if column in ("trace_id", "span_id") else value
                f.add(f"{column} = {f.param(value)}")
        if query.trace_ids:
            f.add(f"trace_id IN {f.param([t.lower() for t in query.trace_ids])}")
        # A score whose newest row matches has a row that matches: the conditions pick
        # the scores to read (all their rows, or an older row could pass for the
        # newest), then hold on their newest rows.
        inner = "project_id = %(project)s"
        if f.where:
            inner += (
                " AND id IN (SELECT id FROM scores WHERE project_id = %(project)s AND "
                + " AND ".join(f.where)
                + ")"
            )
        f.add("deleted = 0")
        if after is not None:
            f.add(f"(created_ns, id) < ({f.param(after[0])}, {f.param(after[1])})")
        found = self._rows(
            f"SELECT * FROM ({latest_scores(inner)}) WHERE {f.sql()}"
            f" ORDER BY created_ns DESC, id DESC LIMIT {f.param(query.limit + 1)}",
            f.params,
        )
        return [_latest(row)[0] for row in found]

    # --- summaries and filters (rollups only) ---------------------------------------

    def summaries(
        self, project_id: int, kind: str, ids: Sequence[str]
    ) -> dict[str, dict[str, ScoreSummary]]:
        """Per target id of ``kind``, its summary per score name (the page's rows only)."""
        out: dict[str, dict[str, ScoreSummary]] = defaultdict(dict)
        for chunk in _chunks(list(ids)):
            for row in self._rows(
                latest_rollups(
                    "project_id = %(project)s AND target_kind = %(kind)s AND target_id IN %(ids)s"
                )
                + " ORDER BY name",
                {"project": project_id, "kind": kind, "ids": list(chunk)},
            ):
                rollup = rollup_of(row)
                out[rollup.target_id][rollup.name] = rollup.summary()
        return out

    @staticmethod
    def filter_conditions(
        f: Filters,
        kind: str,
        id_column: str,
        filters: Sequence[ScoreFilter],
        among: str | None = None,
    ) -> builtins.list[str]:
        """A condition on ``id_column`` (a session or trace id) for each score filter:
        membership in the matching targets of that name's newest rollups. ``among`` (a
        parenthesised subquery): the ids the rows filtered can have, such as a window's
        (the rollups are sorted by name, then target: only those targets' are read,
        not every rollup of the name)."""
        conditions = []
        targets = "" if among is None else f" AND target_id IN {among}"
        for flt in filters:
            matching = (
                "SELECT target_id FROM ("
                + latest_rollups(
                    f"project_id = %(project)s AND target_kind = {f.param(kind)}"
                    f" AND name = {f.param(flt.name)}{targets}"
                )
                + ")"
            )
            if flt.missing:
                conditions.append(f"{id_column} NOT IN ({matching})")
                continue
            op = "=" if flt.op == "=" else flt.op
            if isinstance(flt.value, str):
                op = "=" if flt.op == "=" else "!="
                element = ROLLUP_FIELDS.index("label") + 1
            else:
                element = ROLLUP_FIELDS.index("average") + 1
            conditions.append(
                f"{id_column} IN ({matching} WHERE tupleElement(row, {element})"
                f" {op} {f.param(flt.value)})"
            )
        return conditions

    # --- configurations -------------------------------------------------------------

    def list_configs(self, project_id: int) -> builtins.list[ScoreConfig]:
        return [
            SCORE_CONFIGS.read(row, stored_config, labels=list)
            for row in self._rows(
                f"SELECT name, {_unpacked(_CONFIG_FIELDS)} FROM (SELECT name,"
                f" argMax(({', '.join(_CONFIG_FIELDS)}), (written_ns, deleted)) AS row"
                " FROM score_configs WHERE project_id = %(project)s GROUP BY name)"
                " WHERE deleted = 0 ORDER BY name",
                {"project": project_id},
            )
        ]

    def put_config(self, project_id: int, c: ScoreConfig, deleted: bool = False) -> None:
        """Insert ``c`` as it is (a copy's, or a deletion's); ``put_checked_config``
        for a configuration a client gives."""
        self._insert(
            "score_configs",
            [[project_id, *SCORE_CONFIGS.values(c), int(deleted)]],
            ["project_id", *SCORE_CONFIGS.names, "deleted"],
        )

    def put_checked_config(self, project_id: int, c: ScoreConfig) -> None:
        """``Conflict`` when ``c``'s name holds scores of another type, else insert it
        (a score of another type written between the read and the insert can pass)."""
        check_config(c.name, c.data_type, self.stored_type(project_id, c.name))
        self.put_config(project_id, c)

    def delete_config(self, project_id: int, name: str) -> bool:
        config = next((c for c in self.list_configs(project_id) if c.name == name), None)
        if config is None:
            return False
        self.put_config(project_id, config, deleted=True)
        return True

    # --- notes ----------------------------------------------------------------------

    def add_note(self, project_id: int, note: NoteIn) -> Note:
        stored = new_note(note, time.time_ns())
        self.load_notes(project_id, [stored])
        return present_note(stored)

    def load_notes(self, project_id: int, notes: Sequence[StoredNote]) -> None:
        """Insert notes as they are, ids included (a note inserted twice is one)."""
        self._insert(
            "notes", [_note_row(project_id, n, deleted=False) for n in notes], _NOTE_INSERT_COLUMNS
        )

    def _notes(self, project_id: int, where: str, **params: Any) -> builtins.list[StoredNote]:
        """Notes matching ``where``, newest state, not deleted."""
        found = self._rows(
            f"SELECT id, {_unpacked(_NOTE_FIELDS)} FROM (SELECT id,"
            f" argMax(({', '.join(_NOTE_FIELDS)}), deleted) AS row FROM notes"
            f" WHERE project_id = %(project)s AND {where} GROUP BY id)"
            " WHERE deleted = 0 ORDER BY created_ns, id",
            {"project": project_id, **params},
        )
        return [NOTES.read(row, StoredNote) for row in found]

    def list_notes(self, project_id: int, session_id: str) -> builtins.list[Note]:
        notes = self._notes(project_id, "session_id = %(s)s", s=session_id)
        return [present_note(n) for n in notes]

    def stored_notes(self, project_id: int) -> builtins.list[StoredNote]:
        return self._notes(project_id, "1")

    def delete_note(self, project_id: int, note_id: str) -> bool:
        found = self._notes(project_id, "id = %(id)s", id=note_id)
        if not found:
            return False
        self._insert("notes", [_note_row(project_id, found[0], deleted=True)], _NOTE_INSERT_COLUMNS)
        return True

    # --- allowed origins --------------------------------------------------------------

    def allowed_origins(self, project_id: int) -> builtins.list[str]:
        found = self._rows(
            "SELECT argMax(origins, written_ns) FROM project_origins"
            " WHERE project_id = %(project)s",
            {"project": project_id},
        )
        return list(found[0][0]) if found else []

    def set_allowed_origins(self, project_id: int, origins: Sequence[str]) -> None:
        self._insert(
            "project_origins",
            [[project_id, sorted(set(origins))]],
            ["project_id", "origins"],
        )

    # --- migration ----------------------------------------------------------------------

    def iter_records(self, batch_size: int) -> Iterator[tuple[int, builtins.list[ScoreRecord]]]:
        """Every current score as (project id, a batch), in (project, id) order."""
        after: tuple[int, str] = (0, "")
        while True:
            found = self._rows(
                f"SELECT * FROM ({latest_scores('(project_id, id) > (%(p)s, %(i)s)')})"
                " WHERE deleted = 0 ORDER BY project_id, id LIMIT %(n)s",
                {"p": after[0], "i": after[1], "n": batch_size},
            )
            if not found:
                return
            by_project: dict[int, list[ScoreRecord]] = defaultdict(list)
            for row in found:
                by_project[_LATEST_SCORE.named(row)["project_id"]].append(_latest(row)[0])
            last = _LATEST_SCORE.named(found[-1])
            after = (last["project_id"], last["id"])
            yield from by_project.items()


def _note_row(project_id: int, note: StoredNote, *, deleted: bool) -> list[Any]:
    return [project_id, *NOTES.values(note), int(deleted)]
