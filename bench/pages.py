"""Page and API latency on a large store: is the Sessions tab still fast at 1M spans?

    python bench/pages.py --spans 1000000

Fills a fresh SQLite store straight through ``Store.write_spans`` (the same write path
as ingest, minus HTTP and protobuf, which ``server.py`` measures) with sessions of 5
traces of 10 spans, small payloads, then starts ``threadline serve`` on it, signs in
like a browser and times, over HTTP:

- the Sessions tab, first page (server-rendered HTML), and the Traces tab;
- the JSON twins: sessions list and traces list, first page of 50;
- a session page and a trace page.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fillers
from fillers import T0
from server import latencies, start_server

from threadline.server.model import SpanRecord


def fill(path: Path, total: int, batch: int = 5000) -> int:
    """Write ``total`` spans; return the number of sessions."""
    sessions = total // 50
    started = time.perf_counter()
    fillers.write_spans(path, _spans(sessions), batch)
    print(f"filled {total:,} spans in {time.perf_counter() - started:.0f} s")
    return sessions


def _spans(sessions: int) -> Iterator[SpanRecord]:
    """Five turns a session, each a root span and nine steps."""
    rng = random.Random(5)
    for s in range(sessions):
        for turn in range(5):
            trace = fillers.trace_id(rng)
            start = T0 + s * 10**9 + turn * 60 * 10**9
            root = fillers.span_id(rng)
            said, replied = f'{{"message": "question {s}-{turn}"}}', '{"reply": "answer"}'
            yield fillers.turn_root(
                trace, root, start, f"page-{s:07d}", f"user-{s % 997}", said, replied
            )
            for i in range(9):
                step = ('[{"role": "user", "content": "..."}]', '"..."')
                yield fillers.turn_step(rng, trace, root, start, i, "tool", step)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="threadline-pages-") as tmp:
        data_dir = Path(tmp)
        sessions = fill(data_dir / "threadline.db", args.spans)
        process, base_url, key = start_server(data_dir, workers=1)
        try:
            api = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}"})
            browser = httpx.Client(base_url=base_url)
            signed_in = browser.post(
                "/login",
                content=f"key={key}&next=/sessions",
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            assert signed_in.status_code == 303, signed_in.text
            session_id = f"page-{sessions // 2:07d}"
            trace_id = api.get(f"/api/v1/sessions/{session_id}").json()["traces"][0]["trace_id"]
            n = args.queries
            # All time (range=all, window=all): the lists default to the last 7 days, the
            # filled spans are older.
            figures = {
                "Sessions tab (HTML, first page)": latencies(browser, ["/sessions?range=all"] * n),
                "Traces tab (HTML, first page)": latencies(browser, ["/traces?range=all"] * n),
                "session page (HTML)": latencies(browser, [f"/sessions/{session_id}"] * n),
                "trace page (HTML)": latencies(browser, [f"/traces/{trace_id}"] * n),
                "GET /api/v1/sessions?limit=50": latencies(
                    api, ["/api/v1/sessions?window=all"] * n
                ),
                "GET /api/v1/traces?limit=50": latencies(api, ["/api/v1/traces?window=all"] * n),
                "GET /api/v1/traces/{id}": latencies(api, [f"/api/v1/traces/{trace_id}"] * n),
            }
        finally:
            process.terminate()
            process.wait()
    print(f"{args.spans:,} spans, {sessions:,} sessions; p50 / p95 over {n} requests:")
    for name, (p50, p95) in figures.items():
        print(f"  {name:34s} {p50:6.1f} / {p95:6.1f} ms")


if __name__ == "__main__":
    main()
