"""CPU instructions per span of an ingest worker's job and of loading its answer, counted
by valgrind: figures that, unlike time, do not move with the other tenants of a shared
machine.

    python bench/worker_instructions.py --spans 2048     # needs valgrind
    python bench/worker_instructions.py --spans 2048 --corpus real --parts prepare

Prepares the workload's exports (``workload.py``, 512 spans an export, as
``bench/server.py`` sends them; ``--corpus real``: ``corpus_otlp.py``'s real chats,
made before valgrind starts, since making them under it takes a quarter of an hour)
as a worker does (``ingest/prepare.py`` with the SQLite
store's preparer, its payload dictionary trained on a first export as in a server), then
counts, under ``valgrind --tool=callgrind`` and per span, three parts apart:

- ``prepare``: the worker's job (``prepare_export``: inflate, decode, bounds, normalise,
  redact, the store's rows, rollups and search documents);
- ``pickle``: pickling its answer (what the worker streams back);
- ``load``: loading the answer (what the server process's slot thread does).

Each part runs in a valgrind of its own, collecting only inside the part (the part is
called through ``functools.reduce``, a C function that toggles the collection). It
prints the C functions that cost the most in each part. Run it with ``PYTHONPATH`` at
each of two checkouts to compare them. A benchmark, not a test: it prints numbers.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import corpus_otlp
import workload
from ingest_stages import trained_job
from instructions import functions, print_part

PARTS = {"prepare": "functools_reduce", "pickle": "_pickle_dumps*", "load": "_pickle_loads*"}


def run_part(part: str, spans: int, bodies_file: Path) -> None:
    """The body of one callgrind run: everything, collected inside ``part`` only."""
    from threadline.server.ingest.decode import PROTOBUF
    from threadline.server.ingest.prepare import prepare_export
    from threadline.server.ingest.tuning import tune_garbage_collector
    from threadline.server.settings import Settings

    first, *bodies = pickle.loads(bodies_file.read_bytes())
    tune_garbage_collector()  # as a worker does
    job = trained_job(Settings(), first)
    prepare_export(job, first, PROTOBUF, None)  # warm: modules, the dictionary's tables

    def prepared(_: object, body: bytes) -> Any:
        return prepare_export(job, body, PROTOBUF, None)

    if part == "prepare":
        functools.reduce(prepared, bodies, None)
        return
    answers = [prepare_export(job, body, PROTOBUF, None) for body in bodies]
    pickled = [pickle.dumps(a, protocol=pickle.HIGHEST_PROTOCOL) for a in answers]
    if part == "pickle":
        for answer in answers:
            pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
    else:
        for data in pickled:
            pickle.loads(data)
    print(f"answer {sum(map(len, pickled)) / spans:,.0f} bytes a span", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=2048, help="a multiple of 512")
    parser.add_argument("--top", type=int, default=8, help="functions shown per part")
    parser.add_argument(
        "--corpus",
        choices=("workload", "real"),
        default="workload",
        help="workload.py's spans or corpus_otlp.py's real chats",
    )
    parser.add_argument(
        "--parts", nargs="+", choices=PARTS, default=list(PARTS), help="the parts counted"
    )
    parser.add_argument("--part", choices=PARTS, help=argparse.SUPPRESS)
    parser.add_argument("--bodies", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.spans % 512:
        parser.error("--spans must be a multiple of 512 (whole exports)")
    if args.part:  # inside valgrind
        run_part(args.part, args.spans, args.bodies)
        return
    # One export more than counted: the first trains the payload dictionary.
    if args.corpus == "real":
        made = corpus_otlp.batches(args.spans + 512, 512)
    else:
        made = workload.batches(args.spans + 512, 512)
    with tempfile.TemporaryDirectory() as tmp:
        bodies = Path(tmp) / "bodies.pickle"
        exports = [b.body for b in itertools.islice(made, args.spans // 512 + 1)]
        bodies.write_bytes(pickle.dumps(exports))
        profiles = {part: Path(tmp) / f"{part}.out" for part in args.parts}
        runs = {
            part: subprocess.Popen(
                [
                    "valgrind",
                    "--tool=callgrind",
                    f"--callgrind-out-file={path}",
                    "--collect-atstart=no",
                    f"--toggle-collect={PARTS[part]}",
                    sys.executable,
                    __file__,
                    "--part",
                    part,
                    "--spans",
                    str(args.spans),
                    "--bodies",
                    str(bodies),
                ],
                # Hashed strings' order fixed: the same counts run after run.
                env={**os.environ, "PYTHONHASHSEED": "0"},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            for part, path in profiles.items()
        }
        said = {part: run.communicate()[1] for part, run in runs.items()}
        if any(run.returncode for run in runs.values()):
            raise SystemExit(f"a valgrind run failed: {said}")
        counted = {part: functions(path) for part, path in profiles.items()}
    source = "corpus_otlp.py's real chats" if args.corpus == "real" else "workload.py"
    print(f"thousands of instructions per span, {args.spans} spans of bench/{source}")
    for line in said.get("load", "").splitlines():
        if line.startswith("answer"):
            print(line)
    total = 0.0
    for part, cost in counted.items():
        per_span = sum(cost.values()) / args.spans
        total += per_span
        print_part(part, per_span, cost, args.spans, args.top)
    print(f"\n{'total':10s} {total / 1e3:7.1f}")


if __name__ == "__main__":
    main()
