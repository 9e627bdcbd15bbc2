"""The metadata filter of the lists, as the API's query and the web UI's filter bar
both spell it: ``key=value`` pairs."""

from __future__ import annotations

from threadline.server.errors import BadRequest


def parse_metadata(pairs: list[str]) -> dict[str, str]:
    """``["k=v", ...]`` into a dict (400 for a pair without ``=`` or key)."""
    parsed: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise BadRequest(f"metadata filter {pair!r} is not key=value")
        parsed[key.strip()] = value.strip()
    return parsed
