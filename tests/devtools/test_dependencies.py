"""What the package imports, its install brings: every third-party module the SDK
imports is installed by `pip install threadline`'s dependencies, every one the server
imports by the `server` extra (the ClickHouse store's by the `clickhouse` extra), each
declared or required by one declared. The tests run with the `test` extra, which holds
more, so a missing one shows only on a user's `pip install '.[server]'`."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, packages_distributions, requires
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "threadline"


def _name(text: str) -> str:
    return re.sub(r"[-_.]+", "-", text).lower()


def _installed_by(requirements: list[str]) -> set[str]:
    """The distributions ``requirements`` install: themselves and what they require,
    for this platform, without their own extras."""
    found: set[str] = set()
    todo = [Requirement(r) for r in requirements]
    while todo:
        requirement = todo.pop()
        if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
            continue
        name = _name(requirement.name)
        if name in found:
            continue
        found.add(name)
        try:
            todo.extend(Requirement(r) for r in requires(requirement.name) or [])
        except PackageNotFoundError:
            pass  # not installed here: nothing more to follow
    return found


def _imports(path: Path) -> set[str]:
    """The top-level names of the third-party modules ``path`` imports, anywhere in it."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n != "threadline"}


def test_every_module_imported_is_installed_by_the_install_that_runs_it() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    sdk = _installed_by(project["dependencies"])
    server = sdk | _installed_by(extras["server"])
    clickhouse = server | _installed_by(extras["clickhouse"])
    providers = packages_distributions()
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        part = path.relative_to(PACKAGE).as_posix()
        if part.startswith("server/store/clickhouse/"):
            installed = clickhouse
        elif part.startswith("server/"):
            installed = server
        else:
            installed = sdk
        for module in sorted(_imports(path)):
            # A namespace (google, opentelemetry) is shared: one of its distributions must be.
            if not {_name(d) for d in providers.get(module, [])} & installed:
                missing.append(f"{part}: {module}")
    assert not missing, missing
