"""The durable ingest rate of a server with the search index and without it, in one run.

    python bench/search_server.py --round-spans 20000 --pairs 3
    python bench/search_server.py --round-spans 20000 --pairs 3 --corpus real

Rounds alternate with, without, without, with, with, without, ... (so a machine speeding
up or slowing down during the run favours neither): each round starts a fresh server
(``--workers`` ingest processes, SQLite in a new data directory), sends
``workload.py``'s spans in exports of ``--batch`` spans from ``--senders`` concurrent
exporters and times from the first export to every span written (``/healthz?wait``).
``--corpus`` picks the spans: ``workload`` (the default, as earlier figures were
measured: random windows of a 70-word vocabulary) or ``real`` (``corpus_otlp.py``:
``payload_corpus.py``'s chats of real text that resend their history, with tool spans);
the bodies are made once, before the first round, and every round sends the same ones.
The server without the index runs with the benchmark hook ``without_search_index``
(``bench/hooks/sitecustomize.py``: the index's documents empty in the server and its
worker processes), added to any hooks the environment names (``export_timeline``, say).
Printed: each round's spans/s and the CPU per span of the server's processes and of its
busiest thread, the writer (read from ``/proc``), each pair's shares (rate; spans per CPU
second, which a shared machine's other jobs disturb far less), and their medians.
``--also <checkout>/src`` adds a third arm to each pair, that checkout's server with the
index (an A/B of the index's code against the same rounds without it; the arms' order
reverses pair by pair).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple

import httpx

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import corpus_otlp  # noqa: E402
import workload  # noqa: E402
from server import measured_ingest, server_environment, start_server  # noqa: E402


class Round(NamedTuple):
    rate: float  # spans per second, from the first export to the last written
    cpu_us: float  # CPU of the server and its workers, µs per span
    writer_us: float  # CPU of its busiest thread (the writer), µs per span
    grouped: float  # exports a write transaction (the writer's group commit)


# Each corpus: its bodies, and a word its indexed spans say (found only with the index).
CORPORA = {
    "workload": (workload.batches, "refund"),
    "real": (corpus_otlp.batches, corpus_otlp.PROBE_WORD),
}


def one_round(
    index: bool,
    bodies: list[workload.Batch],
    probe: str,
    senders: int,
    workers: int,
    source: str | None = None,
) -> Round:
    """One fresh server's ingest of ``bodies`` (its code from ``source``, a checkout's
    ``src``, when given)."""
    spans = sum(body.spans for body in bodies)
    hooks = [] if index else ["without_search_index"]
    with (
        server_environment(hooks, source),
        tempfile.TemporaryDirectory(prefix="threadline-search-server-") as tmp,
    ):
        process, base_url, key = start_server(Path(tmp), workers)
        try:
            ingest = measured_ingest(process, base_url, key, bodies, senders)
            client = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}"})
            found = client.get(
                "/api/v1/traces", params={"q": probe, "limit": 1, "window": "all"}
            ).json()
            if bool(found["items"]) != index:
                raise SystemExit(f"index={index}, but a search found {found['items']!r}")
        finally:
            process.terminate()
            process.wait()
    grouped = ingest.health["exports_written"] / max(ingest.health["write_transactions"], 1)
    return Round(
        spans / ingest.elapsed, ingest.cpu / spans * 1e6, ingest.writer / spans * 1e6, grouped
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--round-spans", type=int, default=20_000)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=512, help="spans per export")
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--corpus", choices=sorted(CORPORA), default="workload")
    parser.add_argument(
        "--also",
        help="another checkout's src: its server, with the index, is a third arm of each pair",
    )
    args = parser.parse_args()
    make, probe = CORPORA[args.corpus]
    bodies = list(make(args.round_spans, args.batch))
    print(
        f"{args.corpus}: {sum(b.spans for b in bodies):,} spans in {len(bodies)} exports,"
        f" {sum(len(b.body) for b in bodies) / sum(b.spans for b in bodies):,.0f} bytes a span",
        flush=True,
    )
    # Each arm: its name, whether the server indexes, the checkout whose code it runs.
    arms: list[tuple[str, bool, str | None]] = [("with the index", True, None)]
    if args.also:
        arms.append(("with, --also", True, args.also))
    arms.append(("without", False, None))
    shares: dict[str, dict[str, list[float]]] = {
        name: {"rate": [], "cpu": [], "writer": []} for name, index, _ in arms if index
    }
    for pair in range(args.pairs):
        order = arms if pair % 2 == 0 else arms[::-1]
        rounds = {}
        for name, index, source in order:
            rounds[name] = r = one_round(index, bodies, probe, args.senders, args.workers, source)
            print(
                f"  {name:15s} {r.rate:7.0f} spans/s; CPU {r.cpu_us:6.1f} µs/span,"
                f" writer thread {r.writer_us:6.1f}; {r.grouped:.2f} exports a transaction",
                flush=True,
            )
        without = rounds["without"]
        for name, arm in shares.items():
            with_ = rounds[name]
            arm["rate"].append(with_.rate / without.rate)
            # A share of CPU: how many spans a CPU second ingests with the index, against
            # without (the same as the rate's share where the CPU is the bound).
            arm["cpu"].append(without.cpu_us / with_.cpu_us)
            arm["writer"].append(without.writer_us / with_.writer_us)
            print(
                f"pair {pair + 1}, {name}: rate {arm['rate'][-1]:.1%}, per CPU second"
                f" {arm['cpu'][-1]:.1%}, per writer CPU second {arm['writer'][-1]:.1%}",
                flush=True,
            )
    for name, arm in shares.items():
        print(
            f"medians, {name}: "
            + ", ".join(f"{key} {statistics.median(values):.1%}" for key, values in arm.items())
        )


if __name__ == "__main__":
    main()
