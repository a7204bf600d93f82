"""Speed goals of the lazy Kronecker product (issue 2), each against a baseline in the same run.

Run: ``pytest benchmarks/bench_kron.py --benchmark-only``.
"""

from __future__ import annotations

import numpy as np
import pytest
from _timing import check_rate_share, check_speedup
from numpy.testing import assert_allclose

import kronsolve as ks


def _factors(d, n, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((n, n)) for _ in range(d)], rng


@pytest.mark.benchmark(group="kron-d3-n25-vs-explicit")
def test_d3_n25_vs_explicit_kron(benchmark, timing_enabled):
    """The seed's cell: building np.kron(np.kron(A1, A2), A3) and multiplying."""
    F, rng = _factors(3, 25)
    x = rng.standard_normal(25**3)
    K = ks.kron(*F)
    y = benchmark(lambda: K @ x)
    Y = np.einsum("abc,ia,jb,kc->ijk", x.reshape(25, 25, 25), *F, optimize="optimal")
    assert_allclose(y, Y.ravel(), rtol=1e-10, atol=1e-10)
    check_speedup(benchmark, lambda: np.kron(np.kron(F[0], F[1]), F[2]) @ x, 5000,
                  "np.kron build + matvec", timing_enabled, candidate=lambda: K @ x, rounds=3)


@pytest.mark.benchmark(group="kron-d3-n25-vs-einsum")
def test_d3_n25_vs_einsum(benchmark, timing_enabled):
    F, rng = _factors(3, 25)
    X = rng.standard_normal((25, 25, 25))
    x = X.ravel()
    K = ks.kron(*F)
    y = benchmark(lambda: K @ x)
    einsum = lambda: np.einsum("abc,ia,jb,kc->ijk", X, *F, optimize="optimal")  # noqa: E731
    assert_allclose(y, einsum().ravel(), rtol=1e-10, atol=1e-10)
    check_speedup(benchmark, einsum, 6, "np.einsum(optimize='optimal')", timing_enabled,
                  candidate=lambda: K @ x)


@pytest.mark.parametrize(("d", "n"), [(3, 64), (3, 96), (3, 128), (2, 256), (2, 512)])
@pytest.mark.benchmark(group="kron-gemm-share")
def test_share_of_gemm_rate(benchmark, d, n, timing_enabled):
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
        benchmark.extra_info["median_us"] = med * 1e6
        assert med < 15e-6, f"tiny matvec takes {med * 1e6:.1f} us, goal 15 us"
