"""Hypothesis profiles of the reliability tests.

``ci`` (the default) is deterministic: derandomized, no example database, no deadline
(the server round trips vary in time). ``HYPOTHESIS_PROFILE=explore`` searches with
fresh randomness and more examples, for a longer look on a developer's machine.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
settings.register_profile(
    "explore",
    parent=settings.get_profile("ci"),
    derandomize=False,
    max_examples=2_000,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
