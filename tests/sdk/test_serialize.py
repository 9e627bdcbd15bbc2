"""Bounded, never-raising JSON for inputs, outputs and attribute values."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from threadline.sdk.serialize import to_attribute_value, to_json


@dataclasses.dataclass
class Point:
    x: int
    y: int


class Color(enum.Enum):
    RED = "red"


def test_common_types() -> None:
    value = {
        "point": Point(1, 2),
        "set": {3},
        "bytes": b"hello",
        "binary": b"\xff\xfe",
        "when": dt.datetime(2024, 1, 2, 3, 4, 5),
        "day": dt.date(2024, 1, 2),
        "delta": dt.timedelta(seconds=1.5),
        "color": Color.RED,
        "id": uuid.UUID(int=1),
        "price": Decimal("1.10"),
        "path": Path("/tmp/x"),
        "text": "héllo ✓",
        "tuple": (1, 2),
    }
    decoded = json.loads(to_json(value))
    assert decoded["point"] == {"x": 1, "y": 2}
    assert decoded["set"] == [3]
    assert decoded["bytes"] == "hello"
    assert decoded["binary"].startswith("base64:")
    assert decoded["when"] == "2024-01-02T03:04:05"
    assert decoded["day"] == "2024-01-02"
    assert decoded["delta"] == 1.5
    assert decoded["color"] == "red"
    assert decoded["id"] == str(uuid.UUID(int=1))
    assert decoded["price"] == "1.10"
    assert decoded["path"] == "/tmp/x"
    assert decoded["text"] == "héllo ✓"
    assert decoded["tuple"] == [1, 2]


def test_pydantic_model_uses_model_dump() -> None:
    pydantic = pytest.importorskip("pydantic")

    class Message(pydantic.BaseModel):
        role: str
        sent: dt.datetime

    decoded = json.loads(to_json(Message(role="user", sent=dt.datetime(2024, 1, 1))))
    assert decoded == {"role": "user", "sent": "2024-01-01T00:00:00"}


def test_hostile_objects_never_raise() -> None:
    class BadRepr:
        def __repr__(self) -> str:
            raise RuntimeError

    class BadDump:
        def model_dump(self, **_: Any) -> Any:
            raise RuntimeError

        def __repr__(self) -> str:
            return "BadDump()"

    class BadItems(dict):  # type: ignore[type-arg]
        def items(self):  # type: ignore[override]
            raise RuntimeError

    for value in (BadRepr(), BadDump(), BadItems(a=1), {BadRepr(): 1}, float("nan")):
        json.loads(to_json(value))  # always valid JSON


def test_cycles_and_non_string_keys() -> None:
    cyclic: dict[str, Any] = {}
    cyclic["self"] = cyclic
    assert json.loads(to_json(cyclic)) == {"self": "<cycle>"}
    assert json.loads(to_json({(1, 2): "a", None: "b"})) == {"(1, 2)": "a", "None": "b"}


def test_large_values_are_truncated_to_valid_json() -> None:
    text = to_json({"doc": "x" * 100_000}, max_chars=1_000)
    assert len(text) < 1_100
    decoded = json.loads(text)
    assert isinstance(decoded, str) and "truncated" in decoded

    class Big:
        def __repr__(self) -> str:
            return "y" * 5000

    long_repr = json.loads(to_json(Big()))
    assert len(long_repr) < 1_100 and "truncated" in long_repr


def test_deep_nesting_is_bounded() -> None:
    deep: Any = []
    for _ in range(5000):
        deep = [deep]
    json.loads(to_json(deep))


def test_attribute_values() -> None:
    assert to_attribute_value("a") == "a"
    assert to_attribute_value(3) == 3
    assert to_attribute_value(["a", "b"]) == ["a", "b"]
    assert to_attribute_value([1, "b"]) == '[1, "b"]'
    assert to_attribute_value({"k": 1}) == '{"k": 1}'
    assert to_attribute_value(None) == "null"
    assert to_attribute_value([]) == "[]"
