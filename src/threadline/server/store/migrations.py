"""The numbered schema migrations of a backend: its ``migrations/NNNN_*.sql`` files.

Each backend records every version it applied (SQLite in ``schema_migrations``, see
sqlite/migration_ledger.py; ClickHouse in ``threadline_schema``) and applies, in number
order, every script it has not. Not only the ones above the highest applied: branches
merge their migrations out of number order, so a database made in between holds a
higher version and lacks a lower one, which must still be applied when it arrives.
"""

from __future__ import annotations

from collections.abc import Collection
from importlib import resources


def scripts(package: str) -> list[tuple[int, str]]:
    """The version and text of every migration of ``package``, in number order."""
    folder = resources.files(package) / "migrations"
    found = sorted(
        (int(entry.name.split("_", 1)[0]), entry)
        for entry in folder.iterdir()
        if entry.name.endswith(".sql")
    )
    return [(version, entry.read_text()) for version, entry in found]


def pending(package: str, applied: Collection[int]) -> list[tuple[int, str]]:
    """The version and text of each migration of ``package`` not in ``applied``, in
    number order."""
    return [(version, text) for version, text in scripts(package) if version not in applied]
