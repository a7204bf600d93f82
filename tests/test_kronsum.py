"""KronSum: the lazy Kronecker sum against explicit np.kron sums."""

from __future__ import annotations

from functools import reduce

import naive
import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from backends import no_dask_compute
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from kronsolve import KronProductSum, KronSum, kron, kronsum, set_dense_limit

RNG = np.random.default_rng(2024)


def rand(shape, dtype=np.float64, rng=RNG):
    x = rng.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        x = x + 1j * rng.standard_normal(shape)
    return x.astype(dtype)


SIZES = [(3,), (1, 1), (2, 3), (4, 1, 3), (2, 3, 4), (3, 2, 2, 2), (1, 5, 1)]


@pytest.mark.parametrize("ns", SIZES, ids=str)
@pytest.mark.parametrize("dtype", [np.float64, np.complex128, np.float32])
def test_against_dense(ns, dtype):
    mats = [rand((n, n), dtype) for n in ns]
    K = kronsum(*mats)
    D = naive.kronsum(*mats).astype(dtype)
    N = int(np.prod(ns))
    assert K.shape == (N, N) and K.dtype == np.dtype(dtype) and K.ndim == 2
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    assert_allclose(K.toarray(), D, rtol=rtol, atol=rtol)
    assert_array_equal(np.asarray(K), K.toarray())
    x = rand(N, dtype)
    assert_allclose(K @ x, D @ x, rtol=rtol, atol=rtol)
    Xb = rand((N, 3), dtype)
    assert_allclose(K @ Xb, D @ Xb, rtol=rtol, atol=rtol)
    Xbb = rand((2, N, 3), dtype)
    assert_allclose(K @ Xbb, D @ Xbb, rtol=rtol, atol=rtol)
    assert_allclose(x @ K, x @ D, rtol=rtol, atol=rtol)
    assert_allclose(Xb.T @ K, Xb.T @ D, rtol=rtol, atol=rtol)
    assert_allclose(K.T.toarray(), D.T, rtol=rtol, atol=rtol)
    assert_allclose(K.H.toarray(), D.conj().T, rtol=rtol, atol=rtol)
    assert_allclose(K.conj().toarray(), D.conj(), rtol=rtol, atol=rtol)
    assert_allclose(K.matvec(x), D @ x, rtol=rtol, atol=rtol)
    assert_allclose(K.rmatvec(x), D.conj().T @ x, rtol=rtol, atol=rtol)
    assert_allclose(K.diagonal(), np.diagonal(D), rtol=rtol, atol=rtol)
    assert_allclose(K.trace(), np.trace(D), rtol=rtol, atol=rtol)
    assert_allclose((2.5 * K).toarray(), 2.5 * D, rtol=rtol, atol=rtol)
    assert_allclose((K * 2).toarray(), 2 * D, rtol=rtol, atol=rtol)
    assert_allclose((-K).toarray(), -D, rtol=rtol, atol=rtol)
    assert_allclose((K / 2).toarray(), D / 2, rtol=rtol, atol=rtol)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 6), min_size=1, max_size=4), st.integers(0, 2**31))
def test_c_order_mode_product_convention(ns, seed):
    """``kronsum(A1, ..., Ad) @ X.ravel()`` is the ravel of ``Σ_k X ×_k A_k``."""
    rng = np.random.default_rng(seed)
    mats = [rng.standard_normal((n, n)) for n in ns]
    X = rng.standard_normal(ns)
    Y = sum(naive.mode_product(X, A, k) for k, A in enumerate(mats))
    assert_allclose(kronsum(*mats) @ X.ravel(), Y.ravel(), rtol=1e-12, atol=1e-12)
    assert_allclose(kronsum(*mats).toarray(), naive.kronsum(*mats), rtol=1e-13, atol=1e-13)


def test_np_kron_ordering_three_factors():
    A1, A2, A3 = rand((2, 2)), rand((3, 3)), rand((4, 4))
    I2, I3, I4 = np.eye(2), np.eye(3), np.eye(4)
    D = (np.kron(np.kron(A1, I3), I4) + np.kron(np.kron(I2, A2), I4)
         + np.kron(np.kron(I2, I3), A3))
    assert_allclose(kronsum(A1, A2, A3).toarray(), D, rtol=1e-14, atol=1e-14)


def test_nested_and_sum_and_products():
    A, B, C = rand((2, 2)), rand((3, 3)), rand((2, 2))
    K = kronsum(kronsum(A, B), C)
    assert isinstance(K, KronSum) and len(K.mats) == 3
    D = naive.kronsum(A, B, C)
    assert_allclose(K.toarray(), D, rtol=1e-13)
    # KronSum + KronSum with the same partition stays a KronSum
    K2 = kronsum(C, B, A)
    S = K + K2
    assert isinstance(S, KronSum)
    assert_allclose(S.toarray(), D + naive.kronsum(C, B, A), rtol=1e-13)
    # with a KronProduct it becomes a KronProductSum
    P = kron(A, B, C)
    S2 = K + P
    assert isinstance(S2, KronProductSum)
    x = rand(12)
    assert_allclose(S2 @ x, (D + np.kron(np.kron(A, B), C)) @ x, rtol=1e-12)
    assert_allclose((K - P) @ x, (D - np.kron(np.kron(A, B), C)) @ x, rtol=1e-12)
    # operator products with KronSum on the left
    M = K @ P
    assert_allclose(M @ x, D @ (np.kron(np.kron(A, B), C) @ x), rtol=1e-12)


