"""Small factors, many right-hand sides, high d and per-item factors (issue 17).

Run: ``pytest benchmarks/bench_fused.py --benchmark-only`` (``--goals`` asserts the
goals).  Each case is a group with kronsolve (fused kernels where its measured
rule picks them), kronsolve's GEMM schemes alone (``"gemm"`` strategy, the
baseline of the fused kernels) and, where the issue names one, a peer.  The
goals are shares of the machine's GEMM rate (``A @ B`` at n = 2048, timed
alternately with the candidate) and ratios against a baseline in the same run.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from _timing import bench, check_rate_share, check_speedup
from bench_batched import _stacked_numpy, per_item_problem
from numpy.testing import assert_allclose

import kronsolve as ks
import kronsolve._backends._transform as tr

KRONSOLVE = "kronsolve"
GEMM = "kronsolve, GEMM schemes only"
EINSUM = "np.einsum(optimize='optimal')"


@pytest.fixture(scope="module", autouse=True)
def _kernels_compiled():
    ks.warm_up()


@contextlib.contextmanager
def _gemm_schemes():
    before = tr._STRATEGY[0]
    tr._STRATEGY[0] = "gemm"
    try:
        yield
    finally:
        tr._STRATEGY[0] = before


def _gemm_only(fn):
    def run():
        with _gemm_schemes():
            return fn()
    return run


def _einsum(F, X, k):
    d = len(F)
    letters = "abcdefghijklmnopqrstuvwxy"
    out, inn = letters[:d], letters[d:2 * d]
    spec = ",".join(o + i for o, i in zip(out, inn)) + "," + inn + ("z" if k > 1 else "")
    spec += "->" + out + ("z" if k > 1 else "")
    T = X.reshape((F[0].shape[1],) * d + ((k,) if k > 1 else ()))
    return lambda: np.einsum(spec, *F, T, optimize="optimal").reshape(X.shape)


# (d, n, right-hand sides, goal share of the GEMM rate)
CASES = [(4, 8, 1024, 0.45), (3, 16, 256, 0.50), (6, 8, 1, 0.33), (3, 16, 1, 0.30),
         (3, 25, 1, 0.33)]


@pytest.mark.parametrize("method", [KRONSOLVE, GEMM, EINSUM])
@pytest.mark.parametrize(("d", "n", "k", "goal"), CASES, ids=[f"d{c[0]}-n{c[1]}-k{c[2]}"
                                                             for c in CASES])
def test_small_factor_products(benchmark, method, d, n, k, goal, timing_enabled):
    benchmark.group = f"fused-d{d}-n{n}-k{k}"
    rng = np.random.default_rng(d * n + k)
    F = [rng.standard_normal((n, n)) for _ in range(d)]
    X = rng.standard_normal((n ** d, k)) if k > 1 else rng.standard_normal(n ** d)
    K, K_gemm = ks.kron(*F), ks.kron(*F)  # operators memoize their plans: one each
    fns = {KRONSOLVE: lambda: K @ X, GEMM: _gemm_only(lambda: K_gemm @ X),
           EINSUM: _einsum(F, X, k)}
    Y = bench(benchmark, fns, method, rounds=None if n ** d * k < 1 << 16 else 5)
    assert_allclose(Y, fns[GEMM if method != GEMM else KRONSOLVE](), rtol=1e-9, atol=1e-9)
    if method == KRONSOLVE:
        flops = 2.0 * d * n ** (d + 1) * k
        check_rate_share(benchmark, flops, None, goal, timing_enabled, candidate=fns[KRONSOLVE])
        if (d, n, k) == (3, 25, 1):
            check_speedup(benchmark, fns[EINSUM], 3.5, EINSUM, timing_enabled,
                          candidate=fns[KRONSOLVE])


STACKED = "stacked np.matmul (decompositions precomputed)"


@pytest.mark.parametrize("method", [KRONSOLVE, STACKED])
@pytest.mark.benchmark(group="fused-per-item-solve-4096x16^3")
def test_per_item_solves(benchmark, method, timing_enabled):
    """4,096 problems d = 3, n = 16 with factors of their own, factored once
    (``KronSumSolver`` of the stacks): goal 3x the stacked ``np.matmul`` solve."""
    mats, B = per_item_problem()
    solver = ks.KronSumSolver(mats)
    dec = [np.linalg.eigh(A) for A in mats]
    lams, Qs = [t[0] for t in dec], [t[1] for t in dec]
    fns = {KRONSOLVE: lambda: solver.solve(B), STACKED: lambda: _stacked_numpy(B, lams, Qs)}
    X = bench(benchmark, fns, method, rounds=5)
    assert_allclose(X, fns[STACKED if method == KRONSOLVE else KRONSOLVE](), rtol=1e-9,
                    atol=1e-12)
    if method == KRONSOLVE:
        check_speedup(benchmark, fns[STACKED], 3.0, STACKED, timing_enabled,
                      candidate=fns[KRONSOLVE], rounds=5, min_time=0.0)
