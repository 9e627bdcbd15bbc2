"""The metadata filter of the lists, as the API's query and the web UI's filter bar
both spell it: ``key=value`` pairs."""

from __future__ import annotations

from threadline.server.errors import BadRequest


def parse_metadata(pairs: list[str]) -> dict[str, str]:
    """``["k=v", ...]`` into a dict (400 for a pair without ``=`` or key, and for a key
    given two values: the last was kept, ``a=1&a=2`` read as ``a=2`` alone, when no
    trace could meet both)."""
    parsed: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise BadRequest(f"metadata filter {pair!r} is not key=value")
        key, value = key.strip(), value.strip()
        if parsed.setdefault(key, value) != value:
            raise BadRequest(
                f"metadata key {key!r} given two values ({parsed[key]!r}, {value!r}):"
                " a trace's key holds one"
            )
    return parsed
