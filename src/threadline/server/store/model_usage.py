"""A trace's usage by model: what its spans of each model cost and used (shared, pure).

Kept beside the trace rollups, so that the dashboard can split cost and tokens per
bucket by model without reading spans. Spans without a model count under ``""``. Cost
is summed in picodollars (1e-12 USD, rounded per span), integers, so a usage added to
and taken back from a per-bucket sum leaves it exactly as it was, whatever the order.
"""

from __future__ import annotations

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


def picodollars(cost_usd: float) -> int:
    """A cost in 1e-12 USD. The same IEEE operations as the SQL ``CAST(cost * 1e12 + 0.5
    AS INTEGER)`` of the stores (costs are never negative), so both give the same integer."""
    return int(cost_usd * PICO + 0.5)
