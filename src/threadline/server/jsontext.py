"""JSON text: from clients, parsed within bounds; on the ingest path, fast.

Inputs, outputs, metadata and tags arrive as JSON text written by anyone. Parsed
carelessly they can exhaust the parser's stack, nest deeper than the API's serializer
goes, or hold an escaped lone surrogate that parses but can never be written as UTF-8.
``loads_bounded`` turns each of those into a plain ValueError, which callers treat as
"not JSON": the text is kept as text.

``dumps`` and ``loads`` are for the ingest path, where every span's attributes are
written and every chat is parsed: orjson does both several times faster than ``json``
(measured in docs/benchmarks.md). What orjson refuses goes through ``json``, so
neither accepts less than ``json`` does.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

_json_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def dumps(value: Any) -> str:
    """``value`` as compact JSON text, non-ASCII characters as they are.

    NaN and infinities become null (the API shows them so anyway). Integers past 64
    bits and non-string keys, which orjson refuses, are written by ``json``.
    """
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # orjson.JSONEncodeError
        return _json_dumps(value)


def loads(text: str | bytes) -> Any:
    """``text`` parsed, or ValueError (RecursionError past ``json``'s stack).

    For text whose structure is what matters (chat messages), not its every number:
    orjson reads integers past 64 bits as floats. Text orjson refuses and ``json``
    takes (NaN, 1e999, escaped lone surrogates) is parsed by ``json``.
    """
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def loads_bounded(text: str | bytes, max_depth: int) -> Any:
    """``text`` parsed, or ValueError if it is not JSON, nests deeper than ``max_depth``
    or cannot be encoded as UTF-8."""
    try:
        value = json.loads(text)
    except RecursionError:  # nested past the parser's own stack
        raise ValueError("JSON nested too deep") from None
    level = [value] if isinstance(value, (dict, list)) else []
    for _ in range(max_depth):
        if not level:
            break
        level = [
            child
            for item in level
            for child in (item.values() if isinstance(item, dict) else item)
            if isinstance(child, (dict, list))
        ]
    if level:
        raise ValueError(f"JSON nested deeper than {max_depth} levels")
    if "\\u" in (text if isinstance(text, str) else text.decode("utf-8", "replace")):
        try:
            json.dumps(value, ensure_ascii=False).encode()
        except UnicodeEncodeError:
            raise ValueError("JSON holds an escaped lone surrogate") from None
    return value
