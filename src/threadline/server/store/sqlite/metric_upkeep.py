"""The dashboard's per-bucket aggregates (migration 0010) kept up to date as ingest
writes trace rollups: each trace written takes back what its old rollup and usage by
model added and adds its new ones, in the same transaction. The usage by model is kept
in the trace's row (``model_usage.py``), worked out before the row is written.

A batch's changes are added up in memory first, so a batch writes one row per bucket
(hour, day, model, user) it changed rather than one per trace: a batch of live traffic
changes a handful of hours. A trace deleted (a delete, retention) is taken back by a
trigger (0010), which sees the row as SQLite deletes it. Sessions are kept where they
are written (``session_writes.py``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from threadline.server.store.metrics import WIDTH_NS
from threadline.server.store.model_usage import ModelSpan, picodollars
from threadline.server.store.rollups import TraceRollup
from threadline.server.store.sqlite import model_usage
from threadline.server.store.sqlite.driver import sqlite3

HOUR_NS = WIDTH_NS["hour"]
DAY_NS = WIDTH_NS["day"]
# A bucket ends at its last microsecond: a row starting in the sub-microsecond after it
# counts from the next bucket (store/metrics.py).
SLACK_NS = 999

_ACTIVITY = """
INSERT INTO metric_activity (project_id, last_hour, first_hour, traces, error_traces,
    cost_traces, cost_pico, input_tokens, output_tokens, total_tokens)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT DO UPDATE SET traces = traces + excluded.traces,
    error_traces = error_traces + excluded.error_traces,
    cost_traces = cost_traces + excluded.cost_traces, cost_pico = cost_pico + excluded.cost_pico,
    input_tokens = input_tokens + excluded.input_tokens,
    output_tokens = output_tokens + excluded.output_tokens,
    total_tokens = total_tokens + excluded.total_tokens
"""
_USERS = """
INSERT INTO metric_user_days (project_id, day, user_id, traces_active, traces, error_traces,
    cost_traces, cost_pico)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT DO UPDATE SET traces_active = traces_active + excluded.traces_active,
    traces = traces + excluded.traces, error_traces = error_traces + excluded.error_traces,
    cost_traces = cost_traces + excluded.cost_traces, cost_pico = cost_pico + excluded.cost_pico
"""
# A user no trace keeps active on a day leaves it (and its count, by trigger).
_USERS_LEFT = (
    "DELETE FROM metric_user_days WHERE project_id = ? AND day = ? AND user_id = ?"
    " AND traces_active = 0"
)
_MODELS = """
INSERT INTO metric_models (project_id, hour, model, traces, cost_traces, cost_pico,
    input_tokens, output_tokens, total_tokens)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT DO UPDATE SET traces = traces + excluded.traces,
    cost_traces = cost_traces + excluded.cost_traces, cost_pico = cost_pico + excluded.cost_pico,
    input_tokens = input_tokens + excluded.input_tokens,
    output_tokens = output_tokens + excluded.output_tokens,
    total_tokens = total_tokens + excluded.total_tokens
"""


def batch_usage(
    conn: sqlite3.Connection,
    project_id: int,
    before: Mapping[str, TraceRollup],
    written: Sequence[TraceRollup],
    batch: Mapping[str, Sequence[ModelSpan]],
    all_new: Collection[str],
) -> model_usage.BatchUsage:
    """The usage by model of the ``written`` rollups, for their rows (``model_usage``),
    read before the rows of ``before`` (the traces stored before the batch) are
    replaced. ``batch``: each trace's spans in this batch; ``all_new``: the traces none
    of whose batch spans was stored before."""
    return model_usage.for_batch(
        conn,
        project_id,
        {r.trace_id: r.start_ns for r in written},
        batch,
        {trace_id: r.start_ns for trace_id, r in before.items()},
        all_new,
    )


def traces_written(
    conn: sqlite3.Connection,
    project_id: int,
    before: Mapping[str, TraceRollup],
    written: Sequence[TraceRollup],
    usage: model_usage.BatchUsage,
) -> None:
    """Keep the aggregates after ``written`` rollups, with their ``usage``, replaced
    ``before`` (the traces stored before the batch)."""
    changes = Changes()
    for rollup in before.values():
        changes.trace(rollup, -1)
    for start_ns, model, used in usage.replaced:
        changes.usage(start_ns, model, used, -1)
    for rollup in written:
        changes.trace(rollup, 1)
    for start_ns, model, used in usage.written:
        changes.usage(start_ns, model, used, 1)
    changes.write(conn, project_id)


class Changes:
    """A batch's changes to the aggregates, by bucket. (Plain dicts and lists, written
    for speed: this runs for every trace a batch writes.)"""

    def __init__(self) -> None:
        # (last hour, first hour) -> traces, errors, known costs, cost, tokens in/out/total
        self.activity: dict[tuple[int, int], list[int]] = {}
        # (day, user) -> active traces, then of those started that day: traces, errors,
        # known costs, cost
        self.users: dict[tuple[int, str], list[int]] = {}
        # (hour, model) -> traces, known costs, cost, tokens in/out/total
        self.models: dict[tuple[int, str], list[int]] = {}

    def trace(self, r: TraceRollup, sign: int) -> None:
        error = sign if r.status == "error" else 0
        if r.cost_usd is None:
            known = cost = 0
        else:
            known, cost = sign, sign * picodollars(r.cost_usd)
        first = r.start_ns + SLACK_NS
        key = (r.end_ns // HOUR_NS, first // HOUR_NS)
        a = self.activity.get(key)
        if a is None:
            self.activity[key] = [
                sign,
                error,
                known,
                cost,
                sign * r.input_tokens,
                sign * r.output_tokens,
                sign * r.total_tokens,
            ]
        else:
            a[0] += sign
            a[1] += error
            a[2] += known
            a[3] += cost
            a[4] += sign * r.input_tokens
            a[5] += sign * r.output_tokens
            a[6] += sign * r.total_tokens
        if r.user_id:
            users = self.users
            first_day = first // DAY_NS
            for day in range(first_day, r.end_ns // DAY_NS + 1):
                ukey = (day, r.user_id)
                u = users.get(ukey)
                if u is None:
                    u = users[ukey] = [0, 0, 0, 0, 0]
                u[0] += sign
                if day == first_day:
                    u[1] += sign
                    u[2] += error
                    u[3] += known
                    u[4] += cost

    def usage(self, start_ns: int, model: str, used: model_usage.Used, sign: int) -> None:
        """One trace's usage of one model (``model_usage.Used``)."""
        key = ((start_ns + SLACK_NS) // HOUR_NS, model)
        m = self.models.get(key)
        if m is None:
            m = self.models[key] = [0, 0, 0, 0, 0, 0]
        m[0] += sign
        if used[0]:
            m[1] += sign
        m[2] += sign * used[1]
        m[3] += sign * used[2]
        m[4] += sign * used[3]
        m[5] += sign * used[4]

    def write(self, conn: sqlite3.Connection, project_id: int) -> None:
        """Add the changes that are not nothing (a trace re-rolled in place is)."""
        conn.executemany(
            _ACTIVITY, [(project_id, *k, *v) for k, v in self.activity.items() if any(v)]
        )
        conn.executemany(_USERS, [(project_id, *k, *v) for k, v in self.users.items() if any(v)])
        conn.executemany(_USERS_LEFT, [(project_id, *k) for k, v in self.users.items() if v[0] < 0])
        conn.executemany(_MODELS, [(project_id, *k, *v) for k, v in self.models.items() if any(v)])
