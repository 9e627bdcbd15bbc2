"""The installed package's version, as ``threadline --version`` and the API's OpenAPI
document give it."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    VERSION = version("threadline")
except PackageNotFoundError:  # run from a source tree that was never installed
    VERSION = "unknown"
