"""Hypothesis profiles for the property and schema tests.

`suite` (the default) keeps `make test` quick and repeatable: few examples, derandomized, no
example database. `fuzz` (`make fuzz`, or HYPOTHESIS_PROFILE=fuzz) explores for minutes and
remembers failures in .hypothesis/ so the next run tries them first.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "suite",
    max_examples=50,
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "fuzz",
    max_examples=200,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "suite"))