def test_linear_operator_cg():
    n = 6
    T = 2 * np.eye(n) - np.eye(n, k=1) - np.eye(n, k=-1)
    K = kronsum(T, T, T)
    L = K.aslinearoperator()
    assert L.shape == K.shape
    b = np.ones(n**3)
    x, info = spla.cg(L, b, rtol=1e-12, atol=0.0)
    assert info == 0
    assert_allclose(x, K.solve(b), rtol=1e-9)
    assert_allclose(L.H @ b, K.H @ b)
    assert_allclose(L.matmat(np.ones((n**3, 2))), K @ np.ones((n**3, 2)))


def test_sparse_factors():
    n = 5
    T = sp.diags([-np.ones(n - 1), 2 * np.ones(n), -np.ones(n - 1)], [-1, 0, 1], format="csr")
    K = kronsum(T, T)
    D = naive.kronsum(T, T)
    x = rand(n * n)
    assert_allclose(K @ x, D @ x, rtol=1e-13)
    assert_allclose(K.toarray(), D)
    assert_allclose(K.solve(x), np.linalg.solve(D, x), rtol=1e-12)
    assert_allclose(K.diagonal(), np.diagonal(D))


@pytest.mark.parametrize("ns", [(4,), (3, 4), (2, 3, 2)], ids=str)
def test_solve_and_eigvals(ns):
    rng = np.random.default_rng(1)
    mats = []
    for n in ns:
        A = rng.standard_normal((n, n))
        mats.append(A @ A.T + n * np.eye(n))
    K = kronsum(*mats)
    D = naive.kronsum(*mats)
    N = D.shape[0]
    b = rng.standard_normal(N)
    assert_allclose(K.solve(b), np.linalg.solve(D, b), rtol=1e-11)
    Bk = rng.standard_normal((N, 3))
    assert_allclose(K.solve(Bk), np.linalg.solve(D, Bk), rtol=1e-11)
    Bkk = rng.standard_normal((2, N, 3))
    assert_allclose(K.solve(Bkk), np.linalg.solve(D, Bkk), rtol=1e-11)
    assert_allclose(K.solve(b, shift=0.5), np.linalg.solve(D + 0.5 * np.eye(N), b), rtol=1e-11)
    ev = K.eigvals()
    assert ev.shape == (N,) and ev.dtype == np.float64
    assert_allclose(np.sort(ev), np.linalg.eigvalsh(D), rtol=1e-11)
    # np.kron order: the sums λ1[i1] + ... + λd[id] in C order
    lams = [np.linalg.eigvalsh(A) for A in mats]
    expected = reduce(lambda a, b: np.add.outer(a, b).ravel(), lams)
    assert_allclose(ev, expected, rtol=1e-11)


def test_nonsymmetric_eigvals_and_solve():
    rng = np.random.default_rng(3)
    A = rng.standard_normal((3, 3)) + 4 * np.eye(3)
    B = rng.standard_normal((2, 2)) + 4 * np.eye(2)
    K = kronsum(A, B)
    D = naive.kronsum(A, B)
    ev = K.eigvals()
    assert_allclose(np.sort_complex(ev), np.sort_complex(np.linalg.eigvals(D)), rtol=1e-10)
    b = rng.standard_normal(6)
    x = K.solve(b)
    assert x.dtype == np.float64
    assert_allclose(x, np.linalg.solve(D, b), rtol=1e-10)


def test_errors():
    with pytest.raises(ValueError, match="at least one"):
        kronsum()
    with pytest.raises(ValueError, match=r"mats\[1\] must be square, got shape \(2, 3\)"):
        kronsum(np.eye(2), np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"mats\[0\] must be a 2-D matrix"):
        kronsum(np.ones(3))
    with pytest.raises(TypeError, match="separate arguments"):
        kronsum([np.eye(2), np.eye(2)])
    with pytest.raises(TypeError, match="KronProduct"):
        kronsum(kron(np.eye(2), np.eye(2)))
    with pytest.raises(TypeError, match="numeric"):
        kronsum(np.array([["a"]]))
    K = kronsum(np.eye(2), np.eye(3))
    with pytest.raises(ValueError, match="6"):
        K @ np.ones(5)
    with pytest.raises(ValueError, match=r"b must have shape \(6,\)"):
        K.solve(np.ones(5))
    with pytest.raises(ValueError, match="b must contain only finite"):
        K.solve(np.full(6, np.nan))
    with pytest.raises(ValueError, match="cannot add"):
        K + kron(np.eye(2), np.eye(2))
    old = set_dense_limit(100)
    try:
        with pytest.raises(MemoryError, match="max_bytes"):
            K.toarray()
        assert K.toarray(max_bytes=10**6).shape == (6, 6)
    finally:
        set_dense_limit(old)


