"""The timing helpers behind the benchmark goals (``kronsolve._timing``), on a fake clock."""

from __future__ import annotations

import pytest

from kronsolve import _timing


class FakeClock:
    """``perf_counter`` that only moves when a timed function runs."""

    def __init__(self):
        self.now = 0.0
        self.calls: list[str] = []

    def perf_counter(self) -> float:
        return self.now

    def fn(self, name: str, cost: float):
        def run():
            self.calls.append(name)
            self.now += cost

        return run


@pytest.fixture
def clock(monkeypatch):
    c = FakeClock()
    monkeypatch.setattr(_timing.time, "perf_counter", c.perf_counter)
    return c


def test_paired_times_ratio_and_alternation(clock):
    cand, base = clock.fn("c", 1 / 16), clock.fn("b", 3 / 16)
    tc, tb, ratio = _timing.paired_times(cand, base, rounds=4, min_time=1 / 8, warmup=1 / 4)
    assert (tc, tb, ratio) == (1 / 16, 3 / 16, 3.0)
    # After one calibration call each, a round is a warm-up block (1/4 s) and a
    # timed block (1/8 s, at least one call) of each function, in the order
    # c b, b c, c b, b c: c 4 + 2 calls, b 2 + 1 calls a block.
    runs = []
    for name in clock.calls[2:]:
        if runs and runs[-1][0] == name:
            runs[-1][1] += 1
        else:
            runs.append([name, 1])
    assert runs == [["c", 6], ["b", 6], ["c", 12], ["b", 6], ["c", 6]]


def test_paired_times_warmup_runs_at_least_once(clock):
    cand, base = clock.fn("c", 1.0), clock.fn("b", 2.0)
    tc, tb, ratio = _timing.paired_times(cand, base, rounds=1, min_time=0.0, warmup=0.0)
    assert (tc, tb, ratio) == (1.0, 2.0, 2.0)
    assert clock.calls == ["c", "b", "c", "c", "b", "b"]


class FakeStats:
    def __init__(self, median):
        self.stats = type("S", (), {"median": median})()


class FakeBenchmark:
    """What check_speedup and check_rate_share read from pytest-benchmark's fixture."""

    def __init__(self, median=1.0):
        self.stats = FakeStats(median)
        self.extra_info = {}


def test_check_speedup_with_a_paired_baseline(clock):
    bench = FakeBenchmark()
    ratio = _timing.check_speedup(bench, clock.fn("b", 3 / 16), 2.5, "base", True,
                                  candidate=clock.fn("c", 1 / 16), rounds=3, min_time=1 / 8)
    assert ratio == 3.0
    assert bench.extra_info["speedup"] == 3.0 and bench.extra_info["baseline_s"] == 3 / 16
    assert bench.extra_info["candidate_s"] == 1 / 16
    with pytest.raises(AssertionError, match="below the goal of 4"):
        _timing.check_speedup(bench, clock.fn("b", 3 / 16), 4, "base", True,
                              candidate=clock.fn("c", 1 / 16), rounds=1)
    with pytest.raises(TypeError, match="candidate"):
        _timing.check_speedup(bench, clock.fn("b", 1.0), 1, "base", True)
    # a time in seconds is compared with the benchmark's own median
    assert _timing.check_speedup(FakeBenchmark(0.5), 1.0, 2, "base", True) == 2.0
    assert _timing.check_speedup(bench, 1.0, 2, "base", False) is None


def test_check_rate_share_paired_with_the_gemm(clock, monkeypatch):
    # the "GEMM" does 1024 flop in 1/16 s; the candidate 256 flop in 1/16 s: 25%
    monkeypatch.setattr(_timing, "gemm_call", lambda n=2048: (clock.fn("g", 1 / 16), 1024.0))
    bench = FakeBenchmark()
    share = _timing.check_rate_share(bench, 256.0, None, 0.2, True,
                                     candidate=clock.fn("c", 1 / 16), rounds=3)
    assert share == 0.25
    assert bench.extra_info["gemm_gflops"] == 1024 * 16 / 1e9
    with pytest.raises(AssertionError, match="below the goal of 30%"):
        _timing.check_rate_share(bench, 256.0, None, 0.3, True,
                                 candidate=clock.fn("c", 1 / 16), rounds=1)
