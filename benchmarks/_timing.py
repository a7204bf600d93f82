"""The benchmark suite's timing helpers.

The timing itself lives in the package (``kronsolve bench`` uses it too); here
the speed goals are asserted only when asked for (``pytest benchmarks
--benchmark-only --goals``, see ``conftest.py``).  Without ``--goals`` the
timed suite reports, each baseline as its own benchmark in the kronsolve
case's group, and stays green.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from kronsolve import _timing
from kronsolve._timing import paired_times, timeit_median

__all__ = ["GOALS", "bench", "check_goal", "check_rate_share", "check_speedup", "paired_times",
           "timeit_median"]

GOALS = {"on": False}  # set by conftest.py from --goals


def bench(benchmark, fns: Mapping[str, Callable[[], Any]], method: str, *,
          rounds: int | None = None) -> Any:
    """Benchmark ``fns[method]`` and return its result.

    pytest-benchmark calibrates the rounds itself; ``rounds`` (one call each,
    after one warm-up call) is for calls of a tenth of a second and more.
    """
    fn = fns[method]
    if rounds is None:
        return benchmark(fn)
    return benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=1)


def check_speedup(benchmark, baseline, min_speedup: float, label: str, timing_enabled: bool,
                  **kwargs) -> float | None:
    """With ``--goals``: :func:`kronsolve._timing.check_speedup` (the candidate and its
    baseline timed alternately, the goal asserted); without it, nothing."""
    if not GOALS["on"]:
        return None
    return _timing.check_speedup(benchmark, baseline, min_speedup, label, timing_enabled,
                                 **kwargs)


def check_rate_share(benchmark, flops: float, rate: float | None, min_share: float,
                     timing_enabled: bool, **kwargs) -> float | None:
    """With ``--goals``: :func:`kronsolve._timing.check_rate_share`; without it, the flop
    rate of the benchmark's median in ``extra_info`` only."""
    if not GOALS["on"]:
        if timing_enabled and benchmark.stats is not None:
            benchmark.extra_info["gflops"] = flops / benchmark.stats.stats.median / 1e9
        return None
    return _timing.check_rate_share(benchmark, flops, rate, min_share, timing_enabled, **kwargs)


def check_goal(benchmark, ok: bool, message: str, **figures: float) -> None:
    """A goal that is not a ratio (a latency): figures in ``extra_info``, asserted with
    ``--goals``."""
    benchmark.extra_info.update(figures)
    if GOALS["on"]:
        assert ok, message
