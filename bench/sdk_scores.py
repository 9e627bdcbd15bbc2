"""SDK scores: what ``Threadline.score`` costs the calling thread, and how fast the
background sender empties its queue into a real server.

    python bench/sdk_scores.py [--scores 5000] [--rounds 3]

Starts ``threadline serve`` on a fresh store on 127.0.0.1, then per round calls
``Threadline.score`` ``--scores`` times on one session (timing each call), and
``Threadline.flush()``: queued-to-stored rate is scores / (first call to flush's return).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from server import start_server

from threadline import Threadline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scores", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir:
        process, base_url, key = start_server(Path(data_dir), workers=1)
        try:
            Threadline.initialize(project_api_key=key, base_url=base_url, instrument=False)
            Threadline.score("warm-up", 1, session_id="warm-up")
            Threadline.flush()
            for round_no in range(args.rounds):
                calls: list[float] = []
                started = time.perf_counter()
                for n in range(args.scores):
                    before = time.perf_counter()
                    Threadline.score("rating", n % 5, session_id=f"session-{round_no}")
                    calls.append(time.perf_counter() - before)
                queued = time.perf_counter() - started
                flushed = Threadline.flush(timeout_millis=120_000)
                total = time.perf_counter() - started
                calls.sort()
                print(
                    f"round {round_no}: {args.scores} scores; a call p50"
                    f" {calls[len(calls) // 2] * 1e6:.1f} us, p99"
                    f" {calls[int(len(calls) * 0.99)] * 1e6:.1f} us; all queued in"
                    f" {queued * 1000:.0f} ms; flushed={flushed} after {total:.2f} s:"
                    f" {args.scores / total:,.0f} scores/s"
                )
            Threadline.shutdown()
        finally:
            process.terminate()
            process.wait(timeout=30)


if __name__ == "__main__":
    main()
