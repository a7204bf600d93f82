"""The fused small-factor kernels (``kronsolve._fused``) against ``np.kron``.

The fused scheme is forced (``_STRATEGY = "fused"``), which compiles the
kernel synchronously; the block size is lowered in some tests so that small
tensors take the two-pass split and partial column tiles.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

import kronsolve as ks
import kronsolve._backends._transform as tr
import kronsolve._backends.numpy as mp
from kronsolve import _fused

from . import naive

pytestmark = pytest.mark.skipif(not _fused._get_kernel(), reason="Numba is not available")

TOL = {np.float32: 2e-5, np.float64: 1e-13, np.complex64: 2e-5, np.complex128: 1e-13}


@pytest.fixture
def forced(monkeypatch):
    """Force the fused scheme, with empty plan caches (so each test plans afresh)."""
    monkeypatch.setattr(tr, "_STRATEGY", ["fused"])
    monkeypatch.setattr(mp, "_FUSED_PLANS", {})
    calls = []
    real = _fused.run
    monkeypatch.setattr(_fused, "run", lambda *a, **k: calls.append(1) or real(*a, **k))
    return calls


def rand(shape, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        x = x + 1j * rng.standard_normal(shape)
    return x.astype(dtype)


def check(F, x, dtype, forced_calls):
    K, D = ks.kron(*F), naive.kron(*F)
    y = K @ x
    assert forced_calls, "the fused kernel did not run"
    assert y.dtype == dtype
    ref = D.astype(np.complex128 if np.dtype(dtype).kind == "c" else np.float64) @ x
    scale = np.abs(D).max() * np.abs(x).max() * D.shape[1]
    assert np.abs(y - ref).max() <= TOL[dtype.type] * scale


SHAPES = {
    1: [(5, 5)],
    2: [(3, 3), (9, 9)],
    3: [(5, 5), (7, 7), (3, 3)],
    4: [(2, 2), (3, 3), (5, 5), (4, 4)],
    5: [(3, 3), (2, 2), (3, 3), (2, 2), (5, 5)],
    6: [(2, 2), (3, 3), (2, 2), (3, 3), (2, 2), (3, 3)],
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex64, np.complex128])
@pytest.mark.parametrize("d", sorted(SHAPES))
@pytest.mark.parametrize("cols", [None, 3, 17])
@pytest.mark.parametrize("two_pass", [False, True], ids=["one-pass", "two-pass"])
def test_every_d_and_dtype_matches_np_kron(d, dtype, cols, two_pass, forced, monkeypatch):
    F = [rand(s, dtype, seed=i) for i, s in enumerate(SHAPES[d])]
    N = int(np.prod([s[1] for s in SHAPES[d]]))
    if two_pass and d > 1:  # tiny blocks: two passes, partial and strided column tiles
        monkeypatch.setattr(_fused, "_MIN_RUN", 8)
        ns = tuple(s[1] for s in SHAPES[d])
        for block in range(8, 2048):
            monkeypatch.setattr(_fused, "_BLOCK_BYTES", block * np.dtype(dtype).itemsize)
            p = _fused.fused_plan(1, ns, ns, cols or 1, np.dtype(dtype).itemsize, force=True)
            if p is not None and len(p.passes) == 2:
                break
        assert p is not None and len(p.passes) == 2
    x = rand(N if cols is None else (N, cols), dtype, seed=9)
    check(F, x, np.dtype(dtype), forced)


@pytest.mark.parametrize("shapes", [
    [(3, 5), (4, 2), (6, 3)],  # rectangular, growing and shrinking
    [(9, 2), (2, 9)],
    [(1, 4), (5, 1), (3, 3)],  # unit sizes
    [(11, 13), (13, 11)],  # sizes off the 4 × 8 tiles
], ids=str)
@pytest.mark.parametrize("block", [None, 160])
def test_rectangular_and_odd_sizes(shapes, block, forced, monkeypatch):
    if block:
        monkeypatch.setattr(_fused, "_BLOCK_BYTES", block * 8)
        monkeypatch.setattr(_fused, "_MIN_RUN", 8)
    F = [rand(s, seed=i) for i, s in enumerate(shapes)]
    N = int(np.prod([s[1] for s in shapes]))
    for x in (rand(N), rand((N, 5)), rand((2, N, 9)), rand((3, 2, N, 1))):
        check(F, x, np.dtype(np.float64), forced)


def test_strided_and_read_only_inputs(forced):
    F = [rand((4, 4), seed=1), rand((6, 6), seed=2)]
    D = naive.kron(*F)
    X = rand((48, 10))
    for x in (X[::2, ::3], X[:24].T.copy().T, np.asfortranarray(X[:24])):
        assert_allclose(ks.kron(*F) @ x, D @ x, rtol=1e-12, atol=1e-12)
    ro = X[:24].copy()
    ro.flags.writeable = False
    assert_allclose(ks.kron(*F) @ ro, D @ ro, rtol=1e-12, atol=1e-12)
    assert not ro.flags.writeable
    assert forced


def test_caller_arrays_are_not_modified(forced):
    F = [rand((5, 5), seed=1), rand((5, 5), seed=2), rand((5, 5), seed=3)]
    X = rand((125, 4))
    keep = [A.copy() for A in F], X.copy()
    ks.kron(*F) @ X
    for A, A0 in zip(F, keep[0]):
        assert np.array_equal(A, A0)
    assert np.array_equal(X, keep[1])


@pytest.mark.parametrize("modes", [(1, 2), (0,), (2, 3), (0, 1, 2, 3)])
def test_multi_mode_product_on_some_modes(modes, forced):
    X = rand((3, 4, 5, 6))
    mats = [rand((X.shape[k] + 1, X.shape[k]), seed=k) for k in modes]
    ref = X
    for A, k in zip(mats, modes):
        ref = naive.mode_product(ref, A, k)
    assert_allclose(ks.multi_mode_product(X, mats, modes), ref, rtol=1e-12, atol=1e-12)
    assert forced


def test_threads_split_the_blocks_and_agree():
    F = [rand((6, 6), seed=k) for k in range(4)]
    X = rand((6 ** 4, 40))
    p = _fused.fused_plan(1, (6,) * 4, (6,) * 4, 40, 8, force=True)
    assert _fused.ready(np.float64, wait=True)
    P = _fused.pack(F, np.float64)
    one = _fused.run(X, P, p)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(3) as ex:
        many = _fused.run(X, P, p._replace(flops=1e12), threads=3, submit=ex.submit)
    assert np.array_equal(one, many)
    assert_allclose(one, (naive.kron(*F) @ X).ravel(), rtol=1e-12, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 7), st.integers(1, 7)), min_size=1, max_size=4),
       st.sampled_from([None, 1, 2, 9]), st.sampled_from([None, 40, 200]))
def test_hypothesis_matches_np_kron(shapes, cols, block):
    with pytest.MonkeyPatch.context() as mpatch:
        mpatch.setattr(tr, "_STRATEGY", ["fused"])
        mpatch.setattr(mp, "_FUSED_PLANS", {})
        if block:
            mpatch.setattr(_fused, "_BLOCK_BYTES", block * 8)
            mpatch.setattr(_fused, "_MIN_RUN", 8)
        F = [rand(s, seed=i) for i, s in enumerate(shapes)]
        N = int(np.prod([s[1] for s in shapes]))
        x = rand(N if cols is None else (N, cols), seed=5)
        D = naive.kron(*F)
        assert_allclose(ks.kron(*F) @ x, D @ x, rtol=1e-11, atol=1e-11)


def test_plan_rules():
    # large factors stay with the GEMM schemes; no plan for empty sizes
    assert _fused.fused_plan(1, (256, 256), (256, 256), 1, 8) is None
    assert _fused.fused_plan(1, (0, 4), (4, 4), 1, 8, force=True) is None
    # one pass while the tensor fits a block; two passes beyond
    assert len(_fused.fused_plan(1, (16,) * 3, (16,) * 3, 1, 8, force=True).passes) == 1
    p = _fused.fused_plan(1, (8,) * 6, (8,) * 6, 1, 8, force=True)
    assert len(p.passes) == 2 and p.tmp == 8 ** 6


def test_gemm_schemes_while_the_kernel_is_unavailable(monkeypatch):
    """Without a compiled kernel (Numba missing, or compiling) the GEMM schemes run."""
    monkeypatch.setattr(mp, "_FUSED_PLANS", {})
    monkeypatch.setattr(_fused, "_compiled", {})
    monkeypatch.setattr(_fused, "_state", {"kernel": False})
    monkeypatch.setattr(_fused, "run", lambda *a, **k: pytest.fail("fused kernel used"))
    F = [rand((8, 8), seed=k) for k in range(3)]
    x = rand(512)
    assert_allclose(ks.kron(*F) @ x, naive.kron(*F) @ x, rtol=1e-12, atol=1e-12)


def test_compiles_in_the_background(monkeypatch):
    """``ready`` answers at once and compiles in a thread; GEMM runs meanwhile."""
    import threading

    monkeypatch.setattr(_fused, "_compiled", {})
    gate = threading.Event()
    done = []
    monkeypatch.setattr(_fused, "_compile_for",
                        lambda dt, kind: gate.wait(10) and (
                            _fused._compiled.__setitem__((dt.name, kind), True),
                            done.append(dt.name)))
    assert _fused.ready(np.float64) is False
    assert _fused._compiled["float64", 0] == "compiling"
    assert _fused.ready(np.float64) is False  # no second compilation
    gate.set()
    for t in threading.enumerate():
        if t.name == "kronsolve-compile":
            t.join(10)
    assert done == ["float64"] and _fused.ready(np.float64) is True
    assert _fused.ready(np.int64) is False  # only float and complex kernels


@pytest.mark.parametrize("ns", [(5,), (4, 7), (6, 5, 3), (3, 2, 4, 2), (2, 3, 2, 2, 3)], ids=str)
@pytest.mark.parametrize("batch", [(), (3,), (2, 2)], ids=str)
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.complex128])
def test_solver_transforms_on_the_per_item_kernel(ns, batch, dtype, forced, monkeypatch):
    """``KronSumSolver.solve`` through the kernel that transforms, divides and
    transforms back each problem in cache, against dense solves."""
    calls = []
    real = _fused.run_items
    monkeypatch.setattr(_fused, "run_items", lambda *a, **k: calls.append(1) or real(*a, **k))
    rng = np.random.default_rng(len(ns))
    mats = []
    for n in ns:
        A = rand((n, n), dtype, seed=n)
        mats.append(A @ A.conj().T + n * np.eye(n, dtype=dtype))
    B = rand(batch + ns, dtype, seed=3)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    for shift in (0.0, 0.5, 0.25 + 1j):
        X = ks.KronSumSolver(mats).solve(B, shift=shift)
        ref = naive.solve_kronsum(B.astype(complex), mats, shift=shift)
        assert_allclose(X, ref, rtol=tol, atol=tol)
    Bw = B.copy()
    X = ks.KronSumSolver(mats).solve(Bw, overwrite_b=True)
    assert_allclose(X, naive.solve_kronsum(B, mats), rtol=tol, atol=tol)
    assert calls
    del rng


def test_eig_route_on_the_per_item_kernel(forced):
    """Non-symmetric factors by their eigenvectors (method="eig"): complex transforms."""
    rng = np.random.default_rng(4)
    mats = [rng.standard_normal((n, n)) + 3 * n * np.eye(n) for n in (4, 5, 3)]
    B = rng.standard_normal((4, 5, 3))
    X = ks.solve_kronsum(B, mats, method="eig")
    assert_allclose(X, naive.solve_kronsum(B, mats), rtol=1e-10, atol=1e-12)


def test_unwritable_cache_folder(tmp_path):
    """No writable cache folder: the kernels compile without a cache and run; and
    importing kronsolve compiles (and imports) nothing."""
    import os
    import subprocess
    import sys

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code = (
        "import sys\nimport numpy as np\nimport kronsolve as ks\n"
        "assert 'numba' not in sys.modules\n"
        "assert ks.warm_up(('float64',), solves=False)\n"
        "F = [np.arange(9.0).reshape(3, 3) + k for k in range(3)]\n"
        "x = np.arange(27.0)\n"
        "y = ks.kron(*F) @ x\n"
        "assert np.allclose(y, np.kron(np.kron(F[0], F[1]), F[2]) @ x)\n"
        "from kronsolve import _fused\n"
        "assert _fused._compiled[('float64', 0)] is True\n"
        "print('ok')\n")
    env = dict(os.environ, NUMBA_CACHE_DIR=str(blocker / "cache"),
               NUMBA_CACHE_LOCATOR_CLASSES="UserProvidedCacheLocator")
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "ok" in r.stdout


def test_cache_folder_turns_unwritable(monkeypatch):
    """Saving to the cache fails at compile time: compiled again without the cache."""
    calls = []

    class Kernel:
        def __init__(self, fail):
            self.fail = fail

        def compile(self, sig):
            calls.append(self.fail)
            if self.fail:
                raise PermissionError("read-only cache folder")

    monkeypatch.setattr(_fused, "_compiled", {})
    monkeypatch.setitem(_fused._state, "kernel", (Kernel(True), Kernel(True)))
    monkeypatch.setattr(_fused, "_build", lambda cache=None: (Kernel(False), Kernel(False)))
    assert _fused.ready(np.float64, wait=True) is True
    assert calls == [True, False]


def test_an_operator_switches_to_the_kernel_once_compiled(monkeypatch):
    """Products made while the kernel compiles take the GEMM schemes, and the same
    operator takes the kernel once it is ready (its memo keeps no GEMM plan)."""
    monkeypatch.setattr(mp, "_FUSED_PLANS", {})
    state = {"ready": False}
    real_ready = _fused.ready
    monkeypatch.setattr(_fused, "ready",
                        lambda *a, **k: state["ready"] and real_ready(*a, **k))
    calls = []
    real_run = _fused.run
    monkeypatch.setattr(_fused, "run", lambda *a, **k: calls.append(1) or real_run(*a, **k))
    F = [rand((16, 16), seed=k) for k in range(3)]
    K = ks.kron(*F)
    x = rand(16 ** 3)
    y0 = K @ x
    assert not calls
    state["ready"] = True
    y1 = K @ x
    assert calls
    assert_allclose(y1, y0, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", ["off", "sync", "bogus"])
def test_kronsolve_fused_environment_variable(mode):
    """KRONSOLVE_FUSED=off never uses the kernels; sync compiles on first use (the
    first product already on the kernel); another value is a clear error."""
    import os
    import subprocess
    import sys

    code = (
        "import numpy as np\nimport kronsolve as ks\nfrom kronsolve import _fused\n"
        "calls = []\nreal = _fused.run\n"
        "_fused.run = lambda *a, **k: calls.append(1) or real(*a, **k)\n"
        "F = [np.eye(4) + k for k in range(3)]\nx = np.arange(64.0)\n"
        "y = ks.kron(*F) @ x\n"
        "assert np.allclose(y, np.kron(np.kron(F[0], F[1]), F[2]) @ x)\n"
        "print('calls', len(calls), 'warm', ks.warm_up(solves=False))\n")
    env = dict(os.environ, KRONSOLVE_FUSED=mode)
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=600)
    if mode == "bogus":
        assert r.returncode != 0 and "KRONSOLVE_FUSED must be one of" in r.stderr
        return
    assert r.returncode == 0, r.stderr[-2000:]
    expect = {"off": "calls 0 warm False", "sync": "calls 1 warm True"}[mode]
    assert expect in r.stdout, r.stdout
