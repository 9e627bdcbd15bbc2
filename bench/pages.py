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
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from server import latencies, start_server

from threadline.server.model import SpanRecord
from threadline.server.store.sqlite import SQLiteStore

MS = 1_000_000
T0 = 1_790_000_000_000_000_000


def fill(path: Path, total: int, batch: int = 5000) -> int:
    """Write ``total`` spans; return the number of sessions."""
    rng = random.Random(5)
    store = SQLiteStore(path)
    project = store.create_project("default").id
    sessions = total // 50
    pending: list[SpanRecord] = []
    started = time.perf_counter()
    for s in range(sessions):
        for turn in range(5):
            trace_id = rng.getrandbits(128).to_bytes(16, "big").hex()
            start = T0 + s * 10**9 + turn * 60 * 10**9
            root = rng.getrandbits(63).to_bytes(8, "big").hex()
            pending.append(
                SpanRecord(
                    trace_id=trace_id,
                    span_id=root,
                    parent_span_id=None,
                    name="handle_turn",
                    kind="SERVER",
                    start_ns=start,
                    end_ns=start + 2000 * MS,
                    status="ok",
                    input=f'{{"message": "question {s}-{turn}"}}',
                    output='{"reply": "answer"}',
                    session_id=f"page-{s:07d}",
                    user_id=f"user-{s % 997}",
                )
            )
            for i in range(9):
                llm = i % 2 == 0
                pending.append(
                    SpanRecord(
                        trace_id=trace_id,
                        span_id=rng.getrandbits(63).to_bytes(8, "big").hex(),
                        parent_span_id=root,
                        name="chat gpt-4o-mini" if llm else "tool",
                        kind="CLIENT",
                        start_ns=start + (i + 1) * 100 * MS,
                        end_ns=start + (i + 2) * 100 * MS,
                        status="ok",
                        span_type="LLM" if llm else "TOOL",
                        model="gpt-4o-mini" if llm else None,
                        input_tokens=500 if llm else None,
                        output_tokens=50 if llm else None,
                        total_tokens=550 if llm else None,
                        cost_usd=0.000105 if llm else None,
                        input='[{"role": "user", "content": "..."}]',
                        output='"..."',
                    )
                )
            if len(pending) >= batch:
                store.write_spans(project, pending)
                pending = []
    if pending:
        store.write_spans(project, pending)
    store.close()
    print(f"filled {total:,} spans in {time.perf_counter() - started:.0f} s")
    return sessions


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
            figures = {
                "Sessions tab (HTML, first page)": latencies(browser, ["/sessions"] * n),
                "Traces tab (HTML, first page)": latencies(browser, ["/traces"] * n),
                "session page (HTML)": latencies(browser, [f"/sessions/{session_id}"] * n),
                "trace page (HTML)": latencies(browser, [f"/traces/{trace_id}"] * n),
                "GET /api/v1/sessions?limit=50": latencies(api, ["/api/v1/sessions"] * n),
                "GET /api/v1/traces?limit=50": latencies(api, ["/api/v1/traces"] * n),
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
