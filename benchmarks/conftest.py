"""Shared fixtures and options of the benchmark suite.

Conventions
-----------
* Every case is a pytest-benchmark ``group``: kronsolve and each of its
  baselines and peers are benchmarks of their own in it (a ``method``
  parameter), so that the table, ``--benchmark-compare`` and
  ``--benchmark-histogram`` show them side by side.
* Speed goals are asserted only with ``--goals`` (``pytest benchmarks
  --benchmark-only --goals``).  Each goal is a *ratio* against a baseline
  measured in the same run: :func:`_timing.check_speedup` and
  :func:`_timing.check_rate_share` time the candidate and its baseline
  alternately, round by round (:func:`kronsolve._timing.paired_times`), take
  the median of the rounds' ratios, record it in ``benchmark.extra_info`` and
  assert the goal, so that a change in the machine's load moves both sides alike.
  Without ``--goals`` the timed suite reports and stays green.
* With ``--benchmark-disable`` (the normal test run, see the root conftest.py)
  every benchmark runs its function once, untimed, and checks the result.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import _timing  # noqa: E402


def pytest_addoption(parser):
    parser.addoption(
        "--goals", action="store_true", default=False,
        help="kronsolve benchmarks: assert the speed goals (each a ratio against its baseline, "
             "the two timed alternately in the same run); needs --benchmark-only",
    )


def pytest_configure(config):
    goals = config.getoption("--goals", default=False)
    if goals and getattr(config.option, "benchmark_disable", False):
        raise pytest.UsageError("--goals needs timing: pytest benchmarks --benchmark-only --goals")
    _timing.GOALS["on"] = bool(goals)


@pytest.fixture(scope="session")
def timing_enabled(request) -> bool:
    """True when pytest-benchmark actually times (not ``--benchmark-disable``)."""
    session = getattr(request.config, "_benchmarksession", None)
    return session is not None and not session.disabled
