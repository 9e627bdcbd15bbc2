"""What the previews' text (``*_text``, made on each answer) costs a list page and an
export, against a server without it: two servers on copies of one store, the requests
alternating between them (A B B A ...).

    python bench/preview_texts.py --before /work/wt/<branch>-before/src --sessions 5000

Each session is one turn: a root span whose input is a chat (its preview a JSON
message list) and whose output is a reply of ``--reply-chars`` characters in
``{"reply": ...}``: past 2,000 characters every output preview is cut JSON, the
costliest to read as text. Timed over HTTP: the web UI's Sessions and Traces tabs
(their first pages, signed in as a browser), ``GET /api/v1/sessions`` and
``/api/v1/traces`` (pages of 50), and the Sessions list exported as CSV (every session).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fillers
from fillers import T0
from server import p50_p95, start_server

from threadline.server.model import SpanRecord

HERE = str(Path(__file__).resolve().parent.parent / "src")


def _spans(sessions: int, reply_chars: int) -> Iterator[SpanRecord]:
    rng = random.Random(7)
    reply = ('Your invoice had a "late fee" of 12 € that should not be there. ' * 100)[:reply_chars]
    for s in range(sessions):
        trace, root = fillers.trace_id(rng), fillers.span_id(rng)
        said = json.dumps([{"role": "user", "content": f"My invoice {s} is wrong"}])
        replied = json.dumps({"reply": reply}, ensure_ascii=False)
        yield fillers.turn_root(trace, root, T0 + s * 10**9, f"s-{s:06d}", "u", said, replied)
        for i in range(2):
            yield fillers.turn_step(rng, trace, root, T0 + s * 10**9, i, "tool", ('"q"', '"a"'))


def _cpu_ms(pid: int) -> float:
    """The CPU time (user + system) process ``pid`` has used, in ms."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def _signed_in(base_url: str, key: str) -> httpx.Client:
    """A client signed in to the web UI, as a browser is."""
    browser = httpx.Client(base_url=base_url, timeout=120)
    answer = browser.post(
        "/login",
        content=f"key={key}&next=/sessions",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 303, answer.text
    return browser


def _timed(client: httpx.Client, path: str) -> float:
    started = time.perf_counter()
    response = client.get(path)
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise RuntimeError(f"GET {path}: {response.status_code} {response.text[:200]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", required=True, help="the src folder of the other arm")
    parser.add_argument("--sessions", type=int, default=5000)
    parser.add_argument("--reply-chars", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--requests", type=int, default=25, help="of each kind, a round")
    args = parser.parse_args()
    arms = {"before": args.before, "now": HERE}
    with tempfile.TemporaryDirectory(prefix="threadline-preview-texts-") as tmp:
        dirs = {arm: Path(tmp) / arm for arm in arms}
        for folder in dirs.values():
            folder.mkdir()
        fillers.write_spans(dirs["now"] / "threadline.db", _spans(args.sessions, args.reply_chars))
        shutil.copy(dirs["now"] / "threadline.db", dirs["before"] / "threadline.db")
        servers, clients, browsers, pids = [], {}, {}, {}
        try:
            for arm, src in arms.items():
                os.environ["PYTHONPATH"] = src
                process, base_url, key = start_server(dirs[arm], workers=1)
                servers.append(process)
                pids[arm] = process.pid
                clients[arm] = httpx.Client(
                    base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=120
                )
                browsers[arm] = _signed_in(base_url, key)
            kinds = {
                "Sessions tab (HTML)": "/sessions?range=all",
                "Traces tab (HTML)": "/traces?range=all",
                "GET /api/v1/sessions (50)": "/api/v1/sessions?window=all&limit=50",
                "GET /api/v1/traces (50)": "/api/v1/traces?window=all&limit=50",
                f"CSV export, {args.sessions:,} sessions": "/api/v1/export/sessions"
                "?format=csv&window=all",
            }
            page = clients["now"].get(kinds["GET /api/v1/sessions (50)"]).json()["items"]
            cut = page[0]["last_output_text"].endswith("…")
            assert cut == (args.reply_chars > 1990), page[0]["last_output_text"]
            times: dict[tuple[str, str], list[float]] = {}
            cpu: dict[tuple[str, str], float] = {}
            for round_ in range(args.rounds):
                order = ["before", "now"] if round_ % 2 == 0 else ["now", "before"]
                for name, path in kinds.items():
                    count = 2 if name.startswith("CSV") else args.requests
                    for arm in order:
                        client = browsers[arm] if "HTML" in name else clients[arm]
                        client.get(path)  # warm
                        used = _cpu_ms(pids[arm])
                        times.setdefault((name, arm), []).extend(
                            _timed(client, path) for _ in range(count)
                        )
                        cpu[(name, arm)] = cpu.get((name, arm), 0) + _cpu_ms(pids[arm]) - used
        finally:
            for process in servers:
                process.terminate()
                process.wait()
    print(
        f"{args.sessions:,} sessions, replies of {args.reply_chars:,} characters; load "
        f"{os.getloadavg()[0]:.1f}; the server's CPU ms a request (mean), wall p50 / p95 ms;"
        " arms alternating:"
    )
    for name in kinds:
        line = f"  {name:30s}"
        for arm in ("before", "now"):
            spent = times[(name, arm)]
            p50, p95 = p50_p95(spent)
            mean_cpu = cpu[(name, arm)] / len(spent)
            line += f"  {arm}: cpu {mean_cpu:6.2f}, wall {p50:6.1f} / {p95:6.1f}"
        print(line)


if __name__ == "__main__":
    main()
