"""How a session's or trace's score summary follows from its scores.

Pure, shared by every backend, so that the same scores give the same summary whatever
stores them. A summary is recomputed from all the scores of its (target, name) on every
write or delete of one of them, rather than incremented: a replaced score (same id,
new value) and a retried write then stay exact.

A score rolls up into one target: its trace when it names one (a span's score counts
for the span's trace), else its session.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from threadline.server.model import ScoreRecord, ScoreSummary


@dataclass(frozen=True, slots=True)
class ScoreRollup:
    """The summary of one score name on one target, as stored."""

    target_kind: str  # "session" or "trace"
    target_id: str
    name: str
    count: int  # scores of this name, labels included
    value_count: int  # those with a numeric value (numeric, boolean as 0/1)
    value_sum: float | None
    label: str | None  # the latest label
    label_ns: int | None  # when it was written: merging summaries keeps the latest

    @property
    def average(self) -> float | None:
        if not self.value_count or self.value_sum is None:
            return None
        return self.value_sum / self.value_count

    def summary(self) -> ScoreSummary:
        return ScoreSummary(count=self.count, average=self.average, label=self.label)


def roll_up_scores(
    target_kind: str, target_id: str, name: str, scores: Iterable[ScoreRecord]
) -> ScoreRollup | None:
    """The summary of ``scores`` (all of one target and name), None when there are none.
    Values are summed in (written, id) order, so every backend gets the same float."""
    ordered = sorted(scores, key=lambda s: (s.created_ns, s.id))
    if not ordered:
        return None
    values = [s.value for s in ordered if s.value is not None]
    labelled = [s for s in ordered if s.label is not None]
    latest = labelled[-1] if labelled else None
    return ScoreRollup(
        target_kind=target_kind,
        target_id=target_id,
        name=name,
        count=len(ordered),
        value_count=len(values),
        value_sum=sum(values) if values else None,
        label=latest.label if latest else None,
        label_ns=latest.created_ns if latest else None,
    )


def merge_summaries(rollups: Iterable[ScoreRollup]) -> dict[str, ScoreSummary]:
    """Per name, the summary over several targets (a user's sessions and traces),
    added up in (kind, target id) order."""
    merged: dict[str, list[ScoreRollup]] = {}
    # In one order whatever order a backend read them in, so that sums are the same float.
    for rollup in sorted(rollups, key=lambda r: (r.target_kind, r.target_id)):
        merged.setdefault(rollup.name, []).append(rollup)
    out: dict[str, ScoreSummary] = {}
    for name, parts in sorted(merged.items()):
        value_count = sum(p.value_count for p in parts)
        value_sum = sum(p.value_sum for p in parts if p.value_sum is not None)
        labelled = [p for p in parts if p.label is not None and p.label_ns is not None]
        latest = max(labelled, key=lambda p: (p.label_ns, p.target_id), default=None)
        out[name] = ScoreSummary(
            count=sum(p.count for p in parts),
            average=value_sum / value_count if value_count else None,
            label=latest.label if latest else None,
        )
    return out
