"""Root pytest configuration.

The normal test run (``pytest``) runs every benchmark once, untimed, as a
correctness test (``--benchmark-disable``); ``pytest benchmarks --benchmark-only``
(or ``--benchmark-enable``) times them.
"""

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    opt = config.option
    if not getattr(opt, "benchmark_only", False) and not getattr(opt, "benchmark_enable", False):
        opt.benchmark_disable = True
