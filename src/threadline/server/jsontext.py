"""JSON text from clients, parsed within bounds.

Inputs, outputs, metadata and tags arrive as JSON text written by anyone. Parsed
carelessly they can exhaust the parser's stack, nest deeper than the API's serializer
goes, or hold an escaped lone surrogate that parses but can never be written as UTF-8.
``loads_bounded`` turns each of those into a plain ValueError, which callers treat as
"not JSON": the text is kept as text.
"""

from __future__ import annotations

import json
from typing import Any


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
