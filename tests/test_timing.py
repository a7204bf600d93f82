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
