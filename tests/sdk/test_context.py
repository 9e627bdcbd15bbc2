"""Trace-level session/user/metadata/tags: scope, inheritance, and misuse."""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from threadline import Threadline, observe, semconv
from threadline.sdk import state

from .conftest import Recorded


def third_party_tracer():
    """A tracer as an LLM-client instrumentor would get one: same provider, not ours."""
    assert state.runtime.provider is not None
    return state.runtime.provider.get_tracer("some.instrumentation")


def test_session_set_after_root_started_reaches_root_current_and_later_spans(
    recorded: Recorded,
) -> None:
    @observe
    def before() -> None: ...

    @observe
    def after() -> None: ...

    @observe
    def turn(conversation_id: str) -> None:
        before()
        Threadline.set_trace_session_id(conversation_id)
        Threadline.set_trace_user_id("user-7")
        after()
        with third_party_tracer().start_as_current_span("openai.chat"):
            pass

    turn("conv-1")
    for name in ("turn", "after", "openai.chat"):
        span = recorded.one(name)
        assert span.attributes[semconv.SESSION_ID] == "conv-1", name
        assert span.attributes[semconv.USER_ID] == "user-7", name
    # A span that ended before the call keeps what it had: the server assigns the trace.
    assert semconv.SESSION_ID not in recorded.one("before").attributes


def test_set_inside_a_helper_applies_to_later_siblings(recorded: Recorded) -> None:
    @observe
    def identify() -> None:
        Threadline.set_trace_session_id("s-1")

    @observe
    def answer() -> None: ...

    @observe
    def turn() -> None:
        identify()
        answer()

    turn()
    assert {s.attributes.get(semconv.SESSION_ID) for s in recorded.spans()} == {"s-1"}


def test_observe_session_option_and_new_trace_starts_clean(recorded: Recorded) -> None:
    @observe
    def step() -> None: ...

    @observe(session_id="conv-9", user_id="u", metadata={"env": "prod"})
    def turn() -> None:
        step()

    @observe
    def unrelated() -> None: ...

    turn()
    unrelated()
    step_span = recorded.one("step")
    assert step_span.attributes[semconv.SESSION_ID] == "conv-9"
    assert step_span.attributes[semconv.METADATA_PREFIX + "env"] == "prod"
    assert semconv.SESSION_ID not in recorded.one("unrelated").attributes


def test_metadata_values_and_tags(recorded: Recorded) -> None:
    @observe(tags=["own"])
    def turn() -> None:
        Threadline.set_trace_metadata({"n": 3, "flag": True, "nested": {"a": [1, "x"]}})
        Threadline.set_trace_metadata({"more": "yes"})  # merged, not replaced
        Threadline.set_trace_tags(["beta", "beta", "chat"])
        child()

    @observe
    def child() -> None: ...

    turn()
    root, leaf = recorded.one("turn"), recorded.one("child")
    for span in (root, leaf):
        assert span.attributes[semconv.METADATA_PREFIX + "n"] == 3
        assert span.attributes[semconv.METADATA_PREFIX + "flag"] is True
        assert json.loads(span.attributes[semconv.METADATA_PREFIX + "nested"]) == {"a": [1, "x"]}
        assert span.attributes[semconv.METADATA_PREFIX + "more"] == "yes"
    assert list(leaf.attributes[semconv.TAGS]) == ["beta", "chat"]
    assert list(root.attributes[semconv.TAGS]) == ["beta", "chat", "own"]


def test_outside_a_span_warns_and_does_nothing(
    recorded: Recorded, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="threadline"):
        Threadline.set_trace_session_id("lost")
        Threadline.set_trace_user_id("lost")
        Threadline.set_trace_metadata({"k": "v"})
        Threadline.set_trace_tags(["t"])
    assert sum("outside a span context" in r.getMessage() for r in caplog.records) == 4

    @observe
    def later() -> None: ...

    later()
    assert semconv.SESSION_ID not in recorded.one("later").attributes


