"""The benchmark suite's timing helpers live in the package (``kronsolve bench`` uses them)."""

from kronsolve._timing import check_rate_share, check_speedup, paired_times, timeit_median

__all__ = ["check_rate_share", "check_speedup", "paired_times", "timeit_median"]
