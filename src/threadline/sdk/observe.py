"""``@observe``: trace a function (or a ``with`` block) as a Threadline span.

Usage::

    @observe                                   # bare
    @observe(name="turn", session_id=conv_id)  # with options
    with observe(name="retrieval"): ...        # as a context manager

The wrapper is one function for every kind of callable: it starts the span, makes it
current, calls the function, and hands the result to :func:`~threadline.sdk.streams.adopt`,
which decides by what came back whether the span ends now or when a coroutine or
generator finishes. The only concession to declaration style is a two-line ``async def``
shim for ``async def`` functions, because frameworks (FastAPI, pytest-asyncio, Starlette)
inspect ``inspect.iscoroutinefunction`` to decide how to call a handler.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, TypeVar, overload

from opentelemetry import trace

from threadline.sdk import state
from threadline.sdk.span_type import SpanType, normalize_span_type
from threadline.sdk.spans import MISSING, SpanOptions, SpanRun
from threadline.sdk.streams import adopt

logger = logging.getLogger("threadline")

F = TypeVar("F", bound=Callable[..., Any])


def start_run(
    options: SpanOptions, name: str, input_value: Callable[[], Any] | None
) -> SpanRun | None:
    """Start a span for ``options`` if tracing is on; None if it is off or if the SDK
    itself fails (logged), in which case the caller runs the user's code untraced."""
    tracer = state.runtime.active_tracer()
    if tracer is None:
        return None
    try:
        return SpanRun.start(tracer, name, options, input_value)
    except Exception:
        logger.warning("threadline: could not start span %r; running untraced", name, exc_info=True)
        return None


