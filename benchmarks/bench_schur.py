"""Speed goals of the Schur route for non-symmetric factors (issue 14), as ratios in one run.

Run: ``pytest benchmarks/bench_schur.py --benchmark-only`` (``--goals`` asserts the
goals).  With ``--benchmark-disable`` (the plain test run) each solve and each
baseline runs once and is checked.

* d = 3, n = 128, distinct non-symmetric factors: the one-shot Schur solve
  within 3x the symmetric fast-diagonalization solve of the same size, and,
  with a ``KronSumSolver`` built once, each further solve within 2.5x.
* d = 2, n = 512, non-symmetric: ``kronsolve.solve_sylvester`` at least 1.5x
  faster than ``scipy.linalg.solve_sylvester``.

Two kinds of non-symmetric factors: upwind convection–diffusion operators
(Péclet numbers 10, 100 and 1000; strongly non-normal, real spectra that the
Schur form partly reports as 2 x 2 blocks) and random matrices shifted to be
well-posed (about half of their eigenvalues in complex pairs).
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
from _timing import bench, check_speedup

import kronsolve as ks


def _spd(rng, n):
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    A = (Q * rng.uniform(1.0, 2.0, n)) @ Q.T
    return (A + A.T) / 2


def _convection_diffusion(n, pe):
    h = 1.0 / (n + 1)
    E = np.eye(n, k=-1)
    return (2 * np.eye(n) - E - E.T) / h**2 + pe * (np.eye(n) - E) / h


def _nonsymmetric(kind, rng, n):
    if kind == "convection-diffusion":
        return [_convection_diffusion(n, pe) for pe in (10.0, 100.0, 1000.0)]
    return [rng.standard_normal((n, n)) + 3 * np.sqrt(n) * np.eye(n) for _ in range(3)]


def _scaled_residual(X, mats, B):
    R = B - sum(ks.mode_product(X, A, k) for k, A in enumerate(mats))
    opn = sum(np.linalg.norm(A, 2) for A in mats)
    return np.linalg.norm(R) / (opn * np.linalg.norm(X) * np.finfo(float).eps)


SYMMETRIC = "symmetric factors (baseline)"


def _within_symmetric(benchmark, fns, method, factor, label, timing_enabled):
    """With ``--goals``: the Schur route within ``factor`` times the symmetric solve
    (their ratio recorded as ``schur_over_symmetric``)."""
    ratio = check_speedup(benchmark, fns[SYMMETRIC], 1 / factor, label, timing_enabled,
                          candidate=fns[method], min_time=0.0)
    if ratio:
        benchmark.extra_info["schur_over_symmetric"] = 1 / ratio


@pytest.mark.parametrize("method", ["kronsolve Schur route", SYMMETRIC])
@pytest.mark.parametrize("kind", ["convection-diffusion", "random"])
@pytest.mark.benchmark(group="schur-d3-n128-vs-symmetric")
def test_d3_n128_schur_within_3x_symmetric(benchmark, kind, method, timing_enabled):
    """Goal: the one-shot solve within 3x the symmetric solve (``speedup >= 1/3``)."""
    n = 128
    rng = np.random.default_rng(3)
    mats = _nonsymmetric(kind, rng, n)
    sym = [_spd(rng, n) for _ in range(3)]
    B = rng.standard_normal((n, n, n))
    fns = {"kronsolve Schur route": lambda: ks.solve_kronsum(B, mats),
           SYMMETRIC: lambda: ks.solve_kronsum(B, sym)}
    X = bench(benchmark, fns, method, rounds=5)
    assert _scaled_residual(X, mats if method != SYMMETRIC else sym, B) <= 30
    if method == SYMMETRIC:
        return
    _within_symmetric(benchmark, fns, method, 3, "the symmetric solve "
                      "solve_kronsum(B, [S1, S2, S3])", timing_enabled)


@pytest.mark.parametrize("method", ["kronsolve Schur route", SYMMETRIC])
@pytest.mark.parametrize("kind", ["convection-diffusion", "random"])
@pytest.mark.benchmark(group="schur-d3-n128-per-solve")
def test_d3_n128_schur_per_solve_within_2_5x(benchmark, kind, method, timing_enabled):
    """Goal: with the solver built once, a solve within 2.5x the symmetric one's."""
    n = 128
    rng = np.random.default_rng(4)
    solvers = {"kronsolve Schur route": ks.KronSumSolver(_nonsymmetric(kind, rng, n)),
               SYMMETRIC: ks.KronSumSolver([_spd(rng, n) for _ in range(3)])}
    B = rng.standard_normal((n, n, n))
    fns = {k: (lambda s=s: s.solve(B)) for k, s in solvers.items()}
    X = bench(benchmark, fns, method, rounds=5)
    assert _scaled_residual(X, solvers[method]._Ks, B) <= 30
    if method == SYMMETRIC:
        return
    _within_symmetric(benchmark, fns, method, 2.5,
                      "KronSumSolver.solve with symmetric factors", timing_enabled)


@pytest.mark.parametrize("method", ["kronsolve", "scipy.linalg.solve_sylvester"])
@pytest.mark.benchmark(group="schur-d2-n512-vs-scipy")
def test_d2_n512_nonsymmetric_vs_scipy(benchmark, method, timing_enabled):
    """Goal: ``solve_sylvester`` at least 1.5x faster than SciPy's (non-symmetric a, b)."""
    n = 512
    rng = np.random.default_rng(5)
    a = rng.standard_normal((n, n))
    b = rng.standard_normal((n, n))
    q = rng.standard_normal((n, n))
    fns = {"kronsolve": lambda: ks.solve_sylvester(a, b, q),
           "scipy.linalg.solve_sylvester": lambda: scipy.linalg.solve_sylvester(a, b, q)}
    x = bench(benchmark, fns, method, rounds=3)
    r = np.linalg.norm(a @ x + x @ b - q)
    opn = np.linalg.norm(a, 2) + np.linalg.norm(b, 2)
    assert r / (opn * np.linalg.norm(x) * np.finfo(float).eps) <= 30
    if method == "kronsolve":
        check_speedup(benchmark, fns["scipy.linalg.solve_sylvester"], 1.5,
                      "scipy.linalg.solve_sylvester", timing_enabled,
                      candidate=fns["kronsolve"], rounds=3, min_time=0.0)
