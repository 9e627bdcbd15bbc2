"""A trace's usage by model: what its spans of each model cost and used (shared, pure).

Kept beside the trace rollups, so that the dashboard can split cost and tokens per
bucket by model without reading spans. Spans without a model count under ``""``. Cost
is summed in picodollars (1e-12 USD, rounded per span), integers, so a usage added to
and taken back from a per-bucket sum leaves it exactly as it was, whatever the order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

NO_MODEL = ""
PICO = 1e12


class ModelSpan(Protocol):
    """The part of a span its trace's usage by model reads."""

    @property
    def model(self) -> str | None: ...
    @property
    def input_tokens(self) -> int | None: ...
    @property
    def output_tokens(self) -> int | None: ...
    @property
    def total_tokens(self) -> int | None: ...
    @property
    def cost_usd(self) -> float | None: ...


@dataclass(slots=True)
class ModelUsage:
    model: str
    spans: int = 0
    cost_spans: int = 0  # spans whose cost is known
    cost_pico: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0

    @property
    def is_empty(self) -> bool:
        """Nothing used: not worth a row (spans without a model, such as tools)."""
        return not (self.cost_spans or self.input_tokens or self.output_tokens or self.total_tokens)

    def add(self, other: ModelUsage) -> None:
        self.spans += other.spans
        self.cost_spans += other.cost_spans
        self.cost_pico += other.cost_pico
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.total_tokens += other.total_tokens


def picodollars(cost_usd: float) -> int:
    """A cost in 1e-12 USD. The same IEEE operations as the SQL ``CAST(cost * 1e12 + 0.5
    AS INTEGER)`` of the stores (costs are never negative), so both give the same integer."""
    return int(cost_usd * PICO + 0.5)


def usage_by_model(spans: Iterable[ModelSpan]) -> dict[str, ModelUsage]:
    """Each model's usage over ``spans`` (a trace's, or the new ones of a batch)."""
    found: dict[str, ModelUsage] = {}
    for span in spans:
        model = span.model or NO_MODEL
        usage = found.get(model)
        if usage is None:
            usage = found[model] = ModelUsage(model)
        usage.spans += 1
        if span.cost_usd is not None:
            usage.cost_spans += 1
            usage.cost_pico += picodollars(span.cost_usd)
        if span.input_tokens:
            usage.input_tokens += span.input_tokens
        if span.output_tokens:
            usage.output_tokens += span.output_tokens
        if span.total_tokens:
            usage.total_tokens += span.total_tokens
    return found
