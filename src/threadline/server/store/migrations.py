"""The numbered schema migrations of a backend: its ``migrations/NNNN_*.sql`` files.

Each backend records the version its database is at (SQLite in ``user_version``,
ClickHouse in ``threadline_schema``) and applies, in order, the scripts above it.
"""

from __future__ import annotations

from importlib import resources


def pending(package: str, current: int) -> list[tuple[int, str]]:
    """The version and text of each migration of ``package`` above ``current``, in
    order."""
    folder = resources.files(package) / "migrations"
    scripts = sorted(
        (int(entry.name.split("_", 1)[0]), entry)
        for entry in folder.iterdir()
        if entry.name.endswith(".sql")
    )
    return [(version, entry.read_text()) for version, entry in scripts if version > current]
