"""A route refuses a query parameter it does not take: a 400 naming it.

A misspelt filter (``?turns=>5`` for ``?filter=turns>5``, ``?sesion_id=``) was ignored,
so the list came back unfiltered and looked like an answer. The JSON API (``/api/v1``)
and the pages (``web/``) both refuse it; a page load gets the error page
(``web/error_pages.py``). Langfuse's routes (``/api/public``) follow Langfuse's clients.

What a route takes: the query parameters it and its dependencies declare, and those a
page reads by hand from ``request.query_params`` (a filter bar), named by ``reads``.

The JSON API also refuses a parameter that takes one value given twice: FastAPI read
the last (``?tag=a&tag=b`` filtered by ``b`` alone), an answer for half the question.
"""

from __future__ import annotations

import types
from typing import Annotated, Any, Union, get_args, get_origin

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from threadline.server.errors import BadRequest


def declared(route: APIRoute) -> frozenset[str]:
    """The query parameters the route and its dependencies declare (by their aliases),
    or read by hand (``reads``): a walk of a few dependants, cheaper than the request's
    own parsing of them."""
    names: set[str] = set()
    waiting: list[Dependant] = [route.dependant]
    while waiting:
        dependant = waiting.pop()
        names.update(param.alias for param in dependant.query_params)
        names.update(getattr(dependant.call, "query_names", ()))
        waiting.extend(dependant.dependencies)
    return frozenset(names)


def _takes_many(annotation: Any) -> bool:
    """Whether a parameter so annotated takes every value given (``list[str] | None``),
    as FastAPI reads a query parameter into a list, tuple or set."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _takes_many(get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        return any(_takes_many(arg) for arg in get_args(annotation))
    kind = origin or annotation
    return isinstance(kind, type) and issubclass(kind, (list, tuple, set, frozenset))


def single_valued(route: APIRoute) -> frozenset[str]:
    """The query parameters the route and its dependencies declare to take one value."""
    names: set[str] = set()
    waiting: list[Dependant] = [route.dependant]
    while waiting:
        dependant = waiting.pop()
        names.update(
            param.alias
            for param in dependant.query_params
            if not _takes_many(param.field_info.annotation)
        )
        waiting.extend(dependant.dependencies)
    return frozenset(names)


def reads(*names: str) -> Any:
    """For a route's ``dependencies=[...]``: it reads these query parameters by hand."""

    def read_by_hand() -> None:
        return None

    read_by_hand.query_names = frozenset(names)  # type: ignore[attr-defined]
    return Depends(read_by_hand)


def _only_declared(request: Request) -> None:
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not request.query_params:
        return
    known = declared(route)
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        names = ", ".join(repr(name) for name in unknown)
        takes = ", ".join(sorted(known)) or "none"
        raise BadRequest(
            f"unknown query parameter {names}: {route.path} takes {takes}",
            faults=((name, None) for name in unknown),
        )


def _each_once(request: Request) -> None:
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not request.query_params:
        return
    params = request.query_params
    repeated = sorted(name for name in single_valued(route) if len(params.getlist(name)) > 1)
    if repeated:
        names = ", ".join(repr(name) for name in repeated)
        raise BadRequest(
            f"query parameter {names} given more than once: it takes one value",
            faults=((name, None) for name in repeated),
        )


# For ``include_router(..., dependencies=[...])`` of the JSON API's and the pages' routers.
DECLARED_QUERY_ONLY = Depends(_only_declared)
# For the JSON API's routers.
SINGLE_VALUES_ONCE = Depends(_each_once)
