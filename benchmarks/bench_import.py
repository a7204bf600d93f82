"""``import kronsolve`` adds under 0.3 s to importing NumPy, SciPy and opt_einsum."""

from __future__ import annotations

import subprocess
import sys

import pytest
from _timing import check_goal

BASE = "import numpy, scipy, scipy.linalg, scipy.sparse, scipy.sparse.linalg, opt_einsum"


def _import_seconds(extra: str) -> float:
    code = f"import time; t = time.perf_counter(); {BASE}{extra}; print(time.perf_counter() - t)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout)


BASE_ONLY = "NumPy + SciPy + opt_einsum alone (baseline)"


@pytest.mark.parametrize("method", ["with import kronsolve", BASE_ONLY])
@pytest.mark.benchmark(group="import")
def test_import_overhead(benchmark, method, timing_enabled):
    """A new process importing NumPy, SciPy, opt_einsum, with and without kronsolve.

    The benchmarks time the whole process (start-up included); the goal compares
    the import times measured inside it, best of 5 each.
    """
    if method == "with import kronsolve":
        code = "import sys, kronsolve; print('numba' in sys.modules)"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True)
        assert out.stdout.strip() == "False", "import kronsolve must not import numba"
    extra = "; import kronsolve" if method == "with import kronsolve" else ""
    seconds = benchmark.pedantic(lambda: _import_seconds(extra),
                                 rounds=3 if timing_enabled else 1, iterations=1)
    assert seconds > 0
    if timing_enabled and method == "with import kronsolve":
        base = min(_import_seconds("") for _ in range(5))
        with_ks = min(_import_seconds("; import kronsolve") for _ in range(5))
        check_goal(benchmark, with_ks - base < 0.3, f"import kronsolve adds {with_ks - base:.3f} s",
                   base_s=base, with_kronsolve_s=with_ks)
