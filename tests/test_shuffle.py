"""Perfect shuffles, commutation matrices and the Numba/NumPy copy kernels."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import naive
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kronsolve as ks
from kronsolve import _kernels

SETTINGS = settings(max_examples=40, deadline=None)


# The seed notebook's formula (cell 132) and the loop references live in naive.py.


def backends():
    return pytest.mark.parametrize("backend", ["numpy", "numba"])


DTYPES = [
    np.float64, np.float32, np.float16, np.int8, np.uint16, np.int64, np.bool_,
    np.complex64, np.complex128, "<U3", "S5", "datetime64[s]", object,
    np.dtype([("a", "u1"), ("b", "<u2")]),  # 3-byte records: NumPy path only
]


def sample(shape, dtype, seed=0):
    """A random array of any dtype (values distinct enough to catch misplacements)."""
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    vals = rng.integers(0, 1000, size=n)
    dt = np.dtype(dtype)
    if dt.kind in "fc":
        x = rng.standard_normal(n).astype(dt)
        if dt.kind == "c":
            x = x + 1j * rng.standard_normal(n).astype(dt)
    elif dt.kind == "b":
        x = vals % 2 == 0
    elif dt.kind in "iu":
        x = (vals % 100).astype(dt)
    elif dt.kind in "US":
        x = np.array([str(v) for v in vals], dtype=dt)
    elif dt.kind == "M":
        x = vals.astype(dt)
    elif dt.kind == "O":
        x = np.empty(n, dtype=object)
        x[:] = [("obj", int(v)) for v in vals]
    else:
        x = np.zeros(n, dtype=dt)
        x["a"] = vals % 256
        x["b"] = vals
    return x.reshape(shape)


# --- perfect_shuffle / commutation_matrix ------------------------------------------
@pytest.mark.parametrize("p", range(0, 7))
@pytest.mark.parametrize("r", range(0, 7))
def test_perfect_shuffle_matches_seed(p, r):
    got = ks.perfect_shuffle(p, r)
    assert got.dtype.kind == "i"
    assert got.shape == (p * r,)
    np.testing.assert_array_equal(got, naive.seed_perfect_shuffle(p, r))


@pytest.mark.parametrize("p, r", [(1, 1), (3, 2), (2, 3), (5, 7), (16, 1), (1, 9)])
def test_perfect_shuffle_inverse_and_kron(p, r):
    P, Q = ks.perfect_shuffle(p, r), ks.perfect_shuffle(r, p)
    np.testing.assert_array_equal(P[Q], np.arange(p * r))
    rng = np.random.default_rng(p * 10 + r)
    B = rng.standard_normal((p, 3))
    C = rng.standard_normal((r, 2))
    rows, cols = P, ks.perfect_shuffle(3, 2)
    np.testing.assert_array_equal(np.kron(B, C)[rows, :][:, cols], np.kron(C, B))


@pytest.mark.parametrize("m, n", [(1, 1), (2, 3), (3, 2), (4, 4), (1, 5), (7, 1), (5, 3)])
def test_commutation_matrix(m, n):
    rng = np.random.default_rng(m * 7 + n)
    A = rng.standard_normal((m, n))
    K = ks.commutation_matrix(m, n)
    assert K.shape == (m * n, m * n)
    assert K.nnz == m * n
    np.testing.assert_array_equal(K @ A.flatten("F"), A.T.flatten("F"))
    # K_{m,n}^T == K_{n,m} == K_{m,n}^{-1}
    np.testing.assert_array_equal(K.T.toarray(), ks.commutation_matrix(n, m).toarray())
    np.testing.assert_array_equal((K.T @ K).toarray(), np.eye(m * n))
    # the permutation matrix of perfect_shuffle(n, m)
    np.testing.assert_array_equal(K.toarray(), np.eye(m * n)[ks.perfect_shuffle(n, m)])


@pytest.mark.parametrize("m1, n1, m2, n2", [(2, 3, 4, 1), (3, 2, 2, 2), (1, 4, 3, 5)])
def test_commutation_matrix_swaps_kron(m1, n1, m2, n2):
    rng = np.random.default_rng(0)
    B = rng.standard_normal((m1, n1))
    C = rng.standard_normal((m2, n2))
    K1, K2 = ks.commutation_matrix(m1, m2), ks.commutation_matrix(n1, n2)
    np.testing.assert_allclose(K1.T @ np.kron(B, C) @ K2, np.kron(C, B), rtol=0, atol=0)


def test_commutation_matrix_dtype_and_empty():
    assert ks.commutation_matrix(2, 2, dtype=np.int8).dtype == np.int8
    assert ks.commutation_matrix(0, 3).shape == (0, 0)


# --- shuffle -----------------------------------------------------------------------
@backends()
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_shuffle_dtypes(backend, dtype):
    x = sample((6, 35), dtype)
    with _kernels._use_backend(backend):
        got = ks.shuffle(x, 5, 7, axis=1)
        got0 = ks.shuffle(x, 3, 2, axis=0)
    assert got.dtype == x.dtype
    np.testing.assert_array_equal(got, x[:, naive.seed_perfect_shuffle(5, 7)])
    np.testing.assert_array_equal(got0, x[naive.seed_perfect_shuffle(3, 2)])


@SETTINGS
@given(
    shape=st.lists(st.integers(1, 6), min_size=1, max_size=4),
    data=st.data(),
)
def test_shuffle_any_axis(shape, data):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    r = data.draw(st.integers(1, 5))
    p = data.draw(st.integers(1, 5))
    shape = list(shape)
    shape[axis] = p * r
    x = sample(tuple(shape), np.float64)
    expected = np.take(x, naive.seed_perfect_shuffle(p, r), axis=axis)
    for backend in ("numpy", "numba"):
        with _kernels._use_backend(backend):
            got = ks.shuffle(x, p, r, axis=axis)
        np.testing.assert_array_equal(got, expected)


def test_shuffle_vector_and_ones():
    x = np.arange(12)
    np.testing.assert_array_equal(ks.shuffle(x, 4, 3), x[naive.seed_perfect_shuffle(4, 3)])
    np.testing.assert_array_equal(ks.shuffle(x, 1, 12), x)
    np.testing.assert_array_equal(ks.shuffle(x, 12, 1), x)
    assert ks.shuffle(np.zeros((0, 3)), 0, 5).shape == (0, 3)
    assert ks.shuffle(np.zeros((4, 0)), 2, 2).shape == (4, 0)
    # list input, any dtype
    assert ks.shuffle(["a", "b", "c", "d"], 2, 2).tolist() == ["a", "c", "b", "d"]


def _layouts(x):
    """Non-contiguous and read-only variants of the 2-D array ``x``."""
    big = np.zeros((2 * x.shape[0], 3 * x.shape[1]), dtype=x.dtype)
    big[::2, ::3] = x
    ro = x.copy()
    ro.flags.writeable = False
    rev = x[::-1, ::-1].copy()[::-1, ::-1]
    yield "strided", big[::2, ::3]
    yield "fortran", np.asfortranarray(x)
    yield "transposed", np.ascontiguousarray(x.T).T
    yield "reversed", rev
    yield "readonly", ro
    yield "broadcast", np.broadcast_to(x[:1], x.shape) if x.shape[0] else x


@backends()
def test_shuffle_layouts(backend):
    x = sample((12, 10), np.float64)
    for name, v in _layouts(x):
        with _kernels._use_backend(backend):
            got = ks.shuffle(v, 5, 2, axis=1)
            got0 = ks.shuffle(v, 4, 3, axis=0)
        np.testing.assert_array_equal(got, v[:, naive.seed_perfect_shuffle(5, 2)], err_msg=name)
        np.testing.assert_array_equal(got0, v[naive.seed_perfect_shuffle(4, 3)], err_msg=name)


def test_shuffle_many_axes_strided():
    """A strided 5-D input whose axes cannot merge goes through a C copy."""
    x = sample((3, 4, 5, 6, 8), np.int32)[:, ::2, :, ::2, ::2]
    with _kernels._use_backend("numba"):
        got = ks.shuffle(x, 2, 2, axis=4)
    np.testing.assert_array_equal(got, x[..., naive.seed_perfect_shuffle(2, 2)])


@backends()
def test_shuffle_out(backend):
    x = sample((8, 9), np.float64)
    expected = x[:, naive.seed_perfect_shuffle(3, 3)]
    with _kernels._use_backend(backend):
        out = np.empty_like(x)
        assert ks.shuffle(x, 3, 3, axis=1, out=out) is out
        np.testing.assert_array_equal(out, expected)
        fout = np.zeros((9, 8)).T  # non-contiguous out
        assert ks.shuffle(x, 3, 3, axis=1, out=fout) is fout
        np.testing.assert_array_equal(fout, expected)
        cout = np.zeros(x.shape, dtype=np.complex128)  # cast
        ks.shuffle(x, 3, 3, axis=1, out=cout)
        np.testing.assert_array_equal(cout, expected)
        y = x.copy()  # in place
        assert ks.shuffle(y, 3, 3, axis=1, out=y) is y
        np.testing.assert_array_equal(y, expected)


def test_shuffle_large_uses_numba_by_default():
    """Large arrays take the kernel under the default backend; results agree bitwise."""
    x = sample((256, 300), np.float64)
    x[0, :5] = [np.nan, -0.0, np.inf, -np.inf, 5e-324]
    got = ks.shuffle(x, 20, 15, axis=1)
    assert _kernels._state["kernel"] not in (None, False)
    with _kernels._use_backend("numpy"):
        ref = ks.shuffle(x, 20, 15, axis=1)
    np.testing.assert_array_equal(got.view(np.uint64), ref.view(np.uint64))


@pytest.mark.parametrize("dtype", [np.complex128, "<U4", np.longdouble, np.int16, np.uint8])
def test_numba_and_numpy_bitwise_identical(dtype):
    """The bitwise kernel keeps every bit pattern (NaN payloads included)."""
    dt = np.dtype(dtype)
    rng = np.random.default_rng(1)
    raw = rng.integers(0, 256, size=(40 * 42 * dt.itemsize), dtype=np.uint8)
    if dt.kind == "U":
        x = sample((40, 42), dt)
    else:
        x = raw.view(dt).reshape(40, 42)
    with _kernels._use_backend("numba"):
        a = ks.shuffle2(x, (8, 5), (6, 7))
        b = ks.rearrange(x, (8, 6), (5, 7))
    with _kernels._use_backend("numpy"):
        a0 = ks.shuffle2(x, (8, 5), (6, 7))
        b0 = ks.rearrange(x, (8, 6), (5, 7))
    assert a.tobytes() == a0.tobytes()
    assert b.tobytes() == b0.tobytes()


# --- shuffle2 ----------------------------------------------------------------------
@SETTINGS
@given(
    p1=st.integers(1, 7), r1=st.integers(1, 7), p2=st.integers(1, 7), r2=st.integers(1, 7),
    fortran=st.booleans(),
)
def test_shuffle2_matches_seed(p1, r1, p2, r2, fortran):
    M = sample((p1 * r1, p2 * r2), np.float64, seed=p1 + r2)
    if fortran:
        M = np.asfortranarray(M)
    expected = M[naive.seed_perfect_shuffle(p1, r1), :][:, naive.seed_perfect_shuffle(p2, r2)]
    for backend in ("numpy", "numba"):
        with _kernels._use_backend(backend):
            np.testing.assert_array_equal(ks.shuffle2(M, (p1, r1), (p2, r2)), expected)


@backends()
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_shuffle2_dtypes_and_layouts(backend, dtype):
    x = sample((15, 14), dtype)
    for name, v in _layouts(x):
        with _kernels._use_backend(backend):
            got = ks.shuffle2(v, (3, 5), (7, 2))
        expected = v[naive.seed_perfect_shuffle(3, 5), :][:, naive.seed_perfect_shuffle(7, 2)]
        np.testing.assert_array_equal(got, expected, err_msg=name)


@backends()
@pytest.mark.parametrize("m1, n1, m2, n2", [(3, 2, 2, 2), (1, 1, 1, 1), (4, 1, 1, 3),
                                            (5, 3, 7, 2), (1, 6, 6, 1), (9, 8, 7, 6)])
def test_shuffle2_swaps_kron(backend, m1, n1, m2, n2):
    rng = np.random.default_rng(m1 + n2)
    B = rng.standard_normal((m1, n1))
    C = rng.standard_normal((m2, n2))
    with _kernels._use_backend(backend):
        np.testing.assert_array_equal(ks.shuffle2(np.kron(B, C), (m1, m2), (n1, n2)),
                                      np.kron(C, B))


def test_shuffle2_out_and_large():
    M = sample((300, 240), np.float32)
    expected = M[naive.seed_perfect_shuffle(20, 15), :][:, naive.seed_perfect_shuffle(16, 15)]
    out = np.empty_like(M)
    assert ks.shuffle2(M, (20, 15), (16, 15), out=out) is out
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(ks.shuffle2(M, (20, 15), (16, 15), out=M), expected)


# --- errors ------------------------------------------------------------------------
def test_shuffle_errors():
    x = np.zeros((6, 4))
    with pytest.raises(ValueError, match=r"x.shape\[0\] = 6 must equal p \* r = 4 \* 2 = 8"):
        ks.shuffle(x, 4, 2)
    with pytest.raises(ValueError, match=r"x.shape\[-1\] = 4 .* 3 \* 3 = 9"):
        ks.shuffle(x, 3, 3, axis=-1)
    with pytest.raises(ValueError, match="p must be a non-negative integer, got -2"):
        ks.shuffle(x, -2, -3)
    with pytest.raises(ValueError, match="r must be a non-negative integer, got -1"):
        ks.perfect_shuffle(2, -1)
    with pytest.raises(ValueError, match="axis=2 is out of range"):
        ks.shuffle(x, 2, 3, axis=2)
    with pytest.raises(TypeError, match="p must be an integer, got float"):
        ks.shuffle(x, 2.0, 3)
    with pytest.raises(ValueError, match="at least one dimension"):
        ks.shuffle(np.float64(1.0), 1, 1)
    with pytest.raises(ValueError, match=r"out must have shape \(6, 4\), got shape \(4, 6\)"):
        ks.shuffle(x, 2, 3, out=np.zeros((4, 6)))
    with pytest.raises(TypeError, match="out has dtype int64"):
        ks.shuffle(x, 2, 3, out=np.zeros((6, 4), dtype=np.int64))
    ro = np.zeros((6, 4))
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="out must be writeable"):
        ks.shuffle(x, 2, 3, out=ro)
    with pytest.raises(ValueError, match="m must be a non-negative integer, got -1"):
        ks.commutation_matrix(-1, 2)


def test_shuffle2_errors():
    M = np.zeros((6, 4))
    with pytest.raises(
        ValueError,
        match=r"M has shape \(6, 4\), but rows=\(p1, r1\)=\(4, 2\) and cols=\(p2, r2\)=\(2, 2\)"
        r" need shape \(p1\*r1, p2\*r2\) = \(8, 4\)",
    ):
        ks.shuffle2(M, (4, 2), (2, 2))
    with pytest.raises(ValueError, match="r2 must be a non-negative integer, got -4"):
        ks.shuffle2(M, (3, 2), (1, -4))
    with pytest.raises(TypeError, match=r"cols must be a pair of integers \(p2, r2\), got 4"):
        ks.shuffle2(M, (3, 2), 4)
    with pytest.raises(ValueError, match="M must be a 2-D matrix, got an array of shape"):
        ks.shuffle2(np.zeros(6), (3, 2), (1, 1))
    import scipy.sparse as sp

    with pytest.raises(TypeError, match="dense array"):
        ks.shuffle2(sp.eye(4, format="csr"), (2, 2), (2, 2))


# --- lazy Numba: import, missing Numba, unwritable cache -----------------------------
def _run(code, **env):
    full = dict(os.environ)
    full.update(env)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
        env=full, timeout=240,
    )


CHECK = """
import numpy as np, kronsolve as ks
from kronsolve import _kernels
x = np.arange(70000.0).reshape(280, 250)
with _kernels._use_backend("numba"):
    got = ks.shuffle2(x, (14, 20), (10, 25))
