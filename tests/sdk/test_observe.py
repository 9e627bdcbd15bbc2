"""@observe on every kind of callable: spans, nesting, inputs/outputs, errors."""

from __future__ import annotations

import asyncio
import inspect
import json
from typing import Any

import pytest
from opentelemetry.trace import StatusCode

from threadline import SpanType, Threadline, observe, semconv

from .conftest import Recorded


def attrs(span: Any) -> dict[str, Any]:
    return dict(span.attributes or {})


def recorded_input(span: Any) -> Any:
    return json.loads(span.attributes[semconv.SPAN_INPUT])


def recorded_output(span: Any) -> Any:
    return json.loads(span.attributes[semconv.SPAN_OUTPUT])


def test_bare_decorator_records_input_output_and_type(recorded: Recorded) -> None:
    @observe
    def add(a: int, b: int = 2) -> int:
        return a + b

    assert add(1) == 3
    span = recorded.one("add")
    assert recorded_input(span) == {"a": 1, "b": 2}  # defaults applied
    assert recorded_output(span) == 3
    assert span.attributes[semconv.SPAN_TYPE] == "DEFAULT"
    assert span.status.status_code is StatusCode.UNSET


def test_options_name_type_tags(recorded: Recorded) -> None:
    @observe(name="search", span_type=SpanType.TOOL, tags=["fast", "web"])
    def tool(query: str) -> list[str]:
        return [query]

    tool("q")
    span = recorded.one("search")
    assert span.attributes[semconv.SPAN_TYPE] == "TOOL"
    assert list(span.attributes[semconv.TAGS]) == ["fast", "web"]
    assert recorded_output(span) == ["q"]


def test_string_span_type_and_unknown_type_kept(recorded: Recorded) -> None:
    @observe(span_type="llm")
    def a() -> None: ...

    @observe(span_type="custom")
    def b() -> None: ...

    a(), b()
    assert recorded.one("a").attributes[semconv.SPAN_TYPE] == "LLM"
    assert recorded.one("b").attributes[semconv.SPAN_TYPE] == "CUSTOM"


def test_nesting_sets_parent_and_shares_trace(recorded: Recorded) -> None:
    @observe
    def child() -> str:
        return "c"

    @observe
    def parent() -> str:
        return child() + child()

    parent()
    root = recorded.one("parent")
    children = recorded.named("child")
    assert len(children) == 2
    assert root.parent is None
    for span in children:
        assert span.parent is not None and span.parent.span_id == root.context.span_id
        assert span.context.trace_id == root.context.trace_id


def test_exception_recorded_and_reraised_unchanged(recorded: Recorded) -> None:
    class Boom(Exception):
        pass

    error = Boom("bad")

    @observe
    def fails() -> None:
        raise error

    with pytest.raises(Boom) as caught:
        fails()
    assert caught.value is error
    span = recorded.one("fails")
    assert span.status.status_code is StatusCode.ERROR
    assert "Boom: bad" in (span.status.description or "")
    assert [e.name for e in span.events] == ["exception"]
    assert span.events[0].attributes["exception.type"].endswith("Boom")
    assert semconv.SPAN_OUTPUT not in span.attributes


async def test_async_function(recorded: Recorded) -> None:
    @observe
    async def fetch(x: int) -> int:
        await asyncio.sleep(0)
        return x * 2

    assert inspect.iscoroutinefunction(fetch)  # frameworks inspect this
    assert await fetch(21) == 42
    span = recorded.one("fetch")
    assert recorded_input(span) == {"x": 21}
    assert recorded_output(span) == 42


async def test_async_exception_and_nesting(recorded: Recorded) -> None:
    @observe
    async def inner() -> None:
        raise ValueError("no")

    @observe
    async def outer() -> None:
        await inner()

    with pytest.raises(ValueError):
        await outer()
    inner_span, outer_span = recorded.one("inner"), recorded.one("outer")
    assert inner_span.parent.span_id == outer_span.context.span_id
    assert inner_span.status.status_code is StatusCode.ERROR
    assert outer_span.status.status_code is StatusCode.ERROR


