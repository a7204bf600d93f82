"""The lazy Kronecker product (issue 2): kronsolve and its baselines, one group per goal.

Run: ``pytest benchmarks/bench_kron.py --benchmark-only`` (add ``--goals`` to
assert the speed goals, each a ratio against its baseline in the same run).
"""

from __future__ import annotations

import numpy as np
import pytest
from _timing import bench, check_goal, check_rate_share, check_speedup
from numpy.testing import assert_allclose

import kronsolve as ks
from kronsolve._timing import gemm_call


def _factors(d, n, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((n, n)) for _ in range(d)], rng


def _einsum_d3(X, F):
    return np.einsum("abc,ia,jb,kc->ijk", X, *F, optimize="optimal").ravel()


@pytest.mark.parametrize("method", ["kronsolve", "np.kron build + matvec"])
@pytest.mark.benchmark(group="kron-d3-n25-vs-explicit")
def test_d3_n25_vs_explicit_kron(benchmark, method, timing_enabled):
    """The seed's cell: building np.kron(np.kron(A1, A2), A3) and multiplying (goal 5000x).

    Untimed (the normal test run) at n = 10: the explicit matrix at n = 25 takes 1.95 GB.
    """
    n = 25 if timing_enabled else 10
    F, rng = _factors(3, n)
    x = rng.standard_normal(n**3)
    K = ks.kron(*F)
    fns = {"kronsolve": lambda: K @ x,
           "np.kron build + matvec": lambda: np.kron(np.kron(F[0], F[1]), F[2]) @ x}
    y = bench(benchmark, fns, method, rounds=None if method == "kronsolve" else 3)
    assert_allclose(y, _einsum_d3(x.reshape(n, n, n), F), rtol=1e-10, atol=1e-10)
    if method == "kronsolve":
        check_speedup(benchmark, fns["np.kron build + matvec"], 5000, "np.kron build + matvec",
                      timing_enabled, candidate=fns["kronsolve"], rounds=3)


@pytest.mark.parametrize("method", ["kronsolve", "np.einsum(optimal)"])
@pytest.mark.benchmark(group="kron-d3-n25-vs-einsum")
def test_d3_n25_vs_einsum(benchmark, method, timing_enabled):
    F, rng = _factors(3, 25)
    X = rng.standard_normal((25, 25, 25))
    x = X.ravel()
    K = ks.kron(*F)
    fns = {"kronsolve": lambda: K @ x, "np.einsum(optimal)": lambda: _einsum_d3(X, F)}
    y = bench(benchmark, fns, method)
    other = fns["np.einsum(optimal)" if method == "kronsolve" else "kronsolve"]()
    assert_allclose(y, other, rtol=1e-10, atol=1e-10)
    if method == "kronsolve":
        check_speedup(benchmark, fns["np.einsum(optimal)"], 6, "np.einsum(optimize='optimal')",
                      timing_enabled, candidate=fns["kronsolve"])


@pytest.mark.parametrize("group", ["kron-gemm-share", "kron-64-rhs"])
def test_gemm_rate_reference(benchmark, group):
    """The rate the GEMM-share goals refer to: float64 ``A @ B`` at n = 2048."""
    benchmark.group = group
    fn, flops = gemm_call()
    out = bench(benchmark, {"A @ B": fn}, "A @ B")
    assert out.shape == (2048, 2048)
    if benchmark.stats is not None:
        benchmark.extra_info["gflops"] = flops / benchmark.stats.stats.median / 1e9


@pytest.mark.parametrize(("d", "n"), [(3, 64), (3, 96), (3, 128), (2, 256), (2, 512)])
@pytest.mark.benchmark(group="kron-gemm-share")
def test_share_of_gemm_rate(benchmark, d, n, timing_enabled):
    """Goal: 80% of the machine's GEMM rate (A @ B at n = 2048, its own benchmark in the group)."""
    F, rng = _factors(d, n)
    x = rng.standard_normal(n**d)
    K = ks.kron(*F)
    y = benchmark(lambda: K @ x)
    ref = ks.multi_mode_product(x.reshape((n,) * d)[..., None], F, modes=list(range(d)))
    assert_allclose(y, ref.ravel(), rtol=1e-10, atol=1e-9)
    # the machine's rate: A @ B at n = 2048, timed alternately with the candidate
    check_rate_share(benchmark, 2.0 * d * n ** (d + 1), None, 0.80, timing_enabled,
                     candidate=lambda: K @ x)


@pytest.mark.benchmark(group="kron-64-rhs")
def test_64_rhs_share(benchmark, timing_enabled):
    """Goal: 75% of the GEMM rate with 64 right-hand sides (d = 3, n = 32)."""
    d, n, k = 3, 32, 64
    F, rng = _factors(d, n)
    X = rng.standard_normal((n**d, k))
    K = ks.kron(*F)
    Y = benchmark(lambda: K @ X)
    assert_allclose(Y[:, 5], K @ X[:, 5], rtol=1e-10, atol=1e-9)
    check_rate_share(benchmark, 2.0 * d * n ** (d + 1) * k, None, 0.75, timing_enabled,
                     candidate=lambda: K @ X)


@pytest.mark.benchmark(group="kron-tiny")
def test_tiny_problem_latency(benchmark, timing_enabled):
    """d = 3, n = 4: per-call overhead, validation included (goal: under 15 us)."""
    F, rng = _factors(3, 4)
    x = rng.standard_normal(64)
    K = ks.kron(*F)
    y = benchmark(lambda: K @ x)
    assert_allclose(y, ks.kron_matvec(F, x))
    if timing_enabled:
        med = benchmark.stats.stats.median
        check_goal(benchmark, med < 15e-6, f"tiny matvec takes {med * 1e6:.1f} us, goal 15 us",
                   median_us=med * 1e6)
