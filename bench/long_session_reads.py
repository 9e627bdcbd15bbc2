"""What reading one very long session costs a server: a session of 100,000 traces (one
client writing one session id for ever), read through the JSON API and the web UI.

    python bench/long_session_reads.py                         # 100,000 turns, 3 rounds
    python bench/long_session_reads.py --turns 100000 --keep-base /tmp/long-base

Fills a SQLite store straight through ``Store.write_spans`` with one session of
``--turns`` traces (a root span with a chat input and reply, and a model call), or
reuses the one kept in ``--keep-base``; copies it, starts ``threadline serve`` on the
copy (``--workers 1``), signs in like a browser, and for each request prints the
server process's CPU time (its threads', from /proc, read before and after) and the
bytes of the answer, the median over ``--rounds``. Requests: the API's session detail
as a client asks for it first, its next page, a page near the end (``turn=``), the
session page, its page near the end, a session row expanded on the Sessions tab, and
a search inside the session (``find=``) for a word of one turn near its end.
A route the code under test does not have answers 4xx: its status is printed.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fillers
from fillers import T0
from server import start_server

from threadline.server.model import SpanRecord

SESSION = "endless"


def _spans(turns: int) -> Iterator[SpanRecord]:
    rng = random.Random(17)
    for turn in range(turns):
        trace = fillers.trace_id(rng)
        root = fillers.span_id(rng)
        start = T0 + turn * 3 * 10**9
        said = f'[{{"role": "user", "content": "question number {turn}"}}]'
        replied = f'[{{"role": "assistant", "content": "answer number {turn}"}}]'
        yield fillers.turn_root(trace, root, start, SESSION, "user-1", said, replied)
        yield fillers.turn_step(rng, trace, root, start, 0, "tool", (said, replied))


def _cpu_seconds(pid: int) -> float:
    """The CPU time of the process's threads (nanosecond counters: the clock ticks of
    /proc/<pid>/stat are 10 ms)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass  # a thread that ended between the listing and the read
    return total / 1e9


def _requests(turns: int) -> dict[str, tuple[str, str]]:
    late = max(turns - 49, 1)
    return {
        "API detail, as first asked": ("api", f"/api/v1/sessions/{SESSION}"),
        "API detail, next page (cursor)": ("api", "NEXT"),
        f"API detail, turn={late}": ("api", f"/api/v1/sessions/{SESSION}?turn={late}"),
        "session page": ("web", f"/sessions/{SESSION}"),
        f"session page, turn={late}": ("web", f"/sessions/{SESSION}?turn={late}"),
        "Sessions tab row expanded": ("web", f"/fragments/session-traces?session_id={SESSION}"),
        f"session page, find={turns - 10}": ("web", f"/sessions/{SESSION}?find={turns - 10}"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep-base", type=Path, help="fill once into this directory, reuse")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="threadline-long-session-") as tmp:
        base = args.keep_base or Path(tmp) / "base"
        if not (base / "threadline.db").exists():
            base.mkdir(parents=True, exist_ok=True)
            started = time.perf_counter()
            fillers.write_spans(base / "threadline.db", _spans(args.turns))
            print(f"filled {args.turns:,} turns in {time.perf_counter() - started:.0f} s")
        data_dir = Path(tmp) / "data"
        shutil.copytree(base, data_dir)
        process, base_url, key = start_server(data_dir, workers=1)
        try:
            figures = _measure(process.pid, base_url, key, args.turns, args.rounds)
        finally:
            process.terminate()
            process.wait()
    print(f"one session of {args.turns:,} traces; median of {args.rounds} rounds:")
    for name, (status, cpu, size) in figures.items():
        print(f"  {name:34s} {status}  CPU {cpu * 1000:8.0f} ms  {size:12,} bytes")


def _measure(
    pid: int, base_url: str, key: str, turns: int, rounds: int
) -> dict[str, tuple[int, float, int]]:
    api = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=600)
    web = httpx.Client(base_url=base_url, timeout=600)
    signed_in = web.post(
        "/login",
        content=f"key={key}&next=/sessions",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert signed_in.status_code == 303, signed_in.text
    seen: dict[str, list[tuple[int, float, int]]] = {}
    for _ in range(rounds):
        next_cursor = None
        for name, (client, path) in _requests(turns).items():
            if path == "NEXT":
                if next_cursor is None:
                    continue
                path = (
                    f"/api/v1/sessions/{SESSION}?" + httpx.QueryParams(cursor=next_cursor).__str__()
                )
            before = _cpu_seconds(pid)
            answer = (api if client == "api" else web).get(path)
            cpu = _cpu_seconds(pid) - before
            if name.startswith("API detail, as first") and answer.status_code == 200:
                next_cursor = answer.json().get("next_cursor")
            seen.setdefault(name, []).append((answer.status_code, cpu, len(answer.content)))
    return {
        name: (
            values[-1][0],
            statistics.median(v[1] for v in values),
            int(statistics.median(v[2] for v in values)),
        )
        for name, values in seen.items()
    }


if __name__ == "__main__":
    main()
