"""The dashboard's per-slice figures on ClickHouse, derived in the background.

A trace's buckets, error, user and session are known only once all its exports have
merged, and a writer reads nothing back, so no insert can keep exact per-bucket
figures. Instead a refresh pass (``refresh``, run by every server now and then and by
tests on demand) finds the five-minute slices whose figures may have changed since the
last pass, recomputes each from the merged trace and session rollups, and inserts it
whole as a new version into ``metric_slices`` (migration 0013), where the newest
version of a slice replaces the older ones. The dashboard then reads a month as a few
thousand small rows (``metric_slices_read.py``).

**What a slice holds.** A trace or session belongs to the slice of its first active
instant, ``start_ns + 999`` (the bucket rule of ``store.metrics``: a bucket ends at its
last microsecond); its row there says in which hour it was last active, so a bucket of
any width counts it in every bucket it was active in, exactly as the lists' time
filter selects it. A session belongs to the slice its first trace starts in, and counts
whole there: its traces, errors and cost over all its traces, whenever they ran.

**Which slices a pass refreshes.** Its watermark is the previous pass's start less
``margin_ns``. A trace with a part written since then (``written_ns``, the ClickHouse
server's clock) may have changed: its start may have moved earlier, its end later, its
session or user or error changed. Its slice before the change lies between its slices
now (a trace's start only moves earlier and its end later), so the pass refreshes every
slice from its first to its last, and, for every session any of its parts names (where
it was and where it went), the slices of all traces that ever named that session (a
session's slice before and after is that of one of them). A delete cannot be found by
its written rows, so it marks its slices in ``metric_dirty_slices`` before deleting
(``mark_traces``).

**Convergence.** A part written at ``t`` on one replica is visible everywhere by ``t +
lag``; a pass starting after that sees it, and, if ``margin_ns`` ≥ the lag (and the
replicas' clock skew), that pass's watermark is at most ``t``, so it refreshes the part's
slices, with a version (its start) higher than any pass that could have missed it. So
once writes stop, the newest version of every slice is computed from everything, by
whichever server; two servers refreshing the same slices insert the same figures.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from threadline.server.model import TOP_ROWS
from threadline.server.store.clickhouse import metric_sources, model_usage

Rows = Callable[[str, dict[str, Any]], list[tuple[Any, ...]]]
Insert = Callable[[str, Sequence[Sequence[Any]], list[str]], None]
Command = Callable[[str], Any]

SLICE_NS = 300 * 10**9
HOUR_NS = 3600 * 10**9
SLICES_PER_HOUR = HOUR_NS // SLICE_NS
# Slices refreshed by one round of statements: a day, so a store's first pass (every
# slice) reads bounded amounts at a time.
_CHUNK = 24 * SLICES_PER_HOUR
# A pass that refreshed at least this many slices merges the table's versions at once.
MERGE_AFTER = _CHUNK
TABLE = "metric_slices"
DIRTY_TABLE = "metric_dirty_slices"
_COLUMNS = [
    "project_id",
    "slice",
    "version",
    "last_hour",
    "trace_counts",
    "users",
    "session_counts",
    "session_figures",
    "sessions",
    "top_sessions",
    "top_cost",
    "top_errors",
    "models",
    "labelled_traces",
    "session_labels",
]


def slice_of(start_ns: int) -> int:
    """The slice a row starting at ``start_ns`` belongs to (its first active instant's)."""
    return (start_ns + 999) // SLICE_NS


def _slices_between(start_ns: int, end_ns: int) -> range:
    # Up to the slice of end + 999: a trace's earlier start lay at most at its end.
    return range(slice_of(start_ns), slice_of(max(start_ns, end_ns)) + 1)


@dataclass(frozen=True, slots=True)
class Pass:
    """What a refresh pass did: when it began (ClickHouse's clock), the slices it
    refreshed, and the watermark the next pass starts from."""

    began_ns: int
    slices: int
    watermark_ns: int


class MetricSlices:
    def __init__(self, rows: Rows, insert: Insert, command: Command) -> None:
        self._rows = rows
        self._insert = insert
        self._command = command

    def figures_up_to(self) -> int | None:
        """Writes made before this instant are in the figures (the newest pass's
        watermark); None before the first pass."""
        ((count, watermark),) = self._rows(
            "SELECT count(), max(watermark_ns) FROM metric_passes", {}
        )
        return int(watermark) if count else None

    def refresh(self, margin_ns: int) -> Pass:
        """Recompute every slice that changed since the last pass (every slice on a
        store's first pass), and record the pass; the next one looks again at what was
        written ``margin_ns`` before this one began."""
        ((began,),) = self._rows("SELECT toUnixTimestamp64Nano(now64(9))", {})
        previous = self.figures_up_to()
        changed = self._every_slice() if previous is None else self._changed_since(previous)
        count = 0
        for project_id, slices in sorted(changed.items()):
            ordered = sorted(slices)
            for i in range(0, len(ordered), _CHUNK):
                chunk = ordered[i : i + _CHUNK]
                self._insert(TABLE, self._recompute(project_id, chunk, began), _COLUMNS)
                count += len(chunk)
        if count >= MERGE_AFTER:
            # Every read keeps the newest version of each slice (FINAL), which costs
            # about twice as much while most slices have two (measured: a month of
            # slices refreshed twice, as a first pass and the one after it leave
            # them). ClickHouse's merges may leave parts of such unequal sizes apart
            # for hours; merging them here costs 0.5-4 s for a month of slices (chDB),
            # and only after a large pass (a store's first, a late import, deletes).
            self._command(f"OPTIMIZE TABLE {TABLE} FINAL")
        # The next pass looks again at what was written within the margin before this
        # one began: a replica may show it only now.
        watermark = began - margin_ns
        self._insert("metric_passes", [[began, watermark]], ["began_ns", "watermark_ns"])
        return Pass(began, count, watermark)

    def mark_traces(self, project_id: int, trace_ids: Sequence[str]) -> None:
        """Before these traces are deleted: mark the slices they and their sessions'
        traces belong to, for the next pass."""
        if not trace_ids:
            return
        params = {"project": project_id, "ids": list(trace_ids)}
        slices: set[int] = set()
        for start, end in self._rows(
            "SELECT min(start_ns), max(end_ns) FROM trace_parts_by_id"
            " WHERE project_id = %(project)s AND trace_id IN %(ids)s GROUP BY trace_id",
            params,
        ):
            slices.update(_slices_between(start, end))
        slices.update(self._session_slices("trace_id IN %(ids)s", params))
        self._insert(
            DIRTY_TABLE, [[project_id, s] for s in sorted(slices)], ["project_id", "slice"]
        )

    # --- which slices --------------------------------------------------------------

    def _every_slice(self) -> dict[int, set[int]]:
        found: dict[int, set[int]] = {}
        for project_id, slices in self._rows(
            f"SELECT project_id, groupUniqArray(intDiv(start_ns + 999, {SLICE_NS}))"
            " FROM trace_times GROUP BY project_id",
            {},
        ):
            found[int(project_id)] = set(slices)
        return found

    def _changed_since(self, watermark: int) -> dict[int, set[int]]:
        found: dict[int, set[int]] = defaultdict(set)
        params: dict[str, Any] = {"since": watermark}
        written = (
            "(project_id, trace_id) IN (SELECT project_id, trace_id FROM trace_parts_by_id"
            " WHERE written_ns >= %(since)s)"
        )
        for project_id, start, end in self._rows(
            "SELECT project_id, min(start_ns), max(end_ns) FROM trace_parts_by_id"
            f" WHERE {written} GROUP BY project_id, trace_id",
            params,
        ):
            found[int(project_id)].update(_slices_between(start, end))
        for project_id, slice_ in self._session_slices_all(written, params):
            found[project_id].add(slice_)
        for project_id, slice_ in self._rows(
            f"SELECT DISTINCT project_id, slice FROM {DIRTY_TABLE} WHERE marked_ns >= %(since)s",
            params,
        ):
            found[int(project_id)].add(int(slice_))
        return found

    def _session_slices(self, traces: str, params: dict[str, Any]) -> set[int]:
        """The slices of every trace that ever named a session that a part of the
        project's traces ``traces`` names."""
        where = f"project_id = %(project)s AND {traces}"
        return {s for _, s in self._session_slices_all(where, params)}

    def _session_slices_all(self, traces: str, params: dict[str, Any]) -> Iterable[tuple[int, int]]:
        named = (
            "SELECT DISTINCT project_id, named FROM trace_parts_by_id"
            " ARRAY JOIN [coalesce(tupleElement(root, 5), ''), tupleElement(first_session, 4)]"
            f" AS named WHERE {traces} AND named != ''"
        )
        members = (
            "SELECT DISTINCT project_id, trace_id FROM session_members"
            f" WHERE (project_id, session_id) IN ({named})"
        )
        for project_id, slice_ in self._rows(
            f"SELECT DISTINCT project_id, intDiv(min(start_ns) + 999, {SLICE_NS})"
            f" FROM trace_parts_by_id WHERE (project_id, trace_id) IN ({members})"
            " GROUP BY project_id, trace_id",
            params,
        ):
            yield int(project_id), int(slice_)

    # --- what a slice holds ----------------------------------------------------------

    def _recompute(self, project_id: int, slices: list[int], version: int) -> list[list[Any]]:
        """The rows of ``slices`` (sorted), computed from the merged rollups."""
        params: dict[str, Any] = {
            "project": project_id,
            "slices": slices,
            "lo": slices[0] * SLICE_NS - 999,
            "hi": (slices[-1] + 1) * SLICE_NS - 999,
        }
        # A trace of these slices has its earliest part start in one of them.
        candidates = (
            "project_id = %(project)s AND trace_id IN (SELECT trace_id FROM trace_times"
            " WHERE project_id = %(project)s AND start_ns >= %(lo)s AND start_ns < %(hi)s"
            f" AND intDiv(start_ns + 999, {SLICE_NS}) IN %(slices)s)"
        )
        wanted = set(slices)
        traces: dict[int, dict[tuple[str | None, int], list[Any]]] = defaultdict(dict)
        slice_of_trace: dict[str, int] = {}
        last_hour: dict[int, int] = {}
        # Each trace as the grouped and narrowed views read it (``labelled_traces``):
        # its figures and labels, its usage by model added below.
        labelled: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
        usage_of: dict[str, list[tuple[Any, ...]]] = {}
        for trace_id, start, end, failed, user, tin, tout, ttotal, cost, tags, meta in self._rows(
            "SELECT trace_id, start_ns, end_ns, failed, user_id, input_tokens,"
            " output_tokens, total_tokens, cost_usd, tags, metadata_text"
            f" FROM ({metric_sources.traces(candidates, labelled=True)})"
            f" WHERE intDiv(start_ns + 999, {SLICE_NS}) IN %(slices)s",
            params,
        ):
            s, last = slice_of(start), end // HOUR_NS
            slice_of_trace[trace_id] = s
            last_hour[s] = max(last_hour.get(s, last), last)
            usage_of[trace_id] = []
            labelled[s].append(
                (trace_id, user, last, int(failed), cost, tin, tout, ttotal, tags, meta)
            )
            figures = [1, int(failed), cost, tin, tout, ttotal]
            cell = traces[s].get((user, last))
            if cell is None:
                traces[s][(user, last)] = figures
            else:
                _add(cell, figures)
        # A session of these slices: named by one of their traces, and started in them.
        named = (
            "SELECT DISTINCT named FROM trace_parts_by_id"
            " ARRAY JOIN [coalesce(tupleElement(root, 5), ''), tupleElement(first_session, 4)]"
            f" AS named WHERE {candidates} AND named != ''"
        )
        members = (
            "project_id = %(project)s AND trace_id IN (SELECT trace_id FROM session_members"
            f" WHERE project_id = %(project)s AND session_id IN ({named}))"
        )
        sessions: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
        session_labels: dict[str, list[tuple[list[str], dict[str, str]]]] = {}
        for session_id, start, end, count, errors, cost, labels in self._rows(
            "SELECT session_id, min(start_ns) AS s_start, max(end_ns), count(),"
            " toUInt64(countIf(failed)), sum(cost_usd), groupArray((tags, metadata_text))"
            f" FROM ({metric_sources.traces(members, labelled=True)})"
            " WHERE session_id IS NOT NULL"
            f" AND session_id IN ({named}) GROUP BY session_id"
            f" HAVING intDiv(s_start + 999, {SLICE_NS}) IN %(slices)s",
            params,
        ):
            s = slice_of(start)
            if s in wanted:
                sessions[s].append((session_id, start, end, count, errors, cost))
                session_labels[session_id] = _distinct_labels(labels)
                last_hour[s] = max(last_hour.get(s, end // HOUR_NS), end // HOUR_NS)
        models: dict[int, dict[str, list[int]]] = defaultdict(dict)
        for trace_id, model, usage in self._rows(
            model_usage.latest_where(
                "trace_id IN (SELECT trace_id FROM trace_times WHERE"
                " project_id = %(project)s AND start_ns >= %(lo)s"
                " AND start_ns < %(hi)s)"
            ),
            params,
        ):
            started_in = slice_of_trace.get(trace_id)
            if started_in is None:
                continue
            cost_spans, cost_pico, tin, tout, ttotal = usage
            usage_of[trace_id].append((model, int(cost_spans > 0), cost_pico, tin, tout, ttotal))
            cell = models[started_in].setdefault(model, [0, 0, 0, 0, 0])
            cell[0] += cost_spans > 0
            cell[1] += cost_pico
            cell[2] += tin
            cell[3] += tout
            cell[4] += ttotal
        return [
            [
                project_id,
                s,
                version,
                last_hour.get(s, s // SLICES_PER_HOUR),
                _by_last_hour(traces[s]),
                [
                    (user, last, count, errors, cost)
                    for (user, last), (count, errors, cost, *_) in traces[s].items()
                    if user is not None
                ],
                _session_counts(sessions[s]),
                [
                    (end // HOUR_NS, n, end - start, cost)
                    for _, start, end, n, _, cost in sessions[s]
                ],
                sorted(sessions[s]),
                _top(sessions[s]),
                max(((r[5], r[0]) for r in sessions[s] if r[5]), default=(0.0, "")),
                max(((r[4], r[0]) for r in sessions[s] if r[4]), default=(0, "")),
                [(model, *cell) for model, cell in sorted(models[s].items())],
                [(*t, sorted(usage_of[t[0]])) for t in sorted(labelled[s], key=_first)],
                [(r[0], session_labels[r[0]]) for r in sorted(sessions[s])],
            ]
            for s in slices
        ]


def _first(row: tuple[Any, ...]) -> Any:
    return row[0]


def _distinct_labels(
    labels: Sequence[tuple[list[str], dict[str, str]]],
) -> list[tuple[list[str], dict[str, str]]]:
    """A session's traces' distinct (tags, metadata), in a fixed order: the groups it
    is in follow from these."""
    found = {(tuple(tags), tuple(sorted(meta.items()))): (tags, meta) for tags, meta in labels}
    return [found[key] for key in sorted(found)]


def _add(cell: list[Any], more: Sequence[Any]) -> None:
    """Add (count, errors, cost or None, input, output, total) ``more`` to ``cell``."""
    cell[0] += more[0]
    cell[1] += more[1]
    if more[2] is not None:
        cell[2] = more[2] if cell[2] is None else cell[2] + more[2]
    for i in (3, 4, 5):
        cell[i] += more[i]


def _by_last_hour(cells: dict[tuple[str | None, int], list[Any]]) -> list[tuple[Any, ...]]:
    found: dict[int, list[Any]] = {}
    for (_, last), cell in cells.items():
        if last in found:
            _add(found[last], cell)
        else:
            found[last] = list(cell)
    return [(last, *cell) for last, cell in sorted(found.items())]


def _session_counts(sessions: list[tuple[Any, ...]]) -> list[tuple[int, int, int]]:
    found: dict[int, list[int]] = {}
    for _, _, end, _, errors, _ in sessions:
        cell = found.setdefault(end // HOUR_NS, [0, 0])
        cell[0] += 1
        cell[1] += errors > 0
    return [(last, count, errors) for last, (count, errors) in sorted(found.items())]


def _top(sessions: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The slice's sessions that can be in a range's top lists: the ten costliest and
    the ten with most errors, ranked as ``store.metrics`` ranks (ties: session id,
    descending)."""
    by_cost = sorted(
        (r for r in sessions if r[5] is not None and r[5] > 0),
        key=lambda r: (r[5], r[0]),
        reverse=True,
    )[:TOP_ROWS]
    by_errors = sorted((r for r in sessions if r[4] > 0), key=lambda r: (r[4], r[0]), reverse=True)[
        :TOP_ROWS
    ]
    return sorted(set(by_cost) | set(by_errors))
