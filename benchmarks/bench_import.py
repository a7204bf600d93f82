"""``import kronsolve`` adds under 0.3 s to importing NumPy, SciPy and opt_einsum."""

from __future__ import annotations

import subprocess
import sys

import pytest

BASE = "import numpy, scipy, scipy.linalg, scipy.sparse, scipy.sparse.linalg, opt_einsum"


def _import_seconds(extra: str) -> float:
    code = f"import time; t = time.perf_counter(); {BASE}{extra}; print(time.perf_counter() - t)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout)


@pytest.mark.benchmark(group="import")
def test_import_overhead(benchmark, timing_enabled):
    code = "import sys, kronsolve; print('numba' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", "import kronsolve must not import numba"
    benchmark.pedantic(lambda: _import_seconds("; import kronsolve"), rounds=1, iterations=1)
    if timing_enabled:
        base = min(_import_seconds("") for _ in range(5))
        with_ks = min(_import_seconds("; import kronsolve") for _ in range(5))
        benchmark.extra_info.update({"base_s": base, "with_kronsolve_s": with_ks})
        assert with_ks - base < 0.3, f"import kronsolve adds {with_ks - base:.3f} s"
