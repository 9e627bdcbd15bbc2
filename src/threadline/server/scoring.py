"""Scores as clients send them, checked and made ready to store; score filters parsed.

Used by the JSON API, the Langfuse-compatible route, the web UI's forms and the
evaluators alike, so a score is validated by one set of rules whichever way it comes.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable

from threadline.server.errors import BadRequest
from threadline.server.model import (
    MAX_SCORE_LABEL,
    Score,
    ScoreConfig,
    ScoreFilter,
    ScoreIn,
    ScoreRecord,
    ns_to_datetime,
)

# Numeric scores are summed into averages on write: values past this bound (1e308
# twice) overflowed the sum and left the average null. No judge or rating needs more.
MAX_SCORE_MAGNITUDE = 1e15


def prepare(
    score: ScoreIn,
    configs: dict[str, ScoreConfig],
    source: str,
    now_ns: int,
    name_type: str | None = None,
) -> ScoreRecord:
    """A ``ScoreRecord`` of ``score``, or ``BadRequest`` saying what is wrong with it.

    A score that gives no ``data_type`` takes its name's configured type, else
    ``name_type`` (the type its name's scores hold) if its value reads as one of that
    type ("no", "false" or 0 on a boolean name, "4.5" on a numeric one), else the type
    of its value alone; a type other than its name's is then refused by the write
    (409, naming both)."""
    if not score.session_id and not score.trace_id:
        raise BadRequest(f"score {score.name!r} names no target: give session_id or trace_id")
    if score.span_id and not score.trace_id:
        raise BadRequest(f"score {score.name!r} names a span_id without its trace_id")
    config = configs.get(score.name)
    data_type = score.data_type or (
        config.data_type if config else _untyped(score.name, score.value, name_type)
    )
    if config is not None and data_type != config.data_type:
        raise BadRequest(
            f"score {score.name!r} is configured as {config.data_type}, not {data_type}"
        )
    value, label = _value(score.name, data_type, score.value)
    if config is not None:
        _check_config(config, value, label)
    return ScoreRecord(
        id=score.id or uuid.uuid4().hex,
        name=score.name,
        data_type=data_type,
        value=value,
        label=label,
        session_id=score.session_id,
        trace_id=score.trace_id.lower() if score.trace_id else None,
        span_id=score.span_id.lower() if score.span_id else None,
        source=source,
        author=score.author,
        comment=score.comment,
        created_ns=now_ns,
    )


def _untyped(name: str, value: bool | float | str, name_type: str | None) -> str:
    """The type of a value given without one on an unconfigured name."""
    if name_type is not None:
        try:
            _value(name, name_type, value)
        except BadRequest:
            pass
        else:
            return name_type
    return _inferred_type(value)


def _inferred_type(value: bool | float | str) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "numeric"
    return "categorical"


_TRUE = {"true": 1.0, "false": 0.0, "1": 1.0, "0": 0.0, "yes": 1.0, "no": 0.0}


def _value(name: str, data_type: str, raw: bool | float | str) -> tuple[float | None, str | None]:
    """(value, label) of a raw value of ``data_type``."""
    if data_type == "boolean":
        if isinstance(raw, bool):
            return (1.0 if raw else 0.0), None
        if isinstance(raw, int | float) and raw in (0, 1):
            return float(raw), None
        if isinstance(raw, str) and raw.strip().lower() in _TRUE:
            return _TRUE[raw.strip().lower()], None
        raise BadRequest(f"score {name!r} is boolean: its value must be true or false")
    if data_type == "numeric":
        number: float | None = None
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            number = float(raw)
        elif isinstance(raw, str):
            try:
                number = float(raw)
            except ValueError:
                number = None
        if number is None or not math.isfinite(number):
            raise BadRequest(f"score {name!r} is numeric: {raw!r} is not a finite number")
        if abs(number) > MAX_SCORE_MAGNITUDE:
            raise BadRequest(f"score {name!r} is numeric: {raw!r} is past ±{MAX_SCORE_MAGNITUDE:g}")
        return number, None
    if data_type == "categorical":
        if isinstance(raw, bool) or not isinstance(raw, str):
            raise BadRequest(f"score {name!r} is categorical: its value must be a label")
        label = raw.strip()
        if not label or len(label) > MAX_SCORE_LABEL:
            raise BadRequest(f"score {name!r}: a label has 1 to {MAX_SCORE_LABEL} characters")
        return None, label
    raise BadRequest(f"unknown score type {data_type!r}: numeric, boolean or categorical")


def _check_config(config: ScoreConfig, value: float | None, label: str | None) -> None:
    if value is not None:
        if config.min_value is not None and value < config.min_value:
            raise BadRequest(
                f"score {config.name!r}: {value:g} is below its minimum {config.min_value:g}"
            )
        if config.max_value is not None and value > config.max_value:
            raise BadRequest(
                f"score {config.name!r}: {value:g} is above its maximum {config.max_value:g}"
            )
    if label is not None and config.labels and label not in config.labels:
        raise BadRequest(
            f"score {config.name!r}: {label!r} is not one of its labels {config.labels}"
        )


def check_config(config: ScoreConfig) -> ScoreConfig:
    """A score configuration that makes sense, or ``BadRequest``."""
    if config.data_type == "categorical":
        if not config.labels:
            raise BadRequest(f"categorical score {config.name!r} needs a list of labels")
        if len(set(config.labels)) != len(config.labels) or any(
            not label.strip() or len(label) > MAX_SCORE_LABEL for label in config.labels
        ):
            raise BadRequest(f"score {config.name!r}: labels must be distinct and non-empty")
        if config.min_value is not None or config.max_value is not None:
            raise BadRequest(f"categorical score {config.name!r} takes labels, not a range")
    else:
        if config.labels:
            raise BadRequest(f"{config.data_type} score {config.name!r} takes no labels")
        for bound in (config.min_value, config.max_value):
            if bound is not None and not abs(bound) <= MAX_SCORE_MAGNITUDE:
                raise BadRequest(
                    f"score {config.name!r}: bounds must be numbers within ±{MAX_SCORE_MAGNITUDE:g}"
                )
        if (
            config.min_value is not None
            and config.max_value is not None
            and config.min_value > config.max_value
        ):
            raise BadRequest(f"score {config.name!r}: min_value is above max_value")
        if config.data_type == "boolean" and (
            config.min_value is not None or config.max_value is not None
        ):
            raise BadRequest(f"boolean score {config.name!r} takes no range")
    return config


def score(record: ScoreRecord) -> Score:
    """The API's view of a stored score: the value as it was written."""
    value: bool | float | str
    if record.data_type == "categorical":
        value = record.label or ""
    elif record.data_type == "boolean":
        value = bool(record.value)
    else:
        value = record.value if record.value is not None else 0.0
    return Score(
        id=record.id,
        name=record.name,
        data_type=record.data_type,  # type: ignore[arg-type]
        value=value,
        session_id=record.session_id,
        trace_id=record.trace_id,
        span_id=record.span_id,
        source=record.source,  # type: ignore[arg-type]
        author=record.author,
        comment=record.comment,
        created_at=ns_to_datetime(record.created_ns),
    )


_FILTER = re.compile(r"^(?P<name>.+?)\s*(?P<op>>=|<=|!=|>|<|=)\s*(?P<value>.*)$", re.DOTALL)


def parse_filter(text: str) -> ScoreFilter:
    """``name op value`` (``op``: > >= < <= = !=) into a ``ScoreFilter``. A number is
    compared with the average, true/false with the share of true (1 or 0), anything
    else with the latest label (= and != only)."""
    match = _FILTER.match(text.strip())
    if match is None or not match["name"].strip():
        raise BadRequest(f"score filter {text!r} is not 'name op value' (op: > >= < <= = !=)")
    name, op, raw = match["name"].strip(), match["op"], match["value"].strip()
    if not raw:
        raise BadRequest(f"score filter {text!r} has no value")
    value: float | str
    lowered = raw.lower()
    if lowered in ("true", "false"):
        value = 1.0 if lowered == "true" else 0.0
    else:
        try:
            value = float(raw)
        except ValueError:
            value = raw
        else:
            if not math.isfinite(value):
                raise BadRequest(f"score filter {text!r}: the value must be finite")
    if isinstance(value, str) and op not in ("=", "!="):
        raise BadRequest(f"score filter {text!r}: a label compares with = or != only")
    return ScoreFilter(name=name, op=op, value=value)  # type: ignore[arg-type]


# How the UI says a boolean score (thumbs, "Good"/"Bad" in the score form) and how the
# write routes read one (yes/no), as a score filter's value on a boolean name.
_BOOLEAN_WORDS = {"good": 1.0, "yes": 1.0, "bad": 0.0, "no": 0.0}


def fit_to_types(
    filters: list[ScoreFilter], type_of: Callable[[str], str | None]
) -> list[ScoreFilter]:
    """``filters`` read by their names' types (``type_of``: the configured or written
    type, None for a name with no score): on a good/bad (boolean) name, good/bad and
    yes/no mean true/false. A label compared with a boolean or numeric name, which no
    row could match, is refused with what to write instead. Only a filter whose value
    is a label asks for its name's type."""
    fitted = []
    for condition in filters:
        value = condition.value
        if isinstance(value, str):
            held = type_of(condition.name)
            shown = f"{condition.name}{condition.op}{value}"
            if held == "boolean":
                if value.lower() not in _BOOLEAN_WORDS:
                    raise BadRequest(
                        f"score filter {shown!r}: {condition.name!r} is a good/bad score:"
                        " compare it with true or false (or good, bad, yes, no)"
                    )
                value = _BOOLEAN_WORDS[value.lower()]
            elif held == "numeric":
                raise BadRequest(
                    f"score filter {shown!r}: {condition.name!r} is a numeric score:"
                    " compare it with a number"
                )
        fitted.append(condition.model_copy(update={"value": value}))
    return fitted


def parse_filters(conditions: list[str], missing: list[str]) -> list[ScoreFilter]:
    """The ``score`` and ``missing_score`` parameters of a list, as filters."""
    filters = [parse_filter(text) for text in conditions]
    for name in missing:
        if not name.strip():
            raise BadRequest("missing_score needs a score name")
        filters.append(ScoreFilter(name=name.strip(), missing=True))
    return filters