class _InputCapture:
    """Turns a call's arguments into the ``{parameter: value}`` dict recorded as input.

    The signature is inspected once, at decoration time. Per call, functions with plain
    parameters (no ``*args``/``**kwargs``/positional-only) take a fast path that zips
    names with values; ``Signature.bind`` is the exact but slower fallback (it alone
    costs more than the rest of our per-span work).
    """

    __slots__ = (
        "defaults",
        "formatter",
        "ignored",
        "name_set",
        "names",
        "recorded_names",
        "signature",
        "skip_first",
        "var_keyword",
    )

    def __init__(
        self,
        func: Callable[..., Any],
        ignored: frozenset[str],
        formatter: Callable[..., Any] | None,
    ) -> None:
        self.formatter = formatter
        self.ignored = ignored
        try:
            self.signature: inspect.Signature | None = inspect.signature(func)
        except (TypeError, ValueError):  # some builtins and C extensions have none
            self.signature = None
        params = list(self.signature.parameters.values()) if self.signature else []
        # Methods are decorated as plain functions, before the class exists, so "is a
        # method" can only be read from the conventional name of the first parameter.
        self.skip_first = bool(params) and params[0].name in ("self", "cls")
        self.var_keyword = next(
            (p.name for p in params if p.kind is inspect.Parameter.VAR_KEYWORD), None
        )
        plain = self.signature is not None and all(
            p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for p in params
        )
        # names is None when the fast path does not apply.
        self.names = tuple(p.name for p in params) if plain else None
        self.name_set = frozenset(self.names or ())
        self.defaults = tuple(
            (p.name, p.default) for p in params if p.default is not inspect.Parameter.empty
        )
        self.recorded_names = tuple(
            name
            for index, name in enumerate(self.names or ())
            if not (index == 0 and self.skip_first) and name not in ignored
        )

    def __call__(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if self.formatter is not None:
            try:
                return self.formatter(*args, **kwargs)
            except Exception:
                logger.warning(
                    "threadline: input_formatter raised; recording the raw input", exc_info=True
                )
        try:
            fast = self._fast(args, kwargs)
            return fast if fast is not None else self._bind(args, kwargs)
        except Exception:
            logger.debug("threadline: could not capture the input", exc_info=True)
            return {"args": list(args), "kwargs": kwargs}

    def _fast(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any] | None:
        names = self.names
        if names is None or len(args) > len(names):
            return None
        values = dict(zip(names, args, strict=False))  # fewer args than names is normal
        for key, value in kwargs.items():
            if key in values or key not in self.name_set:
                return None  # duplicate or unknown argument: let bind() explain
            values[key] = value
        if len(values) < len(names):
            for key, default in self.defaults:
                values.setdefault(key, default)
            if len(values) < len(names):
                return None  # a required argument is missing
        return {name: values[name] for name in self.recorded_names}

    def _bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        if self.signature is None:
            return {"args": list(args), "kwargs": kwargs}
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError:
            # The call itself will fail the same way; still record what was passed.
            return {"args": list(args), "kwargs": kwargs}
        bound.apply_defaults()
        recorded: dict[str, Any] = {}
        for index, (name, value) in enumerate(bound.arguments.items()):
            if (index == 0 and self.skip_first) or name in self.ignored:
                continue
            if name == self.var_keyword:
                # **kwargs read better flattened: {"a": 1, "b": 2}, not {"kwargs": {...}}.
                recorded.update((k, v) for k, v in value.items() if k not in self.ignored)
            else:
                recorded[name] = value
        return recorded


def decorate(func: F, options: SpanOptions) -> F:
    """Wrap ``func`` so that each call is traced as a span described by ``options``."""
    if isinstance(func, (classmethod, staticmethod)):
        # @observe placed above @classmethod / @staticmethod: wrap the function inside.
        return type(func)(decorate(func.__func__, options))
    name = options.name or getattr(func, "__name__", None) or "function"
    capture = (
        None
        if options.ignore_input
        else _InputCapture(func, options.ignore_inputs, options.input_formatter)
    )

    def traced(*args: Any, **kwargs: Any) -> Any:
        run = start_run(
            options, name, (lambda: capture(args, kwargs)) if capture is not None else None
        )
        if run is None:
            return func(*args, **kwargs)
        token = run.attach()
        try:
            result = func(*args, **kwargs)
        except BaseException as exc:
            run.finish(error=exc)
            raise
        finally:
            run.detach(token)
        return adopt(run, result)

    wrapper: Callable[..., Any] = traced
    if inspect.iscoroutinefunction(func):

        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            return await traced(*args, **kwargs)

        wrapper = async_wrapper
    return functools.update_wrapper(wrapper, func)  # type: ignore[return-value]


class Observer:
    """What ``observe(...)`` returns: a decorator, and a context manager for a block.

    As a context manager each ``with`` opens its own span (the stack makes nested use of
    the same object safe); the span's output is set with ``Threadline.set_span_output``.
    """

    def __init__(self, options: SpanOptions, input_value: Any = MISSING) -> None:
        self.options = options
        self.input_value = input_value
        self._active: list[tuple[SpanRun, object] | None] = []

    def __call__(self, func: F) -> F:
        return decorate(func, self.options)

    def __enter__(self) -> trace.Span:
        given = self.input_value
        run = start_run(
            self.options,
            self.options.name or "observe",
            None if given is MISSING else (lambda: given),
        )
        self._active.append(None if run is None else (run, run.attach()))
        return trace.INVALID_SPAN if run is None else run.span

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        entry = self._active.pop() if self._active else None
        if entry is not None:
            run, token = entry
            run.detach(token)
            run.finish(error=exc)


def make_options(
    *,
    name: str | None = None,
    session_id: str | None = None,
    user_id: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    tags: Iterable[str] | None = None,
    span_type: SpanType | str = SpanType.DEFAULT,
    ignore_input: bool = False,
    ignore_output: bool = False,
    ignore_inputs: Iterable[str] | None = None,
    input_formatter: Callable[..., Any] | None = None,
    output_formatter: Callable[[Any], Any] | None = None,
) -> SpanOptions:
    """Validate and freeze the options once, so per-call work stays minimal."""
    return SpanOptions(
        name=name,
        session_id=session_id,
        user_id=user_id,
        metadata=dict(metadata) if metadata else None,
        tags=tuple(str(tag) for tag in tags or ()),
        span_type=normalize_span_type(span_type),
        ignore_input=ignore_input,
        ignore_output=ignore_output,
        ignore_inputs=frozenset(ignore_inputs or ()),
        input_formatter=input_formatter,
        output_formatter=output_formatter,
    )


@overload
def observe(func: F, /) -> F: ...
@overload
def observe(
    func: None = None,
    /,
    *,
    name: str | None = None,
    session_id: str | None = None,
    user_id: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    tags: Iterable[str] | None = None,
    span_type: SpanType | str = SpanType.DEFAULT,
    ignore_input: bool = False,
    ignore_output: bool = False,
    ignore_inputs: Iterable[str] | None = None,
    input_formatter: Callable[..., Any] | None = None,
    output_formatter: Callable[[Any], Any] | None = None,
) -> Observer: ...
def observe(func: Callable[..., Any] | None = None, /, **options: Any) -> Any:
    """Trace calls of a function, or a ``with`` block, as a span.

    Options (all keyword-only):

    * ``name``: span name (default: the function's ``__name__``).
    * ``session_id`` / ``user_id`` / ``metadata``: trace-level association, applied to this
      span and every span after it in the trace, exactly as ``Threadline.set_trace_*``.
    * ``tags``: tags of this span (``threadline.tags``, together with the trace's tags).
    * ``span_type``: ``"DEFAULT"``, ``"LLM"``, ``"TOOL"``... (:class:`SpanType`).
    * ``ignore_input`` / ``ignore_output``: do not record the arguments / the result.
    * ``ignore_inputs``: names of parameters left out of the recorded input.
    * ``input_formatter(*args, **kwargs)`` / ``output_formatter(result)``: return the value
      to record instead (e.g. to redact); if they raise, the raw value is recorded.

    Works on functions, methods, coroutines, generators and async generators; a
    generator's span stays open until it is exhausted or closed, and its items (bounded)
    become the output. Exceptions are recorded on the span and re-raised unchanged.
    """
    observer = Observer(make_options(**options))
    return observer if func is None else observer(func)