ref = x[ks.perfect_shuffle(14, 20)][:, ks.perfect_shuffle(10, 25)]
assert np.array_equal(got, ref)
"""


def test_numba_not_imported_at_import_and_missing_numba():
    pre = """
import sys
import kronsolve
assert "numba" not in sys.modules, "import kronsolve imported numba"
sys.modules["numba"] = None          # Numba cannot be imported from here on
"""
    post = """
assert _kernels._state["kernel"] is False
print("ok")
"""
    r = _run(pre + CHECK + post)
    assert r.returncode == 0, r.stderr
    assert "ok" in r.stdout


def test_unwritable_cache_folder(tmp_path):
    """No usable cache folder: the kernel compiles without a cache and runs."""
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    readonly = tmp_path / "ro"
    readonly.mkdir()
    readonly.chmod(0o555)
    try:
        # A path under a regular file cannot be created even by root; the
        # read-only folder covers ordinary users.
        for cache_dir in (blocker / "cache", readonly):
            r = _run(
                CHECK + "print('ok', _kernels._state['kernel'])",
                NUMBA_CACHE_DIR=str(cache_dir),
                NUMBA_CACHE_LOCATOR_CLASSES="UserProvidedCacheLocator",
            )
            assert r.returncode == 0, r.stderr
            assert "ok" in r.stdout
    finally:
        readonly.chmod(0o755)


def test_cache_folder_turns_unwritable(tmp_path, monkeypatch):
    """Saving to the cache fails after set-up: compile again without the cache."""
    import numba

    def broken_save(self, sig, data):
        raise PermissionError("read-only cache folder")

    assert _kernels._get_kernel() is not False
    kern = _kernels._compile(numba, cache=True)
    monkeypatch.setitem(_kernels._state, "kernel", kern)
    monkeypatch.setattr(type(kern._cache), "save_overload", broken_save)
    monkeypatch.setattr(type(kern._cache), "load_overload", lambda self, sig, tc: None)
    x = sample((200, 180), np.float64)
    with _kernels._use_backend("numba"):
        got = ks.shuffle2(x, (20, 10), (12, 15))
    np.testing.assert_array_equal(
        got, x[naive.seed_perfect_shuffle(20, 10)][:, naive.seed_perfect_shuffle(12, 15)]
    )
    assert _kernels._state["kernel"] is not kern


def test_numba_disable_jit_uses_numpy_path():
    r = _run(CHECK + "assert _kernels._state['kernel'] is False\nprint('ok')\n",
             NUMBA_DISABLE_JIT="1")
    assert r.returncode == 0, r.stderr
    assert "ok" in r.stdout


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int16, np.complex128])
@pytest.mark.parametrize("lead", [0, 1, 3, 6])
@pytest.mark.parametrize("m1, n1, m2, n2", [(10, 8, 8, 10), (3, 7, 5, 100), (2, 300, 3, 3),
                                            (70, 3, 1, 9), (16, 16, 12, 12), (41, 1, 1, 833)])
def test_streaming_stores(monkeypatch, dtype, lead, m1, n1, m2, n2):
    """Streaming (non-temporal) stores, forced at every size, into outputs that start
    anywhere in a cache line: bitwise equal to the NumPy path."""
    for limit in ("_STREAM_MIN_BYTES", "_STREAM_MIN_RUN", "_STREAM_MIN_BLOCK"):
        monkeypatch.setattr(_kernels, limit, 0)
    streamed = []
    run_kernel = _kernels._run_kernel

    def spy(*args):
        streamed.append(args[-2])  # ``line``: items per cache line, 0 without streaming
        run_kernel(*args)

    monkeypatch.setattr(_kernels, "_run_kernel", spy)
    M = sample((m1 * m2, n1 * n2), dtype, seed=m1 + n2)
    size = M.size

    def out(shape):  # C-contiguous, ``lead`` items past a 64-byte boundary
        buf = np.empty(size + 64, dtype)
        k = (-buf.ctypes.data) % 64 // buf.itemsize + lead
        return buf[k:k + size].reshape(shape)

    results = {}
    for backend in ("numba", "numpy"):
        with _kernels._use_backend(backend):
            R = ks.rearrange(M, (m1, n1), (m2, n2), out=out((m1 * n1, m2 * n2)))
            results[backend] = [
                R,
                ks.unrearrange(R, (m1, n1), (m2, n2), out=out(M.shape)),
                ks.shuffle2(M, (m1, m2), (n1, n2), out=out(M.shape)),
                ks.shuffle(M, m1, m2, axis=0, out=out(M.shape)),
                ks.shuffle(M, n2, n1, axis=1, out=out(M.shape)),
            ]
    for got, ref in zip(*results.values(), strict=True):
        assert got.tobytes() == ref.tobytes()
    np.testing.assert_array_equal(results["numba"][1], M)
    assert any(streamed) == (np.dtype(dtype).itemsize in (4, 8))


# --- against the loop references of naive.py ----------------------------------------
@pytest.mark.parametrize("p, r", [(0, 3), (1, 1), (3, 2), (2, 3), (4, 5), (6, 1)])
def test_matches_naive_loops(p, r):
    """perfect_shuffle, commutation_matrix, shuffle and shuffle2 against index loops."""
    np.testing.assert_array_equal(ks.perfect_shuffle(p, r), naive.perfect_shuffle(p, r))
    np.testing.assert_array_equal(naive.perfect_shuffle(p, r), naive.seed_perfect_shuffle(p, r))
    np.testing.assert_array_equal(ks.commutation_matrix(p, r).toarray(),
                                  naive.commutation_matrix(p, r))
    x = sample((2, p * r, 3), np.float64, seed=p + 10 * r)
    for axis in (1, -2):
        np.testing.assert_array_equal(ks.shuffle(x, p, r, axis=axis),
                                      naive.shuffle(x, p, r, axis=axis))
    M = sample((p * r, 6), np.int16, seed=p * r)
    np.testing.assert_array_equal(ks.shuffle2(M, (p, r), (2, 3)), naive.shuffle2(M, (p, r), (2, 3)))
    np.testing.assert_array_equal(ks.shuffle2(M.T, (3, 2), (p, r)),
                                  naive.shuffle2(M.T, (3, 2), (p, r)))
