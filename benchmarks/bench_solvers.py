"""Speed goals of the Kronecker-sum solvers (issue 3), each against a baseline in the same run.

Run: ``pytest benchmarks/bench_solvers.py --benchmark-only``.  With
``--benchmark-disable`` (the plain test run) each solve runs once and is checked.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
from _timing import check_speedup
from numpy.testing import assert_allclose

import kronsolve as ks
from kronsolve import _smalleig


def _spd(rng, n):
    """Symmetric positive definite factor with eigenvalues in [1, 2] (well-posed sums)."""
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    A = (Q * rng.uniform(1.0, 2.0, n)) @ Q.T
    return (A + A.T) / 2


def _residual(X, mats, B):
    K = ks.kronsum(*mats)
    r = K @ X.ravel() - B.ravel()
    return np.linalg.norm(r) / (sum(np.linalg.norm(A, 2) for A in mats) * np.linalg.norm(X))


@pytest.mark.parametrize("factors", ["same", "distinct"])
@pytest.mark.benchmark(group="kronsum-d3-n16-vs-dense-solve")
def test_d3_n16_vs_dense_solve(benchmark, factors, timing_enabled):
    """Goal: at least 5,000x faster than np.linalg.solve of the assembled 4096 x 4096 system."""
    n = 16
    rng = np.random.default_rng(0)
    A = _spd(rng, n)
    mats = [A, A, A] if factors == "same" else [A, _spd(rng, n), _spd(rng, n)]
    B = rng.standard_normal((n, n, n))
    # Warm-up, as a JIT's: once small eigendecompositions have taken 0.25 s in a
    # process, the compiled eigensolver is loaded (kronsolve._smalleig); a
    # long-running user sees that steady state.
    while _smalleig._state["kernel"] is None:
        ks.solve_sylvester3d(B, *mats)
    X = benchmark(lambda: ks.solve_sylvester3d(B, *mats))
    assert _residual(X, mats, B) < 1e-14
    if timing_enabled:
        D = ks.kronsum(*mats).toarray()  # assembled outside the timing
        b = B.ravel()
        assert_allclose(np.linalg.solve(D, b), X.ravel(), rtol=1e-9, atol=1e-12)
        check_speedup(benchmark, lambda: np.linalg.solve(D, b), 5000,
                      "np.linalg.solve of the assembled system", timing_enabled,
                      candidate=lambda: ks.solve_sylvester3d(B, *mats), rounds=5)


@pytest.mark.parametrize("factors", ["same", "distinct"])
@pytest.mark.benchmark(group="kronsum-d2-n256-vs-scipy")
def test_d2_n256_symmetric_vs_scipy(benchmark, factors, timing_enabled):
    """Goal: at least 15x faster than scipy.linalg.solve_sylvester (a, b symmetric)."""
    n = 256
    rng = np.random.default_rng(1)
    a = _spd(rng, n)
    b = a if factors == "same" else _spd(rng, n)
    q = rng.standard_normal((n, n))
    x = benchmark(lambda: ks.solve_sylvester(a, b, q))
    assert_allclose(a @ x + x @ b, q, atol=1e-12 * np.abs(q).max() * n)
    ref = lambda: scipy.linalg.solve_sylvester(a, b, q)  # noqa: E731
    assert_allclose(x, ref(), rtol=1e-9, atol=1e-12)
    check_speedup(benchmark, ref, 15, "scipy.linalg.solve_sylvester", timing_enabled,
                  candidate=lambda: ks.solve_sylvester(a, b, q))


@pytest.mark.parametrize("n", [128, 192])
@pytest.mark.benchmark(group="kronsum-d3-solve-vs-matvec")
def test_d3_solve_within_2_3_matvecs(benchmark, n, timing_enabled):
    """Goal: the whole solve, eigendecomposition included, within 2.3x one d = 3 matvec.

    The two transforms cost two matvecs; the division must not cost a third.
    Reported as ``speedup = matvec / solve``, whose goal is ``1 / 2.3``.
    """
    rng = np.random.default_rng(2)
    A = _spd(rng, n)
    B = rng.standard_normal((n, n, n))
    # 9 rounds: the median must survive a few scheduling hiccups on shared machines
    X = benchmark.pedantic(lambda: ks.solve_sylvester3d(B, A), rounds=9, iterations=1,
                           warmup_rounds=1)
    assert _residual(X, [A, A, A], B) < 1e-14
    if timing_enabled:
        K = ks.kron(A, A, A)
        x = B.ravel()
        ratio = check_speedup(benchmark, lambda: K @ x, 1 / 2.3,
                              "one d=3 Kronecker matvec kron(A, A, A) @ x", timing_enabled,
                              candidate=lambda: ks.solve_sylvester3d(B, A), min_time=0.0)
        benchmark.extra_info["solve_over_matvec"] = 1 / ratio
