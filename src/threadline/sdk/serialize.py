"""Bounded JSON serialisation that never raises.

Inputs and outputs of user functions are recorded as JSON strings on spans
(``threadline.span.input`` / ``threadline.span.output``). They can be anything: pydantic
models, dataclasses, sets, bytes, objects with a broken ``__repr__``, cyclic structures,
a 50 MB document. Recording them must neither raise into user code nor blow up the
span (OTLP requests have size limits, and the server stores every byte), so:

* the fast path is one ``json.dumps`` with a ``default`` hook for unknown types;
* if that fails (cycles, non-string dict keys...), a slower normalising walk with a
  depth limit and cycle detection produces something JSON can encode;
* if even that fails, the ``repr`` of the value is recorded as a JSON string;
* a result longer than the limit is replaced by a JSON *string* holding its prefix and a
  truncation marker, so the attribute is always valid JSON.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import enum
import json
import logging
import uuid
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import PurePath
from typing import Any

from opentelemetry.util.types import AttributeValue

logger = logging.getLogger("threadline")

#: Default maximum length (characters) of one recorded input or output.
MAX_JSON_CHARS = 64_000
#: Longest ``repr`` recorded for an object JSON cannot encode.
MAX_REPR_CHARS = 1_000
#: Depth at which the normalising walk stops descending (guards against deep recursion).
MAX_DEPTH = 32
TRUNCATION_MARKER = "...[threadline: truncated {omitted} chars]"

_PRIMITIVES = (str, bool, int, float)


def to_json(value: Any, max_chars: int = MAX_JSON_CHARS) -> str:
    """Serialise ``value`` to a JSON string of at most about ``max_chars`` characters.

    Never raises: every failure degrades to a less faithful but valid JSON document.
    """
    try:
        # Scalars skip the encoder machinery (a measurable share of per-span cost).
        text = _SCALARS[type(value)](value) if type(value) in _SCALARS else _dumps(value)
    except Exception:  # cycles, non-string keys, a hostile __iter__...
        try:
            text = _dumps(_normalize(value, 0, set()))
        except Exception:
            text = json.dumps(safe_repr(value))
    if len(text) > max_chars:
        omitted = len(text) - max_chars
        text = json.dumps(text[:max_chars] + TRUNCATION_MARKER.format(omitted=omitted))
    return text


def safe_repr(value: Any, max_chars: int = MAX_REPR_CHARS) -> str:
    """``repr(value)`` bounded in length; a placeholder if ``__repr__`` itself raises."""
    try:
        text = repr(value)
    except Exception:
        text = f"<unrepresentable {type(value).__qualname__}>"
    if len(text) > max_chars:
        text = text[:max_chars] + TRUNCATION_MARKER.format(omitted=len(text) - max_chars)
    return text


def to_attribute_value(value: Any) -> AttributeValue:
    """Turn ``value`` into something OpenTelemetry accepts as an attribute value.

    OTel attributes are primitives or homogeneous sequences of primitives; anything else
    (dicts, mixed lists, None, objects) is written as a JSON string, which is what the
    server expects for ``threadline.metadata.<key>`` and for ``set_span_attributes``.
    """
    if isinstance(value, _PRIMITIVES):
        return value
    if isinstance(value, (list, tuple)) and value:
        first = type(value[0])
        if first in _PRIMITIVES and all(type(item) is first for item in value):
            return list(value)
    return to_json(value)


def _encode_unknown(value: Any) -> Any:
    """``json.dumps`` hook: a JSON-encodable stand-in for a type JSON does not know."""
    model_dump = getattr(value, "model_dump", None)
    if callable(model_dump) and not isinstance(value, type):
        # pydantic v2 models; mode="json" turns datetimes etc. into strings already.
        try:
            return model_dump(mode="json")
        except Exception:
            return safe_repr(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        # Shallow on purpose: dataclasses.asdict deep-copies every field, which is slow and
        # can raise on uncopyable members; json.dumps recurses into the fields itself.
        return {f.name: getattr(value, f.name, None) for f in dataclasses.fields(value)}
    if isinstance(value, (set, frozenset)):
        return list(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _encode_bytes(bytes(value))
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (uuid.UUID, Decimal, PurePath)):
        return str(value)
    return safe_repr(value)


def _encode_bytes(data: bytes) -> str:
    """Text if the bytes are UTF-8 (the usual case: an encoded payload), else base64."""
    limit = MAX_REPR_CHARS
    head = data[:limit]
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = "base64:" + base64.b64encode(head).decode("ascii")
    if len(data) > limit:
        text += TRUNCATION_MARKER.format(omitted=len(data) - limit)
    return text


def _normalize(value: Any, depth: int, seen: set[int]) -> Any:
    """A JSON-encodable copy of ``value``: string keys, no cycles, bounded depth."""
    if value is None or isinstance(value, _PRIMITIVES):
        return value
    if depth >= MAX_DEPTH:
        return safe_repr(value, 100)
    marker = id(value)
    if marker in seen:
        return "<cycle>"
    seen.add(marker)
    try:
        if isinstance(value, Mapping):
            return {_key(k): _normalize(v, depth + 1, seen) for k, v in list(value.items())}
        if isinstance(value, (list, tuple, set, frozenset)):
            return [_normalize(item, depth + 1, seen) for item in list(value)]
        encoded = _encode_unknown(value)
        if encoded is value or isinstance(encoded, str):
            return encoded
        return _normalize(encoded, depth + 1, seen)
    except Exception:
        return safe_repr(value)
    finally:
        seen.discard(marker)


def _make_dumps() -> Callable[[Any], str]:
    """The fastest correct ``value -> JSON text`` available, built once.

    ``json.dumps``/``JSONEncoder.encode`` build a fresh C encoder on every call, which
    costs about as much as encoding a small input; this runs twice per span. So the C
    encoder is built once, without circular-reference tracking (``markers=None``): a
    cycle then ends in RecursionError, which ``to_json`` catches and handles on its slow
    path. Where the C accelerator is missing (PyPy), the stdlib encoder is used.
    ``ensure_ascii=False`` keeps non-English prompts readable (and shorter) in the UI.
    """
    make_encoder = getattr(json.encoder, "c_make_encoder", None)
    if make_encoder is None:
        return json.JSONEncoder(default=_encode_unknown, ensure_ascii=False).encode
    encode = make_encoder(
        None, _encode_unknown, json.encoder.encode_basestring, None, ": ", ", ", False, False, True
    )
    return lambda value: "".join(encode(value, 0))


_dumps = _make_dumps()


_SCALARS: dict[type, Callable[[Any], str]] = {
    str: json.encoder.encode_basestring,  # what the encoder uses with ensure_ascii=False
    int: int.__repr__,
    bool: lambda v: "true" if v else "false",
    type(None): lambda _: "null",
}


def _key(key: Any) -> str:
    return key if isinstance(key, str) else safe_repr(key, 200)