def test_repr_and_attributes():
    K = kronsum(np.eye(2), np.eye(3, dtype=np.float32))
    assert "KronSum" in repr(K) and "2x2" in repr(K)
    assert K.dtype == np.float64
    assert K.size == 36
    assert kronsum(np.eye(2, dtype=np.float32)).dtype == np.float32


def test_factor_inputs_not_modified():
    A, B = rand((3, 3)), rand((2, 2))
    A0, B0 = A.copy(), B.copy()
    K = kronsum(A, B)
    x = rand(6)
    x0 = x.copy()
    K @ x
    K.solve(x)
    K.eigvals()
    assert_array_equal(A, A0)
    assert_array_equal(B, B0)
    assert_array_equal(x, x0)


# ------------------------------------------------------------------ backends
# KronSum on the array library of the ``be`` fixture (conftest.py): inputs
# converted with be.asarray, results of the backend's kind (scalars: NumPy
# scalars for Dask), equal to the references of naive.py.


def _spd(rng, n):
    A = rng.standard_normal((n, n))
    return A @ A.T + n * np.eye(n)


def test_backend_kronsum_is_a_kronsum(be):
    rng = np.random.default_rng(60)
    A, B, C = (_spd(rng, n) for n in (2, 3, 2))
    K = kronsum(be.asarray(A), be.asarray(B))
    assert type(K) is KronSum
    assert K.shape == (6, 6)
    assert type(kronsum(K, be.asarray(C))) is KronSum
    assert type(K.T) is KronSum
    assert type(2.0 * K) is KronSum
    # a sum with the same partition stays a Kronecker sum
    assert type(K + kronsum(be.asarray(C), be.asarray(B))) is KronSum


@pytest.mark.parametrize("kind", ["sym", "gen"])
def test_backend_kronsum_methods(be, kind):
    """@, toarray, diagonal, trace, eigvals and solve (with shifts) of backend factors."""
    rng = np.random.default_rng(61)
    ns = (3, 2, 4)
    if kind == "sym":
        mats = [_spd(rng, n) for n in ns]
    else:
        mats = [rng.standard_normal((n, n)) + 2 * n * np.eye(n) for n in ns]
    K = kronsum(*[be.asarray(A) for A in mats])
    D = naive.kronsum(*mats)
    N = D.shape[0]
    for shape in [(N,), (N, 2), (2, N, 3)]:
        x = rng.standard_normal(shape)
        got = K @ be.asarray(x)
        be.check_kind(got)
        assert_allclose(be.to_numpy(got), D @ x, rtol=1e-12, atol=1e-12)
    dense = K.toarray()
    be.check_kind(dense)
    assert_allclose(be.to_numpy(dense), D, rtol=1e-13, atol=1e-13)
    diag = K.diagonal()
    be.check_kind(diag)
    assert_allclose(be.to_numpy(diag), np.diagonal(D), rtol=1e-13)
    assert_allclose(be.scalar(K.trace()), np.trace(D), rtol=1e-12)
    ev = K.eigvals()
    be.check_kind(ev)
    assert_allclose(np.sort_complex(be.to_numpy(ev).astype(complex)),
                    np.sort_complex(naive.kronsum_eigvals(*mats)), rtol=1e-10, atol=1e-10)
    for b in (rng.standard_normal(N), rng.standard_normal((N, 2))):
        for shift in (0.0, 0.75):
            got = K.solve(be.asarray(b), shift=shift) if shift else K.solve(be.asarray(b))
            be.check_kind(got)
            ref = np.linalg.solve(naive.kronsum_with_masses(mats, shift=shift), b)
            assert_allclose(be.to_numpy(got), ref, rtol=1e-10, atol=1e-12)


def test_dask_kronsum_products_and_solve_are_lazy():
    """Dask right-hand sides with NumPy factors: K @ x and K.solve(b) build graphs only."""
    da = pytest.importorskip("dask.array")

    rng = np.random.default_rng(62)
    mats = [_spd(rng, n) for n in (3, 4, 2)]
    b = rng.standard_normal(24)
    bd = da.from_array(b, chunks=5)
    K = kronsum(*mats)
    with no_dask_compute():
        results = [K @ bd, K.solve(bd), K.solve(bd, shift=0.5)]
    D = naive.kronsum(*mats)
    refs = [D @ b, np.linalg.solve(D, b), np.linalg.solve(D + 0.5 * np.eye(24), b)]
    for got, ref in zip(results, refs):
        assert isinstance(got, da.Array)
        assert_allclose(got.compute(scheduler="sync"), ref, rtol=1e-10, atol=1e-12)
