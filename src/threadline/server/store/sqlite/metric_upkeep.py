"""The dashboard's per-bucket aggregates (migration 0010) kept up to date as ingest
writes trace rollups: each trace written takes back what its old rollup and usage by
model added and adds its new ones, in the same transaction.

A batch's changes are added up in memory first, so a batch writes one row per bucket
(hour, day, model, user) it changed rather than one per trace: a batch of live traffic
changes a handful of hours. A trace deleted (a delete, retention) is taken back by a
trigger (0010), which sees the row as SQLite deletes it. Sessions are kept where they
are written (``session_writes.py``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence

from threadline.server.store.metrics import WIDTH_NS
from threadline.server.store.model_usage import ModelSpan, ModelUsage, picodollars
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


def traces_written(
    conn: sqlite3.Connection,
    project_id: int,
    before: Mapping[str, TraceRollup],
    written: Sequence[TraceRollup],
    batch: Mapping[str, Sequence[ModelSpan]],
    all_new: Collection[str],
) -> None:
    """Keep the aggregates after ``written`` rollups replaced ``before`` (the traces
    stored before the batch), and write their usage by model (``model_usage``).
    ``batch``: each trace's spans in this batch; ``all_new``: the traces none of whose
    batch spans was stored before."""
    old_usage, new_usage = model_usage.write(
        conn, project_id, {r.trace_id: r.start_ns for r in written}, batch, before, all_new
    )
    changes = Changes()
    for rollup in before.values():
        changes.trace(rollup, -1)
    for start_ns, usage in old_usage:
        changes.usage(start_ns, usage, -1)
    for rollup in written:
        changes.trace(rollup, 1)
    for start_ns, usage in new_usage:
        changes.usage(start_ns, usage, 1)
    changes.write(conn, project_id)


class Changes:
    """A batch's changes to the aggregates, by bucket."""

    def __init__(self) -> None:
        # (last hour, first hour) -> traces, errors, known costs, cost, tokens in/out/total
        self.activity: dict[tuple[int, int], list[int]] = defaultdict(lambda: [0] * 7)
        # (day, user) -> active traces, then of those started that day: traces, errors,
        # known costs, cost
        self.users: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0] * 5)
        # (hour, model) -> traces, known costs, cost, tokens in/out/total
        self.models: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0] * 6)

    def trace(self, r: TraceRollup, sign: int) -> None:
        error = r.status == "error"
        known = r.cost_usd is not None
        cost = picodollars(r.cost_usd) if r.cost_usd is not None else 0
        first = r.start_ns + SLACK_NS
        a = self.activity[(r.end_ns // HOUR_NS, first // HOUR_NS)]
        a[0] += sign
        a[1] += sign * error
        a[2] += sign * known
        a[3] += sign * cost
        a[4] += sign * r.input_tokens
        a[5] += sign * r.output_tokens
        a[6] += sign * r.total_tokens
        if r.user_id:
            first_day = first // DAY_NS
            for day in range(first_day, r.end_ns // DAY_NS + 1):
                u = self.users[(day, r.user_id)]
                u[0] += sign
                if day == first_day:
                    u[1] += sign
                    u[2] += sign * error
                    u[3] += sign * known
                    u[4] += sign * cost

    def usage(self, start_ns: int, u: ModelUsage, sign: int) -> None:
        m = self.models[((start_ns + SLACK_NS) // HOUR_NS, u.model)]
        m[0] += sign
        m[1] += sign * (u.cost_spans > 0)
        m[2] += sign * u.cost_pico
        m[3] += sign * u.input_tokens
        m[4] += sign * u.output_tokens
        m[5] += sign * u.total_tokens

    def write(self, conn: sqlite3.Connection, project_id: int) -> None:
        """Add the changes that are not nothing (a trace re-rolled in place is)."""
        conn.executemany(
            _ACTIVITY, [(project_id, *k, *v) for k, v in self.activity.items() if any(v)]
        )
        conn.executemany(_USERS, [(project_id, *k, *v) for k, v in self.users.items() if any(v)])
        conn.executemany(_USERS_LEFT, [(project_id, *k) for k, v in self.users.items() if v[0] < 0])
        conn.executemany(_MODELS, [(project_id, *k, *v) for k, v in self.models.items() if any(v)])
