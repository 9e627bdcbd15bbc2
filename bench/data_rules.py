"""What redaction and retention cost ingest: A/B pairs, back to back, on one machine.

    python bench/data_rules.py redaction --spans 50000 --pairs 3
    python bench/data_rules.py retention --spans 50000 --pairs 2 --expired 1000000
    python bench/data_rules.py retention-idle --expired 200000 --pairs 2 \
        --code-a /path/to/old/src --code-b src

Each run starts ``threadline serve`` (2 workers) on a data directory of its own and
sends the workload of ``workload.py`` (10-span traces, ~4 KB of protobuf a span, 512
spans an export, 4 senders), timing durable ingest as ``server.py`` does: from the
first export until every export is acknowledged and written.

- ``redaction``: A without rules; B with every built-in detector and one pattern of
  the user's (``PUT /api/v1/settings/redaction``) on the project.
- ``retention``: both runs start on a copy of one store that already holds
  ``--expired`` spans that ended months ago (filled as ``export.py`` fills); A with
  retention off, B with ``--retention-days 1``, so that during B the server deletes
  expired traces in the background while the spans arrive. B prints how many spans
  retention had deleted by the end of the run.
- ``retention-idle``: how fast retention works off a backlog when no spans arrive: a
  server with ``--retention-days 1`` on a copy of the store of ``--expired`` spans,
  timed from its start until every expired span is gone. A and B run the server from
  ``--code-a`` and ``--code-b`` (source folders put first on its ``PYTHONPATH``), so
  two versions of retention are compared back to back on one store.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import httpx

from threadline.server.store.sqlite.driver import sqlite3

sys.path.insert(0, str(Path(__file__).resolve().parent))
import workload
from export import fill
from server import send_all, start_server, wait_settled

RULES = {
    "detectors": ["email", "phone", "card", "secret"],
    "patterns": [{"name": "ticket", "regex": r"TCK-\d{4,}"}],
}


def ingest(data_dir: Path, spans: int, extra: dict | None = None, serve_args=()) -> float:
    """Durable spans/s of one run."""
    bodies = list(workload.batches(spans, 512, start_ns=time.time_ns(), tag=f"ab{time.time_ns()}"))
    process, base_url, key = start_server(data_dir, 2, serve_args=serve_args)
    wait_settled(process.pid)
    try:
        client = httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=60
        )
        if extra:
            response = client.put("/api/v1/settings/redaction", json=extra)
            response.raise_for_status()
        sent = send_all(base_url, {"Authorization": f"Bearer {key}"}, bodies, 4)
        if sent.failures:
            raise SystemExit(sent.failures[0])
        while client.get("/healthz", params={"wait": 10}).json()["queued_exports"]:
            pass
        last = bodies[-1].session_ids[-1]
        while client.get(f"/api/v1/sessions/{last}").status_code != 200:
            time.sleep(0.001)
        return spans / (time.perf_counter() - sent.started)
    finally:
        process.terminate()
        process.wait()


def idle_deletion(data_dir: Path, expired: int, code: str | None, limit_s: float) -> float:
    """Expired spans deleted per second by a server that takes no spans meanwhile."""
    saved = os.environ.get("PYTHONPATH")
    if code:
        os.environ["PYTHONPATH"] = str(Path(code).resolve())
    try:
        began = time.perf_counter()
        process, _, _ = start_server(data_dir, 1, serve_args=("--retention-days", "1"))
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved
    try:
        db = data_dir / "threadline.db"
        while (left := stored_spans(db)) and time.perf_counter() - began < limit_s:
            time.sleep(0.5)
        return (expired - left) / (time.perf_counter() - began)
    finally:
        process.terminate()
        process.wait()


def stored_spans(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT count(*) FROM spans").fetchone()[0])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["redaction", "retention", "retention-idle"])
    parser.add_argument("--spans", type=int, default=50_000)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--expired", type=int, default=1_000_000)
    parser.add_argument("--code-a", help="retention-idle: source folder of A's server")
    parser.add_argument("--code-b", help="retention-idle: source folder of B's server")
    parser.add_argument("--limit", type=float, default=900, help="retention-idle: s a run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="threadline-rules-") as tmp:
        root = Path(tmp)
        seed = root / "seed"
        if args.what in ("retention", "retention-idle"):
            seed.mkdir()
            process, _, _ = start_server(seed, 1)
            process.terminate()
            process.wait()
            began = time.perf_counter()
            fill(seed / "threadline.db", args.expired)
            print(
                f"store with {args.expired:,} expired spans in {time.perf_counter() - began:.0f} s"
            )
        ratios = []
        for pair in range(args.pairs):
            rates = {}
            for arm in ("A", "B"):
                data_dir = root / f"{pair}{arm}"
                if args.what == "retention-idle":
                    shutil.copytree(seed, data_dir)
                    code = args.code_a if arm == "A" else args.code_b
                    rates[arm] = idle_deletion(data_dir, args.expired, code, args.limit)
                    note = f" of expired spans deleted, no ingest ({code or 'this'} code)"
                elif args.what == "retention":
                    shutil.copytree(seed, data_dir)
                    serve_args = ("--retention-days", "1") if arm == "B" else ()
                    before = stored_spans(data_dir / "threadline.db")
                    rates[arm] = ingest(data_dir, args.spans, serve_args=serve_args)
                    deleted = before + args.spans - stored_spans(data_dir / "threadline.db")
                    note = f", retention deleted {deleted:,} expired spans meanwhile"
                else:
                    data_dir.mkdir()
                    rates[arm] = ingest(data_dir, args.spans, RULES if arm == "B" else None)
                    note = ", rules on" if arm == "B" else ", no rules"
                print(f"pair {pair + 1} {arm}: {rates[arm]:,.0f} spans/s{note}", flush=True)
                shutil.rmtree(data_dir)
            ratios.append(rates["B"] / rates["A"])
            print(f"pair {pair + 1}: B/A = {ratios[-1]:.1%}", flush=True)
        print(f"B/A per pair: {', '.join(f'{r:.1%}' for r in ratios)}")


if __name__ == "__main__":
    main()
