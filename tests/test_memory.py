"""Memory kept after calls return: bounded by the workspace limit, whatever the threads.

Each case runs in a fresh interpreter and measures with ``tracemalloc`` (NumPy
reports its array allocations to it): what is still allocated once every call
has returned, while the threads that made the calls are still alive (as a
server's pool would be).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import kronsolve as ks

SCRIPT = textwrap.dedent(
    """
    import sys, tracemalloc
    from concurrent.futures import ThreadPoolExecutor
    import numpy as np
    import kronsolve as ks

    limit = int(sys.argv[1])
    if limit >= 0:
        ks.set_workspace_limit(limit)
    n = 128
    rng = np.random.default_rng(0)
    A = [rng.standard_normal((n, n)) for _ in range(3)]
    S = [a @ a.T + n * np.eye(n) for a in A]
    x = rng.standard_normal(n ** 3)          # 16 MiB
    B = x.reshape(n, n, n)
    K = ks.kron(*A)
    solver = ks.KronSumSolver(S)
    pool = ThreadPoolExecutor(4)
    list(pool.map(lambda i: None, range(4)))  # the threads exist before measuring
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]

    def work(i):
        y = K @ x
        X = solver.solve(B)
        return float(y[0] + X.flat[0])

    list(pool.map(work, range(8)))
    held, peak = tracemalloc.get_traced_memory()
    print(held - base, peak - base)
    """
)


def _held(limit: int) -> tuple[int, int]:
    run = subprocess.run([sys.executable, "-c", SCRIPT, str(limit)], capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    held, peak = (int(v) for v in run.stdout.split())
    return held, peak


def test_memory_kept_after_calls_is_bounded_by_the_default_limit():
    held, peak = _held(-1)
    # four threads, each with products and solves of a 16 MiB tensor: without the
    # bound each would keep two or three tensor-sized scratch arrays (128+ MiB)
    assert held <= (64 << 20) + (1 << 20), held / 2**20


def test_memory_kept_after_calls_with_limit_zero():
    held, peak = _held(0)
    assert held <= 1 << 20, held / 2**20


def test_set_workspace_limit_validates_and_returns_previous():
    old = ks.set_workspace_limit(1 << 20)
    try:
        assert ks.set_workspace_limit(1 << 20) == 1 << 20
        with pytest.raises(ValueError, match="nbytes must be non-negative"):
            ks.set_workspace_limit(-1)
        with pytest.raises(TypeError, match="nbytes must be an integer"):
            ks.set_workspace_limit(1.5)
        # results stay right with no workspace kept at all
        ks.set_workspace_limit(0)
        rng = np.random.default_rng(1)
        A = [rng.standard_normal((5, 5)) for _ in range(3)]
        x = rng.standard_normal(125)
        np.testing.assert_allclose(ks.kron(*A) @ x, np.kron(np.kron(A[0], A[1]), A[2]) @ x)
    finally:
        ks.set_workspace_limit(old)


PEAK = textwrap.dedent(
    """
    import tracemalloc
    import numpy as np
    import kronsolve as ks

    n = 128
    rng = np.random.default_rng(0)
    A = [rng.standard_normal((n, n)) for _ in range(3)]
    x = rng.standard_normal(n ** 3)          # 16 MiB
    K = ks.kron(*A)
    ks.set_workspace_limit(1 << 30)          # scratch arrays kept: they show in the peak
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    y = K @ x
    print(tracemalloc.get_traced_memory()[1] - base)
    """
)


def test_product_peak_is_result_plus_one_scratch_array():
    run = subprocess.run([sys.executable, "-c", PEAK], capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    peak = int(run.stdout)
    vec = 128 ** 3 * 8
    assert peak <= 2 * vec + (1 << 20), peak / vec


def test_problem_too_large_for_memory_raises_before_allocating(monkeypatch):
    from kronsolve._backends import numpy as npb

    monkeypatch.setattr(npb, "_available_memory", lambda: 100 << 20)
    monkeypatch.setattr(npb, "_MEMORY_CHECK_MIN", 1 << 20)
    rng = np.random.default_rng(2)
    n = 64
    A = rng.standard_normal((n, n))
    S = A @ A.T + n * np.eye(n)
    B = np.ones((n, n, n))  # 2 MiB: a solve needs 4 MiB, under the 100 MiB
    ks.solve_kronsum(B, [S, S, S])
    B = np.ones((4, 1, 1, 1)) * np.ones((n, n, n))  # 8 MiB, fine
    ks.solve_kronsum(B, [S, S, S])
    monkeypatch.setattr(npb, "_available_memory", lambda: 3 << 20)
    with pytest.raises(MemoryError, match=r"solve of a right-hand side of shape \(64, 64, 64\) "
                       r"needs 4\.0 MiB.*only 3\.0 MiB of memory are available"):
        ks.solve_kronsum(np.ones((n, n, n)), [S, S, S])
    with pytest.raises(MemoryError, match=r"product of a tensor of shape \(64, 64, 64\)"):
        ks.multi_mode_product(np.ones((n, n, n)), [A, A, A])


SOLVE = textwrap.dedent(
    """
    import gc, resource, sys, tracemalloc
    import numpy as np
    import kronsolve as ks

    kind, overwrite = sys.argv[1], sys.argv[2] == "1"
    rng = np.random.default_rng(0)

    def factors(n):
        if kind == "symmetric":
            A = [rng.standard_normal((n, n)) for _ in range(3)]
            return [a @ a.T + n * np.eye(n) for a in A]
        return [rng.standard_normal((n, n)) + 3 * np.sqrt(n) * np.eye(n) for _ in range(3)]

    ks.KronSumSolver(factors(24)).solve(np.ones((24, 24, 24)))  # compile, load, warm up
    ks.set_workspace_limit(0)                # no scratch arrays kept: all in the peak
    n = 128
    solver = ks.KronSumSolver(factors(n))
    B = rng.standard_normal((n, n, n))       # 16 MiB
    gc.collect()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    X = solver.solve(B, overwrite_b=overwrite)
    peak = tracemalloc.get_traced_memory()[1] - base
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(peak, rss1 - rss0)
    """
)


@pytest.mark.parametrize("kind, overwrite, bound", [
    ("symmetric", False, 2.0), ("symmetric", True, 1.0),
    ("nonsymmetric", False, 2.5), ("nonsymmetric", True, 1.5)])
def test_solve_peak_within_documented_bound(kind, overwrite, bound):
    run = subprocess.run([sys.executable, "-c", SOLVE, kind, "1" if overwrite else "0"],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    peak, rss = (int(v) for v in run.stdout.split())
    vec = 128 ** 3 * 8
    assert peak / vec <= bound + 0.05, peak / vec
    # and the process's peak resident memory (its high-water mark) grew as much at most
    assert rss / vec <= bound + 0.25, rss / vec
