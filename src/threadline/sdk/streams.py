"""Keeping a span open for as long as the work it measures: coroutines and generators.

The decorator decides by what the wrapped call *returned*, not by how the function was
declared, so there is one code path for every function: a plain value ends the span at
once; a coroutine, generator or async generator is handed back wrapped, and the span
ends when it finishes, fails, or is closed. While the wrapped object runs (each
``await`` chain, each ``next``), the span is made current so that spans started inside
become its children, even when the consumer iterates from another context.

The two generator drivers below differ only in ``await``; Python has no way to write a
driver that is both a generator and an async generator, so they are kept short and all
span bookkeeping lives in :class:`~threadline.sdk.spans.SpanRun` and :class:`Chunks`.
"""

from __future__ import annotations

import types
from collections.abc import AsyncGenerator, Coroutine, Generator
from typing import Any

from threadline.sdk.spans import SpanRun

#: At most this many streamed items are kept for the recorded output.
MAX_CHUNKS = 1_000
_STREAMS = (types.CoroutineType, types.GeneratorType, types.AsyncGeneratorType)


def adopt(run: SpanRun, result: Any) -> Any:
    """End ``run`` with ``result`` now, or wrap ``result`` so that it ends ``run`` later."""
    if not isinstance(result, _STREAMS):  # the common case: one isinstance check
        run.finish(output=result)
        return result
    if isinstance(result, types.CoroutineType):
        return _traced_coroutine(run, result)
    if isinstance(result, types.GeneratorType):
        return _traced_generator(run, result)
    return _traced_async_generator(run, result)


class Chunks:
    """The items a generator yielded, bounded, turned into one output at the end.

    Streams of strings (LLM token streams) are joined into the text they spell; anything
    else is recorded as a list.
    """

    __slots__ = ("dropped", "enabled", "items")

    def __init__(self, enabled: bool) -> None:
        self.items: list[Any] = []
        self.dropped = 0
        self.enabled = enabled

    def add(self, item: Any) -> None:
        if not self.enabled:
            return
        if len(self.items) < MAX_CHUNKS:
            self.items.append(item)
        else:
            self.dropped += 1

    def output(self) -> Any:
        more = f"...[threadline: {self.dropped} more chunks]" if self.dropped else ""
        if self.items and all(isinstance(item, str) for item in self.items):
            return "".join(self.items) + more
        return [*self.items, more] if more else self.items


async def _traced_coroutine(run: SpanRun, coro: Coroutine[Any, Any, Any]) -> Any:
    token = run.attach()
    try:
        result = await coro
    except BaseException as exc:
        run.finish(error=exc)
        raise
    finally:
        run.detach(token)
    run.finish(output=result)
    return result


def _traced_generator(run: SpanRun, gen: Generator[Any, Any, Any]) -> Generator[Any, Any, Any]:
    chunks = Chunks(not run.options.ignore_output)
    sent: Any = None
    thrown: BaseException | None = None
    try:
        while True:
            token = run.attach()
            try:
                if thrown is None:
                    item = gen.send(sent)
                else:
                    item, thrown = gen.throw(thrown), None
            except StopIteration as stop:
                run.finish(output=chunks.output())
                return stop.value
            finally:
                run.detach(token)
            chunks.add(item)
            try:
                sent = yield item
            except GeneratorExit:
                # The consumer stopped early (break, close(), garbage collection): close
                # the inner generator inside the span so its cleanup is traced too. Being
                # closed early is not an error; the output is what was produced so far.
                token = run.attach()
                try:
                    gen.close()
                finally:
                    run.detach(token)
                run.finish(output=chunks.output())
                raise
            except BaseException as exc:  # gen.throw() from the consumer: forward it
                thrown = exc
    except BaseException as exc:
        run.finish(error=exc)  # no-op if the span already ended above
        raise


async def _traced_async_generator(
    run: SpanRun, agen: AsyncGenerator[Any, Any]
) -> AsyncGenerator[Any, Any]:
    chunks = Chunks(not run.options.ignore_output)
    sent: Any = None
    thrown: BaseException | None = None
    try:
        while True:
            token = run.attach()
            try:
                if thrown is None:
                    item = await agen.asend(sent)
                else:
                    item, thrown = await agen.athrow(thrown), None
            except StopAsyncIteration:
                run.finish(output=chunks.output())
                return
            finally:
                run.detach(token)
            chunks.add(item)
            try:
                sent = yield item
            except GeneratorExit:
                token = run.attach()
                try:
                    await agen.aclose()
                finally:
                    run.detach(token)
                run.finish(output=chunks.output())
                raise
            except BaseException as exc:
                thrown = exc
    except BaseException as exc:
        run.finish(error=exc)
        raise
