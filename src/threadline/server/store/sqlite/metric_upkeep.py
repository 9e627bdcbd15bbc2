"""The dashboard's per-bucket aggregates (migration 0010) kept up to date as ingest
writes trace rollups: each trace written takes back what its old rollup and usage by
model added and adds its new ones, in the same transaction. The usage by model is kept
in the trace's row (``model_usage.py``), worked out before the row is written.

A batch's changes are added up in memory first (``Changes``), its sessions' with its
traces' (``session_writes.py`` adds theirs), so a batch writes one row per bucket (hour,
day, model, user) it changed rather than one per trace or session: a batch of live
traffic changes a handful of hours, and in a backfill a session and its traces mostly
share their hours. A trace deleted (a delete, retention) is taken back by a trigger
(0010), which sees the row as SQLite deletes it.

What a batch's traces add if none of them was stored before (the usual case), and each
one's usage by model for its row, is worked out when the batch is prepared
(``new_traces``, in an ingest worker process: ``span_batch.py``), not in the write
transaction, which every export waits for in turn: the writer takes back the part of
the traces it finds stored, and keeps those as above. It was a third of what the
aggregates cost the server's own process at 1M spans (docs/benchmarks.md, round 14).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from threadline.server.store.metrics import WIDTH_NS
from threadline.server.store.model_usage import ModelSpan, picodollars
from threadline.server.store.rollups import TraceRollup
from threadline.server.store.sqlite import metric_log, metric_scores, model_usage
from threadline.server.store.sqlite.driver import sqlite3

HOUR_NS = WIDTH_NS["hour"]
DAY_NS = WIDTH_NS["day"]
# A bucket ends at its last microsecond: a row starting in the sub-microsecond after it
# counts from the next bucket (store/metrics.py).
SLACK_NS = 999


def batch_usage(
    conn: sqlite3.Connection,
    project_id: int,
    before: Mapping[str, TraceRollup],
    written: Sequence[TraceRollup],
    batch: Mapping[str, Sequence[ModelSpan]],
    all_new: Collection[str],
) -> model_usage.BatchUsage:
    """The usage by model of the ``written`` rollups of traces stored before the batch
    (``before``), for their rows (``model_usage``), read before the rows are replaced.
    ``batch``: each trace's spans in this batch; ``all_new``: the traces none of whose
    batch spans was stored before."""
    return model_usage.for_batch(
        conn,
        project_id,
        {r.trace_id: r.start_ns for r in written},
        batch,
        {trace_id: r.start_ns for trace_id, r in before.items()},
        all_new,
    )


def traces_written(
    new: NewTraces,
    before: Mapping[str, TraceRollup],
    written: Sequence[TraceRollup],
    usage: model_usage.BatchUsage,
    batch_rollups: Iterable[TraceRollup] = (),
) -> Changes:
    """The changes to the aggregates of a batch's traces: ``new``, what they add as if
    none was stored before, but for those that were (``before``, as stored), whose
    ``written`` rollups, with their ``usage``, replace their stored ones;
    ``batch_rollups``: those traces' rollups as made with the batch alone, which ``new``
    counts, taken back here (``new`` is left as it is: a batch retried is written from it
    again). Written by the caller once the batch's sessions have added theirs."""
    changes = Changes()
    # The one copy of what the batch's new traces add: taking back the stored ones from
    # a copy of ``new`` first copied it twice (docs/benchmarks.md, round 16).
    changes.add(new.changes)
    changes.take_back_new(batch_rollups, new.packed)
    if before:
        changes.traces(before.values(), -1)
        changes.usage(usage.replaced, -1)
    changes.traces(written, 1)
    changes.usage(usage.written, 1)
    for r in written:
        hour = metric_scores.hour_of(r.start_ns, r.end_ns)
        old = before.get(r.trace_id)
        if old is None:
            changes.scored_targets[("trace", r.trace_id)] = hour
        elif metric_scores.hour_of(old.start_ns, old.end_ns) != hour:
            changes.scored_targets[("trace", r.trace_id)] = hour
            changes.moved_targets.add(("trace", r.trace_id))
    return changes


