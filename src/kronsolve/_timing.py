"""Timing helpers shared by the benchmark suite (benchmarks/) and ``kronsolve bench``."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np


def timeit_median(fn: Callable[[], object], *, min_time: float = 0.2, repeat: int = 7,
                  max_time: float = 10.0) -> float:
    """Median wall time of ``fn()`` in seconds (after one warm-up call).

    Each of ``repeat`` samples runs ``fn`` enough times to last ``min_time``
    (at least once); the total is capped near ``max_time``.
    """
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    inner = max(1, int(min_time / max(first, 1e-9)))
    repeat = max(1, min(repeat, int(max_time / max(first * inner, 1e-9))))
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        samples.append((time.perf_counter() - t0) / inner)
    return float(np.median(samples))


def gemm_rate(n: int = 2048) -> float:
    """float64 matrix-multiply rate of this machine (flop/s): ``A @ B`` at size n."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((n, n))
    B = rng.standard_normal((n, n))
    out = np.empty((n, n))
    t = timeit_median(lambda: np.matmul(A, B, out=out), min_time=0.3, repeat=5)
    return 2.0 * n**3 / t


def check_speedup(benchmark, baseline_s: float, min_speedup: float, label: str,
                  timing_enabled: bool) -> float | None:
    """Record ``baseline / candidate`` in ``extra_info`` and assert it reaches the goal."""
    if not timing_enabled or benchmark.stats is None:
        return None
    cand = benchmark.stats.stats.median
    ratio = baseline_s / cand
    benchmark.extra_info.update(
        {"baseline": label, "baseline_s": baseline_s, "speedup": ratio, "goal": min_speedup}
    )
    assert ratio >= min_speedup, (
        f"speed-up over {label} is {ratio:.3g}x (candidate {cand:.3g} s, baseline "
        f"{baseline_s:.3g} s), below the goal of {min_speedup}x"
    )
    return ratio


def check_rate_share(benchmark, flops: float, rate: float, min_share: float,
                     timing_enabled: bool) -> float | None:
    """Record the share of the machine's GEMM rate reached and assert the goal."""
    if not timing_enabled or benchmark.stats is None:
        return None
    share = flops / benchmark.stats.stats.median / rate
    benchmark.extra_info.update({"gflops": flops / benchmark.stats.stats.median / 1e9,
                                 "gemm_share": share, "goal_share": min_share})
    assert share >= min_share, (
        f"reached {share:.1%} of the machine's float64 GEMM rate "
        f"({rate / 1e9:.1f} GFLOP/s), below the goal of {min_share:.0%}"
    )
    return share
