"""Shared fixtures for the benchmark suite.

Conventions
-----------
* Each speed goal is a *ratio* against a baseline measured in the same run.
  The candidate goes through pytest-benchmark's ``benchmark`` fixture (the
  tables); for the goal, :func:`check_speedup` and :func:`check_rate_share` then
  time the candidate and its baseline alternately, round by round
  (:func:`paired_times`), take the median of the rounds' ratios, record it in
  ``benchmark.extra_info`` and assert the goal.  A change in the machine's load
  during the run then moves both sides of a ratio alike.
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

