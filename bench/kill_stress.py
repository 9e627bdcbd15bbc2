"""The SIGKILL durability test of the suite, with many more kill points.

    python bench/kill_stress.py --kills 100

Exports under random SIGKILLs and restarts, then checks that every acknowledged span
is stored once and every session's totals agree (see tests/server/test_durability.py).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.server.test_durability import kill_and_check


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="threadline-kill-") as tmp:
        figures = kill_and_check(Path(tmp), args.kills, args.seed)
    print(
        f"{figures['kills']} SIGKILLs survived in {time.perf_counter() - started:.0f} s: "
        f"{figures['acknowledged']} acknowledged traces ({figures['spans_checked']} spans) "
        f"all present once; {figures['stored'] - figures['acknowledged']} more stored "
        "whose answer a kill cut off; every session's totals agree with its traces."
    )


if __name__ == "__main__":
    main()
