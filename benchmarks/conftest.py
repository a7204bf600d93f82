"""Shared fixtures for the benchmark suite.

Conventions
-----------
* Each speed goal is a *ratio* against a baseline measured in the same run:
  the candidate goes through pytest-benchmark's ``benchmark`` fixture, the
  baseline through :func:`timeit_median`, and :func:`check_speedup` records both
  in ``benchmark.extra_info`` and asserts the goal.
* With ``--benchmark-disable`` (the normal test run) every benchmark still runs
  its function once and checks the result for correctness; ratios are only
  asserted when timing is on (``--benchmark-only``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def timing_enabled(request) -> bool:
    """True when pytest-benchmark actually times (not ``--benchmark-disable``)."""
    session = getattr(request.config, "_benchmarksession", None)
    return session is not None and not session.disabled

