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


def _calibrate(fn: Callable[[], object], min_time: float) -> int:
    """Calls of ``fn`` per sample so that a sample lasts about ``min_time`` (after a warm-up)."""
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    return max(1, int(min_time / max(first, 1e-9)))


def paired_times(cand: Callable[[], object], base: Callable[[], object], *, rounds: int = 9,
                 min_time: float = 0.05, warmup: float = 0.3) -> tuple[float, float, float]:
    """Time a candidate and its baseline alternately, ``rounds`` samples each.

    Returns ``(candidate, baseline, ratio)``: the median times in seconds and
    the median over the rounds of ``baseline / candidate``.  A round takes one
    sample of each (in alternating order), so that a change in the machine's
    load during the run moves both sides of a ratio alike.  Each sample is
    preceded by ``warmup`` seconds (at least one call) of untimed calls of the
    same function: the other function's after-effects (OpenBLAS threads that
    keep spinning for about 0.1-0.3 s after a call, a cache full of its data)
    are gone, and each is timed in its own steady state, as back-to-back
    timing would.  Measured: d = 2, n = 256 Sylvester solves against SciPy gave
    ratios of 4.9-6.4 with no warm-up, 11.0-11.4 with 0.1 s and 12.4-13.3 with
    0.3 s, against 12.4-18.3 timed back to back (one after the other).
    """
    inner_c = _calibrate(cand, min_time)
    inner_b = _calibrate(base, min_time)
    tc: list[float] = []
    tb: list[float] = []
    for r in range(rounds):
        for which in ((0, 1) if r % 2 == 0 else (1, 0)):
            fn, inner, dst = (cand, inner_c, tc) if which == 0 else (base, inner_b, tb)
            t0 = time.perf_counter()
            while True:  # untimed warm-up: at least one call, ``warmup`` seconds
                fn()
                if time.perf_counter() - t0 >= warmup:
                    break
            t0 = time.perf_counter()
            for _ in range(inner):
                fn()
            dst.append((time.perf_counter() - t0) / inner)
    ratios = [b / c for b, c in zip(tb, tc)]
    return float(np.median(tc)), float(np.median(tb)), float(np.median(ratios))


def gemm_call(n: int = 2048) -> tuple[Callable[[], object], float]:
    """``(fn, flops)``: a float64 ``A @ B`` at size n into a preallocated array."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((n, n))
    B = rng.standard_normal((n, n))
    out = np.empty((n, n))
    return (lambda: np.matmul(A, B, out=out)), 2.0 * n**3


def gemm_rate(n: int = 2048) -> float:
    """float64 matrix-multiply rate of this machine (flop/s): ``A @ B`` at size n."""
    fn, flops = gemm_call(n)
    return flops / timeit_median(fn, min_time=0.3, repeat=5)


def check_speedup(benchmark, baseline: float | Callable[[], object], min_speedup: float,
                  label: str, timing_enabled: bool, *,
                  candidate: Callable[[], object] | None = None, rounds: int = 9,
                  min_time: float = 0.05) -> float | None:
    """Record ``baseline / candidate`` in ``extra_info`` and assert it reaches the goal.

    ``baseline`` is a time in seconds, compared with the benchmark's median, or
    a function: then ``candidate`` and ``baseline`` are timed alternately (see
    :func:`paired_times`) and the ratio is the median of the rounds' ratios.
    """
    if not timing_enabled or benchmark.stats is None:
        return None
    if callable(baseline):
        if candidate is None:
            raise TypeError("a baseline function needs the candidate function to pair with")
        cand, baseline_s, ratio = paired_times(candidate, baseline, rounds=rounds,
                                               min_time=min_time)
        benchmark.extra_info.update({"candidate_s": cand, "paired_rounds": rounds})
    else:
        cand = benchmark.stats.stats.median
        baseline_s = baseline
        ratio = baseline_s / cand
    benchmark.extra_info.update(
        {"baseline": label, "baseline_s": baseline_s, "speedup": ratio, "goal": min_speedup}
    )
    assert ratio >= min_speedup, (
        f"speed-up over {label} is {ratio:.3g}x (candidate {cand:.3g} s, baseline "
        f"{baseline_s:.3g} s), below the goal of {min_speedup}x"
    )
    return ratio


def check_rate_share(benchmark, flops: float, rate: float | None, min_share: float,
                     timing_enabled: bool, *, candidate: Callable[[], object] | None = None,
                     rounds: int = 9) -> float | None:
    """Record the share of the machine's GEMM rate reached and assert the goal.

    With ``rate=None`` the ``candidate`` function is timed alternately with
    ``A @ B`` at n = 2048 (see :func:`paired_times`): the share is the median of
    the rounds' shares, and ``rate`` the GEMM's rate at its median time.
    """
    if not timing_enabled or benchmark.stats is None:
        return None
    if rate is None:
        if candidate is None:
            raise TypeError("rate=None needs the candidate function to pair with")
        gemm, gemm_flops = gemm_call()
        cand, t_gemm, ratio = paired_times(candidate, gemm, rounds=rounds)
        rate = gemm_flops / t_gemm
        share = ratio * flops / gemm_flops
        benchmark.extra_info.update({"candidate_s": cand, "paired_rounds": rounds})
    else:
        cand = benchmark.stats.stats.median
        share = flops / cand / rate
    benchmark.extra_info.update({"gflops": flops / cand / 1e9, "gemm_share": share,
                                 "goal_share": min_share, "gemm_gflops": rate / 1e9})
    assert share >= min_share, (
        f"reached {share:.1%} of the machine's float64 GEMM rate "
        f"({rate / 1e9:.1f} GFLOP/s), below the goal of {min_share:.0%}"
    )
    return share
