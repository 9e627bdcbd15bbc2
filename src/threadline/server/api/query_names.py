"""The JSON API refuses a query parameter its route does not take: a 400 naming it.

A misspelt filter (``?turns=>5`` for ``?filter=turns>5``, ``?sesion_id=``) was ignored,
so the list came back unfiltered and looked like an answer. The pages (``web/``) still
ignore what they do not know: people edit their URLs by hand, and links carry the
filters of other pages. Langfuse's routes (``/api/public``) follow Langfuse's clients.
"""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from threadline.server.errors import BadRequest


def declared(route: APIRoute) -> frozenset[str]:
    """The query parameters the route and its dependencies declare (by their aliases):
    a walk of a few dependants, cheaper than the request's own parsing of them."""
    names: set[str] = set()
    waiting: list[Dependant] = [route.dependant]
    while waiting:
        dependant = waiting.pop()
        names.update(param.alias for param in dependant.query_params)
        waiting.extend(dependant.dependencies)
    return frozenset(names)


def _only_declared(request: Request) -> None:
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not request.query_params:
        return
    known = declared(route)
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        names = ", ".join(repr(name) for name in unknown)
        takes = ", ".join(sorted(known)) or "none"
        raise BadRequest(f"unknown query parameter {names}: {route.path} takes {takes}")


# For ``include_router(..., dependencies=[...])`` of the JSON API's routers.
DECLARED_QUERY_ONLY = Depends(_only_declared)
