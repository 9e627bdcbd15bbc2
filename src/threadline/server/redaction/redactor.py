"""Rules applied to spans: every input, output, status message and attribute value
(the span's, its events', its resource's, its metadata's) has what the rules find
replaced by a label saying what was removed (``[email]``, ``[ticket]``).

Ids (trace, span, session, user), names, tags and non-text values are left as they
are: they key the data, and a number is not text to search.

Cost: most spans hold nothing to redact, so a span's texts are first joined and
scanned once by one RE2 program made of every rule's ``gate`` (a superset of what the
rule matches); only a span where it finds something is scanned text by text. The
attribute an input or output was read from (``input_source``) is the same text, so it
is scanned and redacted once, as the input or output.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import re2

from threadline.server.model import SpanRecord
from threadline.server.redaction.detectors import BUILT_IN
from threadline.server.redaction.rules import RedactionRules, compile_user_pattern

# Texts of a span are joined by this for the gate's one scan; the gate runs in
# multi-line mode, so ``^`` and ``$`` of a user pattern still match at every text's
# ends (a superset is all a gate needs).
_JOIN = "\n"
_GATE_MEMORY = 64 << 20


class Redactor:
    def __init__(self, rules: RedactionRules) -> None:
        detectors = [d for d in BUILT_IN.values() if d.name in rules.detectors]
        users = [(f"[{p.name}]", compile_user_pattern(p.regex)) for p in rules.patterns]
        self._steps: list[Callable[[str], str]] = [d.redact for d in detectors]
        self._steps += [functools.partial(_substitute, program, label) for label, program in users]
        gates = [d.gate for d in detectors] + [p.regex for p in rules.patterns]
        options = re2.Options()
        options.log_errors = False
        options.max_mem = _GATE_MEMORY
        self._gate = re2.compile("(?m)" + "|".join(f"(?:{g})" for g in gates), options=options)
        # \A and \z anchor at the very start and end of the joined text only: a span's
        # texts are then not scanned as one.
        self._join = not any("\\A" in p.regex or "\\z" in p.regex for p in rules.patterns)

    def text(self, value: str) -> str:
        if not self._gate.search(value):
            return value
        for step in self._steps:
            value = step(value)
        return value

    def value(self, value: Any) -> Any:
        """An attribute value: text redacted, lists and maps walked, the rest kept."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}
        return value

    def span(self, span: SpanRecord, resources: dict[int, dict[str, Any]]) -> None:
        """Redact ``span`` in place; ``resources`` holds the redacted copy of each
        resource (spans of one OTLP resource share its dict)."""
        if self._join:
            texts: list[str] = []
            _texts(span, texts)
            if not self._gate.search(_JOIN.join(texts)):
                return
        # The texts may change: their parsed messages no longer say what they do.
        span.input_messages = span.output_messages = None
        if span.input is not None:
            span.input = self.text(span.input)
        if span.output is not None:
            span.output = self.text(span.output)
        if span.status_message:
            span.status_message = self.text(span.status_message)
        # The attributes an input or output was read from hold the same text: redacted
        # once, as the input or output.
        sources = {
            k: v
            for k, v in ((span.input_source, span.input), (span.output_source, span.output))
            if k
        }
        span.attributes = {
            k: v if k in sources else self.value(v) for k, v in span.attributes.items()
        }
        for key, text in sources.items():
            if key in span.attributes:
                span.attributes[key] = text
        if span.metadata:
            span.metadata = self.value(span.metadata)
        for event in span.events:
            if event.get("attributes"):
                event["attributes"] = self.value(event["attributes"])
        redacted = resources.get(id(span.resource))
        if redacted is None:
            redacted = resources[id(span.resource)] = self.value(span.resource)
        span.resource = redacted


def _substitute(program: Any, label: str, text: str) -> str:
    return str(program.sub(label, text))


def _texts(span: SpanRecord, into: list[str]) -> None:
    if span.input is not None:
        into.append(span.input)
    if span.output is not None:
        into.append(span.output)
    if span.status_message:
        into.append(span.status_message)
    # Not the attributes the input and output were read from: the same text again
    # (half of an LLM span's bytes).
    for key, value in span.attributes.items():
        if key != span.input_source and key != span.output_source:
            _walk(value, into)
    _walk(span.metadata, into)
    for event in span.events:
        _walk(event.get("attributes"), into)
    _walk(span.resource, into)


def _walk(value: Any, into: list[str]) -> None:
    if isinstance(value, str):
        into.append(value)
    elif isinstance(value, dict):
        for v in value.values():
            _walk(v, into)
    elif isinstance(value, list):
        for v in value:
            _walk(v, into)


@functools.lru_cache(maxsize=256)
def redactor(rules: RedactionRules) -> Redactor:
    """The compiled redactor of ``rules`` (rules are plain and hashable: compiled once
    per process, wherever the spans are normalised)."""
    return Redactor(rules)


def redact_spans(spans: Sequence[SpanRecord], rules: RedactionRules) -> None:
    """Apply ``rules`` to ``spans`` in place (nothing to do for no rules)."""
    if not rules.active:
        return
    apply = redactor(rules)
    resources: dict[int, dict[str, Any]] = {}
    for span in spans:
        apply.span(span, resources)
