"""Benchmark evaluations: how fast ended sessions are judged, and what an online
evaluator costs ingest.

    python bench/evaluations.py                      # 1,000 sessions; 3 rounds of 20,000 spans
    python bench/evaluations.py --sessions 1000 --round-spans 20000 --rounds 3

Both parts run the real server (``threadline serve``, SQLite, one worker) and the fake
judge of the tests (``tests/integrations/fake_judge.py``: an OpenAI-compatible chat
completions endpoint on loopback that answers at once), so they measure Threadline's
side of judging (finding ended sessions, reading transcripts, calling the judge,
writing scores and runs), not an LLM's latency. The judge stands for a remote API, so it
runs in a process of its own at the lowest CPU priority (``nice 19``): on a small
machine it would otherwise take the cores from the server and the senders it measures.

1. **Judging**: an online evaluator; ``--sessions`` sessions of 5 turns (10 spans each,
   the shape of ``workload.py``) are sent with times of a few seconds ago, so they count
   as ended (idle 1 s) as soon as they are written. Printed: the time from the last
   export's answer until every session has a finished run, and how many failed.
2. **Ingest with and without an online evaluator**, on one server, in alternating
   rounds of ``--round-spans`` spans: the evaluator is switched on (``PUT`` with
   ``online: true``) or off before each round, in the order on, off, off, on, on, off,
   ... so that a machine speeding up or slowing down during the run favours neither.
   Sessions are complete in one export and their times are a few seconds old, so while
   the evaluator is on, every session written ends during the round and is due for
   judging at once: the worst case for ingest. Each round is timed from the first
   export to every export written (``/healthz?wait``); the judging left over is waited
   out before the next round. Printed: each round's rate, each neighbouring pair's
   ratio, their median and the ratio of the medians.

It is a benchmark, not a test: it prints numbers and fails only if the data is wrong.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))
import server as bench_server  # noqa: E402
import workload  # noqa: E402

SPANS_PER_SESSION = workload.SPANS_PER_TRACE * workload.TRACES_PER_SESSION


def session_bodies(count: int, tag: str, seed: int, batch_sessions: int = 10) -> list[bytes]:
    """``count`` sessions of 5 turns, a second apart, each session whole in one export,
    ending a few seconds from now: after an evaluator switched on just before (it
    judges only sessions that end after that), and ended soon after they are written
    (idle time 1 s)."""
    rng = random.Random(seed)
    start = time.time_ns() - 6 * 10**9
    bodies = []
    for first in range(0, count, batch_sessions):
        spans = []
        for s in range(first, min(first + batch_sessions, count)):
            for turn in range(workload.TRACES_PER_SESSION):
                clock = start + turn * 10**9
                spans += workload.trace_spans(rng, f"{tag}-{s:06d}", f"user-{s % 97}", clock)
        bodies.append(workload._batch(spans, set()).body)
    return bodies


def send(base_url: str, key: str, bodies: list[bytes], senders: int) -> float:
    batches = [workload.Batch(body, 0, ()) for body in bodies]
    result = bench_server.send_all(base_url, {"Authorization": f"Bearer {key}"}, batches, senders)
    if result.failures:
        raise SystemExit(f"export failed: {result.failures[:3]}")
    return result.started


@contextlib.contextmanager
def remote_judge() -> Iterator[str]:
    """The fake judge in a process of its own at the lowest CPU priority; its base URL."""
    process = subprocess.Popen(
        ["nice", "-n", "19", sys.executable, "-m", "tests.integrations.fake_judge"],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        yield process.stdout.readline().strip()
    finally:
        assert process.stdin is not None
        process.stdin.close()
        process.wait(timeout=10)


def evaluator(judge_url: str, online: bool) -> dict:
    return {
        "name": "resolved",
        "prompt": "Did the assistant resolve the user's problem?\n{{transcript}}",
        "judge": {"base_url": judge_url, "model": "gpt-4o-mini"},
        "score": {"name": "resolved", "data_type": "boolean"},
        "online": online,
    }


def totals(api: httpx.Client) -> dict:
    return api.get("/api/v1/evaluators/resolved").json()["totals"]


def wait_judged(api: httpx.Client, finished: int, timeout: float = 180) -> float:
    """Seconds until the evaluator has ``finished`` runs done or failed."""
    started = time.perf_counter()
    while True:
        t = totals(api)
        if t["runs_done"] + t["runs_failed"] >= finished and t["runs_pending"] == 0:
            return time.perf_counter() - started
        if time.perf_counter() - started > timeout:
            raise SystemExit(f"judging did not finish: {t}")
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--round-spans", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3, help="rounds with, and as many without")
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=4, help="evaluation_concurrency")
    args = parser.parse_args()

    os.environ["THREADLINE_SESSION_IDLE_SECONDS"] = "1"
    os.environ["THREADLINE_EVALUATION_CONCURRENCY"] = str(args.concurrency)
    data_dir = Path(tempfile.mkdtemp(prefix="threadline-bench-eval-"))
    process, base_url, key = bench_server.start_server(data_dir, workers=1)
    try:
        with (
            remote_judge() as judge,
            httpx.Client(
                base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=60
            ) as api,
        ):
            # --- 1. judging ------------------------------------------------------------
            assert api.post("/api/v1/evaluators", json=evaluator(judge, True)).status_code == 201
            time.sleep(1.5)  # the evaluator's first sweep: it watches from then on
            bodies = session_bodies(args.sessions, "judged", seed=1)
            send(base_url, key, bodies, args.senders)
            api.get("/healthz", params={"wait": 60})
            sent = time.perf_counter()
            seconds = wait_judged(api, args.sessions)
            t = totals(api)
            print(
                f"judging: {t['runs_done']} sessions judged, {t['runs_failed']} failed,"
                f" {seconds:.1f} s after the last export was written (idle time 1 s,"
                f" concurrency {args.concurrency});"
                f" judge tokens {t['input_tokens']} in / {t['output_tokens']} out,"
                f" cost ${t['cost_usd']:.4f}"
            )
            if t["runs_done"] != args.sessions or t["runs_failed"]:
                raise SystemExit("not every session was judged once")
            del sent
            # The same sessions, stored and ended, judged on demand by a second evaluator.
            second = {**evaluator(judge, False), "name": "again"}
            second["score"] = {"name": "again", "data_type": "boolean"}
            assert api.post("/api/v1/evaluators", json=second).status_code == 201
            asked = time.perf_counter()
            response = api.post(
                "/api/v1/evaluation-runs",
                json={"evaluator": "again", "since": "2000-01-01T00:00:00Z"},
            )
            assert response.status_code == 202, response.text
            queued = time.perf_counter() - asked
            while True:
                again = api.get("/api/v1/evaluators/again").json()["totals"]
                if again["runs_done"] + again["runs_failed"] >= args.sessions:
                    break
                time.sleep(0.05)
            took = time.perf_counter() - asked
            print(
                f"on demand: {again['runs_done']} stored sessions judged, {again['runs_failed']}"
                f" failed, in {took:.1f} s from the request ({queued:.1f} s to queue the runs)"
            )

            # --- 2. ingest with and without ------------------------------------------
            sessions = args.round_spans // SPANS_PER_SESSION
            rates: dict[bool, list[float]] = {True: [], False: []}
            pairs: list[float] = []
            finished = t["runs_done"]
            for round_number in range(args.rounds * 2):
                # on, off, off, on, on, off, ...: each pair of rounds has one of each.
                online = round_number % 4 in (0, 3)
                response = api.put("/api/v1/evaluators/resolved", json=evaluator(judge, online))
                assert response.status_code == 200
                time.sleep(1.5)  # switched on: its first sweep marks where it starts
                bodies = session_bodies(sessions, f"r{round_number}", seed=10 + round_number)
                judged_before = totals(api)["runs_done"]
                started = send(base_url, key, bodies, args.senders)
                api.get("/healthz", params={"wait": 60})
                # Written when /healthz finds no export queued; the newest session must read.
                elapsed = time.perf_counter() - started
                rate = sessions * SPANS_PER_SESSION / elapsed
                rates[online].append(rate)
                judged_during = totals(api)["runs_done"] - judged_before
                if online:
                    finished += sessions
                    wait_judged(api, finished)
                print(
                    f"round {round_number + 1}: evaluator {'on ' if online else 'off'}"
                    f" {rate:,.0f} spans/s ({elapsed:.2f} s)"
                    + (
                        f", {judged_during} of {sessions} sessions judged meanwhile"
                        if online
                        else f", {judged_during} judged meanwhile"
                    )
                )
                if round_number % 2 == 1:
                    pairs.append(rates[True][-1] / rates[False][-1])
                    print(f"  pair {len(pairs)}: on / off {pairs[-1]:.1%}")
            on, off = statistics.median(rates[True]), statistics.median(rates[False])
            print(
                f"ingest: median {on:,.0f} spans/s with the online evaluator,"
                f" {off:,.0f} without: {on / off:.1%} of the rate without;"
                f" median of the pairs {statistics.median(pairs):.1%}"
            )
    finally:
        process.terminate()
        process.wait(timeout=30)


if __name__ == "__main__":
    main()
