"""Scores: write latency and rate through the API, and score-filtered lists at scale.

    python bench/scores.py --spans 1000000 --scores 100000

Fills a fresh SQLite store like ``pages.py`` (sessions of 5 traces of 10 spans) and adds
``--scores`` scores straight through ``Store.write_scores``: per session a boolean
``resolved`` and a numeric ``helpfulness`` (1-5), the rest categorical ``tone`` labels on
traces. Then starts ``threadline serve`` on it and measures, over HTTP:

- one score per ``POST /api/v1/scores``, answered (p50 / p95);
- 10,000 scores in batches of ``--batch`` per POST (scores/s);
- the Sessions list filtered by a score, and by a missing score, and the Traces list
  filtered by a label, first page of 50 (p50 / p95).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pages import fill
from server import latencies, p50_p95, start_server

from threadline.server.model import ScoreRecord
from threadline.server.store.sqlite import SQLiteStore

T0 = 1_790_000_000_000_000_000
TONES = ["friendly", "neutral", "curt"]


def api_score(
    rng: random.Random,
    name: str,
    data_type: str,
    value: float | None,
    label: str | None,
    created_ns: int,
    session_id: str | None = None,
    trace_id: str | None = None,
) -> ScoreRecord:
    """A score as the API writes one, its id drawn from ``rng``."""
    return ScoreRecord(
        id=uuid.UUID(int=rng.getrandbits(128)).hex,
        name=name,
        data_type=data_type,
        value=value,
        label=label,
        session_id=session_id,
        trace_id=trace_id,
        span_id=None,
        source="api",
        author=None,
        comment=None,
        created_ns=created_ns,
    )


def add_scores(path: Path, sessions: int, total: int) -> None:
    """``total`` scores over the store's sessions and their traces."""
    rng = random.Random(7)
    store = SQLiteStore(path)
    project = store.list_projects()[0].id
    trace_ids: list[str] = []
    for s in range(0, sessions, max(1, sessions // 2000)):
        detail = store.get_session(project, f"page-{s:07d}")
        assert detail is not None
        trace_ids += [t.trace_id for t in detail.traces]
    records: list[ScoreRecord] = []

    def record(name: str, data_type: str, value: float | None, label: str | None, **target):
        records.append(api_score(rng, name, data_type, value, label, T0 + len(records), **target))

    started = time.perf_counter()
    for s in range(sessions):
        if len(records) + 2 > total:
            break
        sid = f"page-{s:07d}"
        record("resolved", "boolean", float(rng.random() < 0.8), None, session_id=sid)
        record("helpfulness", "numeric", float(rng.randint(1, 5)), None, session_id=sid)
    while len(records) < total:
        label = rng.choice(TONES)
        record("tone", "categorical", None, label, trace_id=rng.choice(trace_ids))
    for i in range(0, len(records), 2000):
        store.write_scores(project, records[i : i + 2000])
    store.close()
    print(f"added {len(records):,} scores in {time.perf_counter() - started:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--scores", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="threadline-scores-") as tmp:
        data_dir = Path(tmp)
        sessions = fill(data_dir / "threadline.db", args.spans)
        add_scores(data_dir / "threadline.db", sessions, args.scores)
        process, base_url, key = start_server(data_dir, workers=1)
        try:
            api = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}"})
            n = args.queries
            # One score a request, each on another session.
            times = []
            for i in range(n * 2):
                body = {"name": "thumbs", "value": i % 2 == 0, "session_id": f"page-{i:07d}"}
                t = time.perf_counter()
                response = api.post("/api/v1/scores", json=body)
                times.append((time.perf_counter() - t) * 1000)
                assert response.status_code == 200, response.text
            single = p50_p95(times)
            # 10,000 scores in batches.
            bodies = [
                [
                    {
                        "name": "stars",
                        "value": (i + j) % 5 + 1,
                        "session_id": f"page-{(i + j) % sessions:07d}",
                    }
                    for j in range(args.batch)
                ]
                for i in range(0, 10_000, args.batch)
            ]
            t = time.perf_counter()
            for batch in bodies:
                response = api.post("/api/v1/scores", json=batch)
                assert response.status_code == 200, response.text
            rate = 10_000 / (time.perf_counter() - t)
            figures = {
                "sessions ?score=helpfulness>=4": latencies(
                    api, ["/api/v1/sessions?window=all&score=helpfulness%3E%3D4"] * n
                ),
                "sessions ?score=resolved=false": latencies(
                    api, ["/api/v1/sessions?window=all&score=resolved%3Dfalse"] * n
                ),
                "sessions ?missing_score=resolved": latencies(
                    api, ["/api/v1/sessions?window=all&missing_score=resolved"] * n
                ),
                "sessions (no filter)": latencies(api, ["/api/v1/sessions?window=all"] * n),
                "traces ?score=tone=curt": latencies(
                    api, ["/api/v1/traces?window=all&score=tone%3Dcurt"] * n
                ),
            }
        finally:
            process.terminate()
            process.wait()
    print(f"{args.spans:,} spans, {sessions:,} sessions, {args.scores:,} scores")
    print(f"  POST /api/v1/scores, one score          {single[0]:6.2f} / {single[1]:6.2f} ms")
    print(f"  10,000 scores in batches of {args.batch:<5}      {rate:8,.0f} scores/s")
    print(f"  p50 / p95 over {n} requests:")
    for name, (p50, p95) in figures.items():
        print(f"  {name:40s} {p50:6.1f} / {p95:6.1f} ms")


if __name__ == "__main__":
    main()
