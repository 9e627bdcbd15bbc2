"""The SQLite engine the store links (store/sqlite/driver.py): the bundled current one
when installed, the standard library's when asked (or when no wheel exists), and what
a migration needing a newer engine than the linked one does."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from threadline.server.store.sqlite import driver


def _version_line(engine: str | None) -> str:
    env = dict(os.environ)
    env.pop("THREADLINE_SQLITE", None)
    if engine is not None:
        env["THREADLINE_SQLITE"] = engine
    done = subprocess.run(
        [sys.executable, "-c", "from threadline.server.cli import main; main(['--version'])"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout.strip()


def _stdlib_version() -> str:
    done = subprocess.run(
        [sys.executable, "-I", "-c", "import sqlite3; print(sqlite3.sqlite_version)"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout.strip()


def test_the_bundled_engine_is_linked_when_installed() -> None:
    pytest.importorskip("pysqlite3")
    line = _version_line(None)
    assert "(pysqlite3)" in line, line
    assert driver.MODULE == "pysqlite3"
    # The point of it: FTS5's contentless_delete (3.43) and later fixes.
    assert driver.supports(3, 43)


def test_the_standard_module_can_be_chosen() -> None:
    line = _version_line("stdlib")
    assert line.endswith(f"SQLite {_stdlib_version()} (sqlite3)"), line


def test_an_unknown_engine_name_is_refused() -> None:
    with pytest.raises(subprocess.CalledProcessError) as refused:
        _version_line("postgres")
    assert "THREADLINE_SQLITE" in refused.value.stderr


def test_a_migration_names_the_engine_it_needs() -> None:
    major, minor, patch = driver.VERSION
    assert driver.unmet_requirement("CREATE TABLE t (a);") is None
    assert driver.unmet_requirement(f"-- requires SQLite {major}.{minor}\nSELECT 1;") is None
    assert driver.unmet_requirement(f"-- x\n-- requires SQLite {major + 1}.0\n") == (
        f"{major + 1}.0.0"
    )
    assert driver.unmet_requirement(f"-- requires SQLite {major}.{minor}.{patch + 1}") == (
        f"{major}.{minor}.{patch + 1}"
    )