@dataclass
class NewTraces:
    """What a batch's traces add to the aggregates if none of them was stored before,
    and the usage by model of each one that used something, packed for its row
    (``model_usage.pack``). Made with the batch (``new_traces``), in whatever process
    prepares it: plain dicts, to travel to the writer."""

    changes: Changes = field(default_factory=lambda: Changes())
    packed: dict[str, str] = field(default_factory=dict)

    def add(self, other: NewTraces) -> None:
        """Add ``other``'s traces (of another batch of a group commit) to these."""
        self.changes.add(other.changes)
        self.packed.update(other.packed)

    def take_back(self, rollups: Iterable[TraceRollup], packed: Mapping[str, str]) -> None:
        """Take back what the traces of ``rollups`` (as rolled up with the batch), whose
        usage ``packed`` holds, added."""
        rollups = list(rollups)
        self.changes.take_back_new(rollups, packed)
        for r in rollups:
            self.packed.pop(r.trace_id, None)


def new_traces(traces: Iterable[tuple[TraceRollup, Sequence[ModelSpan]]]) -> NewTraces:
    """What ``traces`` (each one's rollup and spans, all of it) add to the aggregates as
    traces new to the store, with their usage by model."""
    new = NewTraces()
    rollups: list[TraceRollup] = []
    usage: model_usage.Rows = []
    packed, scored = new.packed, new.changes.scored_targets
    for rollup, spans in traces:
        rollups.append(rollup)
        used = model_usage.of_spans(spans)
        text = model_usage.pack(used)
        if text is not None:
            packed[rollup.trace_id] = text
            usage.append((rollup.start_ns, used))
        scored[("trace", rollup.trace_id)] = metric_scores.hour_of(rollup.start_ns, rollup.end_ns)
    new.changes.traces(rollups, 1)
    new.changes.usage(usage, 1)
    return new


