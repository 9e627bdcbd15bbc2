"""Which waiting runs a runner takes: fairly across projects, not oldest first.

One queue taken oldest first lets a project that queued thousands of runs against a
judge that never answers hold every judging place until they have all timed out (1,000
runs: ~12.5 hours at the defaults), while another project's run waits behind them.
Instead each place goes to the project with the fewest runs in flight (every runner's,
as the store counts them), the oldest waiting run first among equals, and within a
project its runs go oldest first. So another project's run takes the next place that
comes free, whatever the size of the queue ahead of it.

A runner whose places are all taken claims one run more, of a project with no run in
flight (``idle_projects``), so that such a project's run starts at once even while every
place is held by runs against a judge that never answers.

Both stores use these two steps: ``projects_to_read`` says whose oldest runs to read
(at most ``limit`` projects, whatever the number waiting), ``fair_share`` picks among
them.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence

from threadline.server.evaluation.model import RunRecord


def projects_to_read(
    oldest_waiting: Mapping[int, int],
    in_flight: Mapping[int, int],
    limit: int,
    idle_projects: bool = False,
) -> list[int]:
    """The projects ``fair_share`` can take from: those first by (runs in flight, oldest
    waiting run's time, id). A project past the first ``limit`` is never chosen, since
    each of those before it would have to be chosen once first. ``idle_projects``: only
    projects with no run in flight (a runner's spare place, ``runner.py``)."""
    candidates = [p for p in oldest_waiting if not (idle_projects and in_flight.get(p, 0))]
    order = sorted(candidates, key=lambda p: (in_flight.get(p, 0), oldest_waiting[p], p))
    return order[:limit]


def fair_share(
    waiting: Mapping[int, Sequence[RunRecord]],
    in_flight: Mapping[int, int],
    limit: int,
    idle_projects: bool = False,
) -> list[RunRecord]:
    """Up to ``limit`` of the ``waiting`` runs (each project's, oldest first), one at a
    time to the project with the fewest runs in flight counting those taken so far.
    ``idle_projects``: one run each of projects with no run in flight."""
    heap = [
        (in_flight.get(project, 0), runs[0].created_ns, project, 0)
        for project, runs in waiting.items()
        if runs and not (idle_projects and in_flight.get(project, 0))
    ]
    heapq.heapify(heap)
    taken: list[RunRecord] = []
    while heap and len(taken) < limit:
        flying, _, project, index = heapq.heappop(heap)
        runs = waiting[project]
        taken.append(runs[index])
        if index + 1 < len(runs) and not idle_projects:
            heapq.heappush(heap, (flying + 1, runs[index + 1].created_ns, project, index + 1))
    return taken
