"""A query parameter whose name or value holds a NUL is a 400 naming it, on every route.

No name or id holds a NUL (``model.Name`` refuses it, ingest replaces it), so
``?session_id=a%00b`` could only match nothing: an empty answer that hides the mistake.
"""

from __future__ import annotations

from fastapi import Depends, Request

from threadline.server.errors import BadRequest


def _without_nul(request: Request) -> None:
    if b"%00" not in request.scope["query_string"]:  # every request but a few: no parse
        return
    for name, value in request.query_params.multi_items():
        if "\0" in name or "\0" in value:
            raise BadRequest(
                f"query parameter {name!r} holds a NUL character (U+0000)",
                faults=[(name, value)],
            )


# For the app's ``dependencies=[...]``: every route, the pages' too (a page load gets the
# error page, ``web/error_pages.py``).
NO_NUL_IN_QUERY = Depends(_without_nul)