class Changes:
    """A batch's changes to the aggregates, by bucket. (Plain dicts and lists, and loops
    with their names bound locally, written for speed: this runs for every trace a batch
    writes, and a backfill's batch changes a row per trace.)"""

    def __init__(self) -> None:
        # (last hour, first hour) -> traces, errors, known costs, cost, tokens in/out/total,
        # sessions, sessions with an error, sessions whose cost is known
        self.activity: dict[tuple[int, int], list[int]] = {}
        # (day, user) -> active traces, then of those started that day: traces, errors,
        # known costs, cost
        self.users: dict[tuple[int, str], list[int]] = {}
        # (hour, model) -> traces, known costs, cost, tokens in/out/total
        self.models: dict[tuple[int, str], list[int]] = {}
        # Whether anything was taken back: until then no bucket can add up to nothing.
        self.taken_back = False
        # (kind, id) of traces and sessions new, gone or started in another hour -> the
        # hour their scores count in now (metric_scores.py)
        self.scored_targets: dict[tuple[str, str], int | None] = {}
        # Those of them that were stored before (the others are new to the store, and
        # their rollups, if any, wait for them: metric_scores.targets_moved)
        self.moved_targets: set[tuple[str, str]] = set()

    def add(self, other: Changes) -> None:
        """Add ``other``'s changes to these (its lists are not shared)."""
        _add_to(self.activity, other.activity)
        _add_to(self.users, other.users)
        _add_to(self.models, other.models)
        self.taken_back = self.taken_back or other.taken_back
        self.scored_targets.update(other.scored_targets)
        self.moved_targets.update(other.moved_targets)

    def traces(self, rollups: Iterable[TraceRollup], sign: int) -> None:
        if sign < 0:
            self.taken_back = True
        activity, users = self.activity, self.users
        for r in rollups:
            error = sign if r.status == "error" else 0
            cost_usd = r.cost_usd
            if cost_usd is None:
                known = cost = 0
            else:
                known, cost = sign, sign * picodollars(cost_usd)
            first = r.start_ns + SLACK_NS
            key = (r.end_ns // HOUR_NS, first // HOUR_NS)
            a = activity.get(key)
            if a is None:
                activity[key] = [
                    sign,
                    error,
                    known,
                    cost,
                    sign * r.input_tokens,
                    sign * r.output_tokens,
                    sign * r.total_tokens,
                    0,
                    0,
                    0,
                ]
            else:
                a[0] += sign
                a[1] += error
                a[2] += known
                a[3] += cost
                a[4] += sign * r.input_tokens
                a[5] += sign * r.output_tokens
                a[6] += sign * r.total_tokens
            user_id = r.user_id
            first_day = first // DAY_NS
            last_day = r.end_ns // DAY_NS
            # (A trace ending within SLACK_NS of its start may end the day before its
            # first: it is active on no day.)
            if user_id and last_day >= first_day:
                ukey = (first_day, user_id)
                u = users.get(ukey)
                if u is None:
                    users[ukey] = [sign, sign, error, known, cost]
                else:
                    u[0] += sign
                    u[1] += sign
                    u[2] += error
                    u[3] += known
                    u[4] += cost
                # The later days a trace was active on count it as active only.
                for day in range(first_day + 1, last_day + 1):
                    ukey = (day, user_id)
                    u = users.get(ukey)
                    if u is None:
                        users[ukey] = [sign, 0, 0, 0, 0]
                    else:
                        u[0] += sign

    def take_back_new(self, rollups: Iterable[TraceRollup], packed: Mapping[str, str]) -> None:
        """Take back what the traces of ``rollups`` (as rolled up with the batch), whose
        usage ``packed`` holds, added as traces new to the store (``new_traces``)."""
        rollups = list(rollups)
        if not rollups:
            return
        usage: model_usage.Rows = []
        scored = self.scored_targets
        for r in rollups:
            text = packed.get(r.trace_id)
            if text is not None:
                usage.append((r.start_ns, model_usage.unpack(text)))
            scored.pop(("trace", r.trace_id), None)
        self.traces(rollups, -1)
        self.usage(usage, -1)

    def session(
        self, last_hour: int, first_hour: int, error: bool, cost_known: bool, sign: int
    ) -> None:
        """A session counted in the bucket of its last and first hour (``session_writes``)."""
        if sign < 0:
            self.taken_back = True
        key = (last_hour, first_hour)
        a = self.activity.get(key)
        if a is None:
            a = self.activity[key] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        a[7] += sign
        if error:
            a[8] += sign
        if cost_known:
            a[9] += sign

    def usage(self, traces: model_usage.Rows, sign: int) -> None:
        """Traces' usage by model (``model_usage.Rows``)."""
        if sign < 0:
            self.taken_back = True
        models = self.models
        for start_ns, by_model in traces:
            hour = (start_ns + SLACK_NS) // HOUR_NS
            for model, used in by_model.items():
                key = (hour, model)
                m = models.get(key)
                if m is None:
                    models[key] = [
                        sign,
                        sign if used[0] else 0,
                        sign * used[1],
                        sign * used[2],
                        sign * used[3],
                        sign * used[4],
                    ]
                else:
                    m[0] += sign
                    if used[0]:
                        m[1] += sign
                    m[2] += sign * used[1]
                    m[3] += sign * used[2]
                    m[4] += sign * used[3]
                    m[5] += sign * used[4]

    def write(self, conn: sqlite3.Connection, project_id: int) -> None:
        """Add the changes that are not nothing (a trace re-rolled in place is). A bucket
        only added to holds at least one trace: that needs checking after a take-back only."""
        check = self.taken_back

        def rows(changes: dict[tuple[int, Any], list[int]]) -> list[tuple[Any, ...]]:
            if check:
                return [(project_id, *k, *v) for k, v in changes.items() if any(v)]
            return [(project_id, *k, *v) for k, v in changes.items()]

        metric_log.append(conn, rows(self.activity), rows(self.users), rows(self.models))
        if self.scored_targets:
            metric_scores.targets_moved(conn, project_id, self.scored_targets, self.moved_targets)


def _add_to(mine: dict[Any, list[int]], theirs: Mapping[Any, list[int]]) -> None:
    """Add the sums of ``theirs`` to those of ``mine``, by bucket."""
    for key, values in theirs.items():
        m = mine.get(key)
        mine[key] = values.copy() if m is None else [a + b for a, b in zip(m, values, strict=True)]
