"""Threads under load (issue 15): a busy process on one core, each call against its own
one-thread time under the same load, in one run.

Run: ``pytest benchmarks/bench_load.py --benchmark-only`` (needs at least two
cores; the busy process is pinned to the last one; ``--goals`` asserts the goals,
each baseline is a benchmark of its own in the group).  Goals:

* under load, a mid-size solve (with masses, d = 3, n = 60) and product
  (d = 3, n = 96) with kronsolve's default thread policy within 1.3x of the same
  call limited to one thread;
* quiet, the default policy no slower than BLAS's own threads (within 1.1x).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest
from _timing import check_speedup

import kronsolve as ks
from kronsolve._backends.numpy import _single_blas_thread


def _spd(rng, n):
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    A = (Q * rng.uniform(1.0, 2.0, n)) @ Q.T
    return (A + A.T) / 2


def _cases():
    rng = np.random.default_rng(0)
    n = 60
    solver = ks.KronSumSolver([_spd(rng, n) for _ in range(3)],
                              masses=[_spd(rng, n) for _ in range(3)])
    B = rng.standard_normal((n, n, n))
    K = ks.kron(*[rng.standard_normal((96, 96)) for _ in range(3)])
    x = rng.standard_normal(96**3)
    return {"mass-solve-d3-n60": lambda: solver.solve(B), "product-d3-n96": lambda: K @ x}


def _one_thread(f):
    def g():
        with _single_blas_thread():
            return f()
    return g


@pytest.fixture
def busy_core():
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cores) < 2:
        pytest.skip("needs two cores")
    p = subprocess.Popen([sys.executable, "-c",
                          f"import os\nos.sched_setaffinity(0, {{{cores[-1]}}})\nwhile True: pass"])
    time.sleep(0.5)
    yield
    p.kill()
    p.wait()


DEFAULT = "kronsolve's thread policy"
ONE_THREAD = "one thread (baseline)"
BLAS_THREADS = "BLAS's own threads (baseline)"


def _blas_default(f):
    def g():
        old = ks.set_num_threads(os.cpu_count() or 1)  # no policy: BLAS's own threads
        try:
            return f()
        finally:
            ks.set_num_threads(old)
    return g


def _check_same(out, fns):
    """Every variant computes the same result (thread counts change the rounding only)."""
    ref = fns[DEFAULT]()
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-10 * np.abs(ref).max())


@pytest.mark.parametrize("method", [DEFAULT, ONE_THREAD])
@pytest.mark.parametrize("case", ["mass-solve-d3-n60", "product-d3-n96"])
@pytest.mark.benchmark(group="threads-under-load")
def test_under_load_within_1_3x_of_one_thread(benchmark, case, method, busy_core,
                                              timing_enabled):
    """Goal: under load, the default policy within 1.3x of the same call with one thread."""
    f = _cases()[case]
    fns = {DEFAULT: f, ONE_THREAD: _one_thread(f)}
    out = benchmark.pedantic(fns[method], rounds=20, iterations=1, warmup_rounds=2)
    _check_same(out, fns)
    if method == DEFAULT:
        check_speedup(benchmark, fns[ONE_THREAD], 1 / 1.3,
                      "the same call with one thread, same load", timing_enabled, candidate=f,
                      rounds=9, min_time=0.02)


@pytest.mark.parametrize("method", [DEFAULT, BLAS_THREADS])
@pytest.mark.parametrize("case", ["mass-solve-d3-n60", "product-d3-n96"])
@pytest.mark.benchmark(group="threads-quiet")
def test_quiet_no_slower_than_blas_threads(benchmark, case, method, timing_enabled):
    """Goal: quiet, the default policy within 1.1x of BLAS's own threads."""
    f = _cases()[case]
    fns = {DEFAULT: f, BLAS_THREADS: _blas_default(f)}
    out = benchmark.pedantic(fns[method], rounds=20, iterations=1, warmup_rounds=2)
    _check_same(out, fns)
    if method == DEFAULT:
        check_speedup(benchmark, fns[BLAS_THREADS], 1 / 1.1, "BLAS's own threads (no policy)",
                      timing_enabled, candidate=f, rounds=9, min_time=0.02)
