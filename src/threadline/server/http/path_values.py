"""An id in a path that holds a NUL or another control character, and names nothing
stored: a 400 saying so, not a 404 that reads as "no such thing".

No id made now holds one (``model.Name`` refuses them, ingest replaces them), so the
request is malformed rather than about something missing. One that names something
stored (a session id an older version kept with a newline) still reads, and can
still be deleted: the check runs where a 404 would be answered.
"""

from __future__ import annotations

from starlette.requests import Request

from threadline.server.model import CONTROL_CHARACTERS


def controls_in_path(request: Request) -> str | None:
    """Why the request's path ids cannot name anything, or None. A path no route took
    (a ``{id:path}`` does not take a newline) is checked whole."""
    named = request.path_params or {"path": request.scope["path"]}  # decoded, as sent
    for name, value in named.items():
        found = CONTROL_CHARACTERS.search(value) if isinstance(value, str) else None
        if found is not None:
            character = found.group()
            where = f"path parameter {name!r}" if request.path_params else "the path"
            return (
                f"{where} holds a control character (U+{ord(character):04X}), which no "
                "name or id holds"
            )
    return None
