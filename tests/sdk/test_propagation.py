"""Distributed sessions: carrier out of one process, trace and session resumed in another."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import urllib.parse

from threadline import Threadline, observe, semconv

from .conftest import Recorded


def test_carrier_contents(recorded: Recorded) -> None:
    assert Threadline.get_context_carrier() == {}  # no span: nothing to continue

    @observe(session_id="conv 1", user_id="ada")
    def turn() -> dict[str, str]:
        return Threadline.get_context_carrier()

    carrier = turn()
    root = recorded.one("turn")
    version, trace_id, span_id, flags = carrier["traceparent"].split("-")
    assert version == "00" and int(flags, 16) & 1  # sampled
    assert trace_id == format(root.context.trace_id, "032x")
    assert span_id == format(root.context.span_id, "016x")
    entries = dict(entry.split("=", 1) for entry in carrier["baggage"].split(","))
    assert urllib.parse.unquote_plus(entries["threadline.session.id"]) == "conv 1"
    assert entries["threadline.user.id"] == "ada"


def test_round_trip_in_a_context_free_thread(recorded: Recorded) -> None:
    @observe
    def turn() -> dict[str, str]:
        Threadline.set_trace_session_id("conv-2")
        Threadline.set_trace_user_id("bob")
        return Threadline.get_context_carrier()

    @observe(span_type="TOOL")
    def job() -> None:
        Threadline.set_trace_metadata({"worker": True})

    carrier = turn()

    def worker() -> None:  # a plain thread: nothing inherited but the carrier
        with Threadline.continue_trace(carrier):
            job()

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    root, remote = recorded.one("turn"), recorded.one("job")
    assert remote.context.trace_id == root.context.trace_id
    assert remote.parent is not None and remote.parent.span_id == root.context.span_id
    assert remote.parent.is_remote
    assert remote.attributes[semconv.SESSION_ID] == "conv-2"
    assert remote.attributes[semconv.USER_ID] == "bob"


def test_bad_carriers_run_the_block_untraced_by_the_remote(recorded: Recorded) -> None:
    @observe
    def job() -> None: ...

    for carrier in (None, {}, {"traceparent": "garbage", "baggage": "%%%"}):
        with Threadline.continue_trace(carrier):  # type: ignore[arg-type]
            job()
    spans = recorded.named("job")
    assert len(spans) == 3 and all(s.parent is None for s in spans)


def test_round_trip_across_processes(recorded: Recorded) -> None:
    @observe
    def turn() -> dict[str, str]:
        Threadline.set_trace_session_id("conv-3")
        return Threadline.get_context_carrier()

    carrier = turn()
    child = textwrap.dedent("""
        import json, sys
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        from threadline import Threadline, observe

        exporter = InMemorySpanExporter()
        Threadline.initialize(span_exporter=exporter, instrument=False)

        @observe
        def worker_step():
            pass

        with Threadline.continue_trace(json.loads(sys.argv[1])):
            worker_step()
        Threadline.flush()
        span, = exporter.get_finished_spans()
        print(json.dumps({"trace": span.context.trace_id, "parent": span.parent.span_id,
                          "session": span.attributes.get("threadline.session.id")}))
    """)
    result = subprocess.run(
        [sys.executable, "-c", child, json.dumps(carrier)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    remote = json.loads(result.stdout)
    root = recorded.one("turn")
    assert remote == {
        "trace": root.context.trace_id,
        "parent": root.context.span_id,
        "session": "conv-3",
    }
