"""CPU instructions per span of each ingest stage, counted by valgrind: a figure that,
unlike time, does not move with the other tenants of a shared machine.

    python bench/instructions.py            # needs valgrind (apt install valgrind)

Runs the stages of ``POST /v1/traces`` (decode, normalise, write: rows, payload packing,
insert, rollups and commit) in-process on the workload of ``workload.py``, once per
stage cut-off under ``valgrind --tool=callgrind``, after a warm-up that fills the store
and trains its payload dictionary; the difference between two cut-offs is the cost of
the stage in between. It also prints the C functions that cost the most in each stage.
About a minute per stage on a 2-core machine.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import re
import subprocess
import sys
import tempfile
from pathlib import Path

STAGES = ("none", "decode", "normalize", "write")


def run_stage(stage: str, spans: int, flavour: str) -> None:
    """The body of one callgrind run: everything up to and including ``stage``."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import workload

    from threadline.server.ingest.decode import PROTOBUF, decode_request
    from threadline.server.ingest.normalize import normalize_request
    from threadline.server.ingest.tuning import tune_garbage_collector
    from threadline.server.store.sqlite import SQLiteStore

    warm_up = [b.body for b in workload.batches(2048, seed=7, tag="warm")]
    bodies = [b.body for b in workload.batches(spans, flavour=flavour)]
    tune_garbage_collector()  # as the server does
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(Path(tmp) / "instructions.db")
        project = store.create_project("bench").id
        for body in warm_up:
            store.write_spans(project, normalize_request(decode_request(body, PROTOBUF)).spans)
        for body in bodies:
            if stage == "none":
                continue
            request = decode_request(body, PROTOBUF)
            if stage == "decode":
                continue
            records = normalize_request(request).spans
            if stage == "normalize":
                continue
            store.write_spans(project, records)
        store.close()


def functions(profile: Path) -> collections.Counter[str]:
    """Instructions by function (self cost) from a callgrind profile."""
    text = subprocess.run(
        ["callgrind_annotate", "--threshold=100", str(profile)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found: collections.Counter[str] = collections.Counter()
    for line in text.splitlines():
        match = re.match(r"\s*([\d,]+) \([\s\d.]+%\)\s+(\S.*)", line)
        if match and "PROGRAM TOTALS" not in line:
            where = match.group(2)
            name = where.split(":", 1)[-1].split(" [")[0]
            library = re.search(r"\[(?:.*/)?([^/\]]+)\]$", where)
            found[f"{name} ({library.group(1) if library else '?'})"] += int(
                match.group(1).replace(",", "")
            )
    return found


def print_part(
    part: str, per_span: float, cost: collections.Counter[str], spans: int, top: int
) -> None:
    """A part's thousands of instructions a span, then its ``top`` costliest functions'."""
    print(f"\n{part:10s} {per_span / 1e3:7.1f}")
    for name, count in cost.most_common(top):
        print(f"    {count / spans / 1e3:6.1f}  {name[:100]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=1000, help="a multiple of 50")
    parser.add_argument("--top", type=int, default=6, help="functions shown per stage")
    parser.add_argument(
        "--flavour",
        default="threadline",
        choices=("threadline", "openinference"),
        help="the workload's attribute conventions: threadline or openinference"
        " (the one bench/compare.py sends)",
    )
    parser.add_argument("--stage", choices=STAGES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.spans % 50:
        parser.error("--spans must be a multiple of 50 (whole sessions)")
    if args.stage:  # inside valgrind
        run_stage(args.stage, args.spans, args.flavour)
        return
    with tempfile.TemporaryDirectory() as tmp:
        profiles = {stage: Path(tmp) / f"{stage}.out" for stage in STAGES}
        runs = [
            subprocess.Popen(
                [
                    "valgrind",
                    "--tool=callgrind",
                    f"--callgrind-out-file={path}",
                    sys.executable,
                    __file__,
                    "--stage",
                    stage,
                    "--spans",
                    str(args.spans),
                    "--flavour",
                    args.flavour,
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for stage, path in profiles.items()
        ]
        if any(run.wait() for run in runs):
            raise SystemExit("a valgrind run failed (is valgrind installed?)")
        counted = {stage: functions(path) for stage, path in profiles.items()}
    print(
        f"thousands of instructions per span, {args.spans} spans of bench/workload.py"
        f" ({args.flavour} flavour)"
    )
    total = 0.0
    for before, stage in itertools.pairwise(STAGES):
        cost = counted[stage] - counted[before]  # Counter subtraction keeps positives
        per_span = (sum(counted[stage].values()) - sum(counted[before].values())) / args.spans
        total += per_span
        print_part(stage, per_span, cost, args.spans, args.top)
    print(f"\n{'total':10s} {total / 1e3:7.1f}")


if __name__ == "__main__":
    main()