def test_works_under_a_span_started_by_plain_opentelemetry(recorded: Recorded) -> None:
    @observe
    def handler() -> None: ...

    with third_party_tracer().start_as_current_span("http.request"):
        Threadline.set_trace_session_id("s-http")
        handler()
    assert recorded.one("http.request").attributes[semconv.SESSION_ID] == "s-http"
    assert recorded.one("handler").attributes[semconv.SESSION_ID] == "s-http"


def test_threads_with_copied_context_inherit(recorded: Recorded) -> None:
    @observe(span_type="TOOL")
    def tool(i: int) -> int:
        return i

    @observe
    def turn() -> None:
        Threadline.set_trace_session_id("s-threads")
        with ThreadPoolExecutor(2) as pool:
            # ThreadPoolExecutor does not copy contextvars by itself; copy_context does.
            futures = [pool.submit(contextvars.copy_context().run, tool, i) for i in range(3)]
            assert [f.result() for f in futures] == [0, 1, 2]
        thread = threading.Thread(target=contextvars.copy_context().run, args=(tool, 9))
        thread.start()
        thread.join()

    turn()
    root = recorded.one("turn")
    tools = recorded.named("tool")
    assert len(tools) == 4
    for span in tools:
        assert span.parent.span_id == root.context.span_id
        assert span.attributes[semconv.SESSION_ID] == "s-threads"


async def test_asyncio_tasks_and_to_thread_inherit(recorded: Recorded) -> None:
    @observe
    async def worker() -> None:
        await asyncio.sleep(0)

    @observe
    def blocking() -> None: ...

    @observe
    async def turn() -> None:
        Threadline.set_trace_user_id("u-async")
        await asyncio.gather(worker(), asyncio.create_task(worker()))
        await asyncio.to_thread(blocking)

    await turn()
    root = recorded.one("turn")
    for span in [*recorded.named("worker"), recorded.one("blocking")]:
        assert span.parent.span_id == root.context.span_id
        assert span.attributes[semconv.USER_ID] == "u-async"


async def test_concurrent_turns_keep_their_own_sessions(recorded: Recorded) -> None:
    @observe
    async def step() -> None:
        await asyncio.sleep(0.001)

    @observe
    async def turn(conversation: str) -> None:
        Threadline.set_trace_session_id(conversation)
        await step()
        await step()

    await asyncio.gather(*(turn(f"c{i}") for i in range(5)))
    spans = recorded.spans()
    by_trace: dict[int, set[str]] = {}
    for span in spans:
        by_trace.setdefault(span.context.trace_id, set()).add(span.attributes[semconv.SESSION_ID])
    assert len(by_trace) == 5
    assert all(len(sessions) == 1 for sessions in by_trace.values())


def test_span_helpers(recorded: Recorded) -> None:
    assert Threadline.get_trace_id() is None

    with Threadline.start_as_current_span(
        "block", input={"q": "hi"}, span_type="TOOL", session_id="s", tags=["x"]
    ) as span:
        trace_id = Threadline.get_trace_id()
        Threadline.set_span_attributes({"k": 1, "obj": {"a": 1}, "list": ["a", "b"]})
        Threadline.event("retrieved", {"docs": 3, "ids": [1, 2]})
        Threadline.set_span_output("bye")
    block = recorded.one("block")
    assert span.get_span_context().span_id == block.context.span_id
    assert trace_id == format(block.context.trace_id, "032x") and len(trace_id) == 32
    assert json.loads(block.attributes[semconv.SPAN_INPUT]) == {"q": "hi"}
    assert json.loads(block.attributes[semconv.SPAN_OUTPUT]) == "bye"
    assert block.attributes[semconv.SPAN_TYPE] == "TOOL"
    assert block.attributes[semconv.SESSION_ID] == "s"
    assert block.attributes["k"] == 1 and json.loads(block.attributes["obj"]) == {"a": 1}
    assert list(block.attributes["list"]) == ["a", "b"]
    assert block.events[0].name == "retrieved" and block.events[0].attributes["docs"] == 3


def test_start_as_current_span_records_exceptions(recorded: Recorded) -> None:
    with pytest.raises(KeyError), Threadline.start_as_current_span("failing"):
        raise KeyError("x")
    span = recorded.one("failing")
    assert span.status.status_code.name == "ERROR"
    assert span.events[0].name == "exception"