async def test_gather_gives_sibling_spans(recorded: Recorded) -> None:
    @observe
    async def task(i: int) -> int:
        await asyncio.sleep(0.001 * (3 - i))
        return i

    @observe
    async def fan_out() -> list[int]:
        return list(await asyncio.gather(task(0), task(1), task(2)))

    assert await fan_out() == [0, 1, 2]
    root = recorded.one("fan_out")
    tasks = recorded.named("task")
    assert len(tasks) == 3
    assert {s.parent.span_id for s in tasks} == {root.context.span_id}
    assert sorted(recorded_output(s) for s in tasks) == [0, 1, 2]


def test_generator_span_open_until_exhausted(recorded: Recorded) -> None:
    @observe
    def child() -> None: ...

    @observe
    def stream(n: int):
        for i in range(n):
            child()  # runs while the consumer iterates: must nest under stream
            yield f"tok{i} "

    gen = stream(3)
    assert recorded.spans() == []  # nothing ended yet
    assert list(gen) == ["tok0 ", "tok1 ", "tok2 "]
    span = recorded.one("stream")
    assert recorded_output(span) == "tok0 tok1 tok2 "  # string chunks are joined
    assert all(c.parent.span_id == span.context.span_id for c in recorded.named("child"))
    assert span.end_time is not None


def test_generator_closed_early_ends_span_once(recorded: Recorded) -> None:
    cleaned = []

    @observe
    def numbers():
        try:
            yield 1
            yield 2
            yield 3
        finally:
            cleaned.append(True)

    for value in numbers():
        if value == 2:
            break
    # CPython closes the abandoned generator when it is collected (here: immediately).
    assert cleaned == [True]
    span = recorded.one("numbers")
    assert recorded_output(span) == [1, 2]
    assert span.status.status_code is StatusCode.UNSET  # closing early is not an error


def test_generator_error_and_send(recorded: Recorded) -> None:
    @observe
    def echo():
        received = yield "ready"
        while True:
            if received == "stop":
                raise RuntimeError("stopped")
            received = yield received

    gen = echo()
    assert next(gen) == "ready"
    assert gen.send("a") == "a"
    with pytest.raises(RuntimeError, match="stopped"):
        gen.send("stop")
    span = recorded.one("echo")
    assert span.status.status_code is StatusCode.ERROR


def test_generator_throw_forwarded(recorded: Recorded) -> None:
    @observe
    def resilient():
        while True:
            try:
                yield "x"
            except KeyError:
                yield "recovered"
                return

    gen = resilient()
    next(gen)
    assert gen.throw(KeyError("k")) == "recovered"
    with pytest.raises(StopIteration):
        next(gen)
    assert recorded.one("resilient").status.status_code is StatusCode.UNSET


async def test_async_generator(recorded: Recorded) -> None:
    @observe
    async def child() -> None: ...

    @observe(span_type="LLM")
    async def stream(n: int):
        for i in range(n):
            await child()
            yield {"i": i}

    items = [item async for item in stream(2)]
    assert items == [{"i": 0}, {"i": 1}]
    span = recorded.one("stream")
    assert recorded_output(span) == [{"i": 0}, {"i": 1}]
    assert all(c.parent.span_id == span.context.span_id for c in recorded.named("child"))


async def test_async_generator_closed_early_and_error(recorded: Recorded) -> None:
    @observe
    async def ticks():
        yield 1
        yield 2

    @observe
    async def broken():
        yield 1
        raise OSError("disk")

    agen = ticks()
    assert await agen.__anext__() == 1
    await agen.aclose()
    span = recorded.one("ticks")
    assert recorded_output(span) == [1]
    with pytest.raises(OSError):
        async for _ in broken():
            pass
    assert recorded.one("broken").status.status_code is StatusCode.ERROR


def test_generator_output_is_bounded(recorded: Recorded) -> None:
    @observe
    def many():
        yield from range(5000)

    assert sum(many()) == sum(range(5000))
    output = recorded_output(recorded.one("many"))
    assert len(output) == 1001 and "more chunks" in output[-1]


