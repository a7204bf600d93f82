"""Thread safety: many threads calling kronsolve at once, under each Numba threading layer.

Each layer runs in a fresh interpreter (the layer is chosen when Numba first
launches a parallel region).  Eight threads make a few hundred mixed calls
(products of several shapes and dtypes, solves, shuffles, rearrangements,
including the parallel copy kernel) and every result must equal the serial one
bit for bit.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import sys
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    import kronsolve as ks

    # the fused kernels from the first call on: results switch from the GEMM
    # schemes' to the kernels' (equal to roundoff) once they are compiled
    ks.warm_up(("float64", "float32"))
    rng = np.random.default_rng(0)
    A = [rng.standard_normal((n, n)) for n in (7, 9, 11)]
    Af = [a.astype(np.float32) for a in A]
    S = [a @ a.T + 10 * np.eye(a.shape[0]) for a in A]
    G = [a + 5 * np.eye(a.shape[0]) for a in A]
    X = rng.standard_normal((7, 9, 11))
    M = rng.standard_normal((400, 600))
    big = np.arange(240000.0).reshape(120000, 2)
    jobs = [
        lambda: ks.kron(*A) @ X.ravel(),
        lambda: ks.kron(*Af) @ X.ravel().astype(np.float32),
        lambda: ks.multi_mode_product(X, A, transpose=True),
        lambda: ks.solve_kronsum(X, S),
        lambda: ks.solve_kronsum(X, G),
        lambda: ks.solve_sylvester3d(X[:7, :7, :7], S[0]),
        lambda: ks.shuffle(big, 300, 400),
        lambda: ks.shuffle2(M[:400, :400], (20, 20), (20, 20)),
        lambda: ks.rearrange(M[:400, :400], (20, 20), (20, 20)),
    ]
    serial = [job() for job in jobs]
    with ThreadPoolExecutor(8) as ex:
        results = list(ex.map(lambda i: (i % len(jobs), jobs[i % len(jobs)]()), range(270)))
    bad = [i for i, r in results if not np.array_equal(r, serial[i])]
    import numba
    print(numba.threading_layer(), len(results), "mismatches", sorted(set(bad)))
    sys.exit(1 if bad else 0)
    """
)


@pytest.mark.parametrize("layer", ["workqueue", "omp", "tbb"])
def test_many_threads_under_each_threading_layer(layer):
    env = dict(os.environ, NUMBA_THREADING_LAYER=layer)
    probe = subprocess.run(
        [sys.executable, "-c",
         "import numba, numpy as np\n"
         "@numba.njit(parallel=True)\n"
         "def f(a):\n"
         "    for i in numba.prange(a.size): a[i] = i\n"
         "f(np.empty(10)); print(numba.threading_layer())"],
        env=env, capture_output=True, text=True, timeout=300)
    if probe.returncode != 0:
        pytest.skip(f"the {layer} threading layer is not installed here")
    run = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, (run.stdout, run.stderr[-2000:])
    assert run.stdout.startswith(layer), run.stdout
    assert "mismatches []" in run.stdout


# ------------------------------------------------------------- thread policy


def test_set_num_threads_validates_and_returns_previous():
    import kronsolve as ks

    old = ks.set_num_threads(2)
    try:
        assert ks.set_num_threads(1) == 2
        with pytest.raises(ValueError, match="n must be >= 1 or None"):
            ks.set_num_threads(0)
        with pytest.raises(TypeError, match="n must be a positive int or None"):
            ks.set_num_threads(1.5)
        assert ks.set_num_threads(None) == 1
    finally:
        ks.set_num_threads(old)


def test_policy_leaves_busy_cores_out(monkeypatch):
    """The cores taken by other processes (at this look and the one before) are not used."""
    from kronsolve._backends import numpy as npb

    monkeypatch.setattr(npb, "_ncpu", lambda: 4)
    monkeypatch.setitem(npb._POLICY, "user", None)
    monkeypatch.setitem(npb._POLICY, "env", True)
    readings = iter([0, 2, 0, 0, 7])
    monkeypatch.setattr(npb, "_running_elsewhere", lambda: next(readings))
    got = []
    for _ in range(5):
        monkeypatch.setitem(npb._POLICY, "checked", -1.0)  # look again
        got.append(npb._free_cores())
    # first look: no history, all cores; then the smaller of this look and the last
    assert got == [4, 4, 4, 4, 4]
    readings = iter([0, 2, 3, 3, 0])
    got = []
    for _ in range(5):
        monkeypatch.setitem(npb._POLICY, "checked", -1.0)
        got.append(npb._free_cores())
    assert got == [4, 4, 2, 1, 4]
    # small calls are left alone; large ones limited to the free cores
    monkeypatch.setitem(npb._POLICY, "free", 1)
    monkeypatch.setitem(npb._POLICY, "checked", 1e300)
    import contextlib

    assert isinstance(npb._call_threads(1e3), contextlib.nullcontext)
    assert not isinstance(npb._call_threads(1e9), contextlib.nullcontext)
    monkeypatch.setitem(npb._POLICY, "free", 4)
    assert isinstance(npb._call_threads(1e9), contextlib.nullcontext)


def test_num_threads_environment_variable():
    env = dict(os.environ, KRONSOLVE_NUM_THREADS="1")
    run = subprocess.run([sys.executable, "-c",
                          "import kronsolve as ks; print(ks.set_num_threads(None))"],
                         env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "1"
