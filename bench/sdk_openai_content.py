"""What recording a call's messages on its span adds to an auto-instrumented OpenAI call.

The real ``openai`` client calls the local fake OpenAI server (loopback, a thread of
this process) through the SDK's instrumentation, with content capture on (the SDK turns
the instrumentor's GenAI log events into ``gen_ai.input.messages`` /
``gen_ai.output.messages``) and off (the instrumentor as it is, no content). Spans go to
an exporter that drops them. The figure is the calling thread's CPU time per call
(``time.thread_time``: the fake server's threads are not counted), for a short chat and
a long history; arms alternate A B B A within each round, best of the rounds.

Run:  python bench/sdk_openai_content.py [--calls 300] [--rounds 3] [--history 2 50]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from tests.integrations.fake_openai import FakeOpenAI
from threadline import Threadline


class DropExporter(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def history(messages: int) -> list[Any]:
    """A system prompt, then alternating user and assistant turns of ~60 words each,
    ending with the user's question: ``messages`` messages in all."""
    words = " ".join(f"word{i}" for i in range(60))
    chat = [{"role": "system", "content": "You are a terse support agent. " + words}]
    for index in range(1, messages):
        role = "user" if (messages - index) % 2 == 1 else "assistant"
        chat.append({"role": role, "content": f"turn {index}: {words}"})
    return chat


def cpu_us_per_call(base_url: str, capture: bool, messages: list[Any], calls: int) -> float:
    import openai

    Threadline._reset_for_tests()
    Threadline.initialize(
        span_exporter=DropExporter(), instrument=["openai"], capture_content=capture
    )
    client = openai.OpenAI(base_url=base_url, api_key="sk-bench", max_retries=0)
    client.chat.completions.create(model="gpt-4o-mini", messages=messages)  # warm
    start = time.thread_time()
    for _ in range(calls):
        client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    spent = time.thread_time() - start
    client.close()
    Threadline._reset_for_tests()
    return spent / calls * 1e6


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--history", type=int, nargs="+", default=[2, 50])
    args = parser.parse_args(argv)
    os.environ.pop("THREADLINE_DISABLED", None)
    print(f"load average at start: {os.getloadavg()}")
    with FakeOpenAI() as fake:
        for size in args.history:
            messages = history(size)
            best = {True: float("inf"), False: float("inf")}
            for _ in range(args.rounds):
                for capture in (False, True, True, False):  # A B B A
                    best[capture] = min(
                        best[capture], cpu_us_per_call(fake.base_url, capture, messages, args.calls)
                    )
            added = best[True] - best[False]
            print(
                f"{size:>3} messages: content off {best[False]:8.1f} µs CPU/call, "
                f"on {best[True]:8.1f}, added {added:+7.1f} ({added / best[False]:+.1%})"
            )
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