def test_methods_skip_self_and_cls(recorded: Recorded) -> None:
    class Agent:
        factor = 3

        @observe
        def run(self, x: int) -> int:
            return x * self.factor

        @classmethod
        @observe
        def build(cls, name: str) -> str:
            return name

        @observe  # above @staticmethod: still works
        @staticmethod
        def helper(y: int) -> int:
            return y

    assert Agent().run(2) == 6
    assert Agent.build("a") == "a"
    assert Agent.helper(5) == 5
    assert recorded_input(recorded.one("run")) == {"x": 2}
    assert recorded_input(recorded.one("build")) == {"name": "a"}
    assert recorded_input(recorded.one("helper")) == {"y": 5}


def test_varargs_and_kwargs(recorded: Recorded) -> None:
    @observe
    def f(a: int, *rest: int, **options: Any) -> None: ...

    f(1, 2, 3, mode="fast")
    assert recorded_input(recorded.one("f")) == {"a": 1, "rest": [2, 3], "mode": "fast"}


def test_wrong_arguments_still_raise_typeerror(recorded: Recorded) -> None:
    @observe
    def f(a: int) -> None: ...

    with pytest.raises(TypeError):
        f(1, 2)  # type: ignore[call-arg]
    span = recorded.one("f")
    assert recorded_input(span) == {"args": [1, 2], "kwargs": {}}
    assert span.status.status_code is StatusCode.ERROR


def test_ignore_input_output_and_named_inputs(recorded: Recorded) -> None:
    @observe(ignore_input=True, ignore_output=True)
    def secret(password: str) -> str:
        return password

    @observe(ignore_inputs=["api_key"])
    def call(prompt: str, api_key: str) -> None: ...

    secret("hunter2"), call("hi", api_key="sk-1")
    span = recorded.one("secret")
    assert semconv.SPAN_INPUT not in span.attributes
    assert semconv.SPAN_OUTPUT not in span.attributes
    assert recorded_input(recorded.one("call")) == {"prompt": "hi"}


def test_formatters_and_failing_formatter(recorded: Recorded) -> None:
    @observe(
        input_formatter=lambda text, **_: {"chars": len(text)},
        output_formatter=lambda out: out.upper(),
    )
    def shout(text: str, loud: bool = True) -> str:
        return text

    @observe(input_formatter=lambda *_: 1 / 0, output_formatter=lambda _: 1 / 0)
    def fragile(x: int) -> int:
        return x

    assert shout("hey") == "hey"
    assert fragile(4) == 4  # a broken formatter never breaks the call
    assert recorded_input(recorded.one("shout")) == {"chars": 3}
    assert recorded_output(recorded.one("shout")) == "HEY"
    assert recorded_input(recorded.one("fragile")) == {"x": 4}
    assert recorded_output(recorded.one("fragile")) == 4


def test_unserialisable_inputs_do_not_break_the_call(recorded: Recorded) -> None:
    class Hostile:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    cyclic: list[Any] = []
    cyclic.append(cyclic)

    @observe
    def take(a: Any, b: Any, c: Any, d: Any) -> Any:
        return Hostile()

    take(Hostile(), cyclic, {(1, 2): "tuple key"}, {1, 2})
    span = recorded.one("take")
    recorded_args = recorded_input(span)
    assert recorded_args["a"].startswith("<unrepresentable")
    assert recorded_args["b"] == ["<cycle>"]
    assert recorded_args["c"] == {"(1, 2)": "tuple key"}
    assert sorted(recorded_args["d"]) == [1, 2]
    assert recorded_output(span).startswith("<unrepresentable")


def test_set_span_output_wins_over_return_value(recorded: Recorded) -> None:
    @observe
    def f() -> str:
        Threadline.set_span_output({"answer": 42})
        return "ignored"

    f()
    assert recorded_output(recorded.one("f")) == {"answer": 42}


def test_observe_as_context_manager(recorded: Recorded) -> None:
    @observe
    def inner() -> None: ...

    with observe(name="block", span_type="TOOL") as span:
        assert span.is_recording()
        inner()
        Threadline.set_span_output("done")
    block = recorded.one("block")
    assert recorded_output(block) == "done"
    assert recorded.one("inner").parent.span_id == block.context.span_id


def test_decorated_function_keeps_metadata(recorded: Recorded) -> None:
    @observe(name="x")
    def documented(a: int) -> int:
        """Doc."""
        return a

    assert documented.__name__ == "documented"
    assert documented.__doc__ == "Doc."
    assert list(inspect.signature(documented).parameters) == ["a"]
