"""KronProduct against explicit np.kron."""

from __future__ import annotations

import naive
import numpy as np
import pytest
import scipy.sparse as sp
from backends import no_dask_compute
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

import kronsolve as ks
from kronsolve import KronProduct, KronProductSum, kron

RNG = np.random.default_rng(1234)

SHAPE_CASES = [
    [(3, 3)],
    [(1, 1), (1, 1)],
    [(1, 1), (4, 3)],
    [(2, 3), (4, 1)],
    [(3, 2), (2, 4), (5, 3)],
    [(4, 4), (4, 4), (4, 4)],
    [(2, 2), (1, 3), (3, 1), (2, 2)],
    [(2, 3), (3, 2), (2, 2), (1, 2), (2, 1)],
    [(17, 13), (11, 19)],
    [(300, 7)],
    [(20, 20), (15, 15)],
]


def rand(shape, dtype=np.float64, rng=RNG):
    dtype = np.dtype(dtype)
    if dtype.kind == "c":
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)
    if dtype.kind in "iu":
        return rng.integers(-3, 4, size=shape).astype(dtype)
    if dtype.kind == "b":
        return rng.integers(0, 2, size=shape).astype(bool)
    return rng.standard_normal(shape).astype(dtype)


def factors_for(shapes, dtype=np.float64):
    return [rand(s, dtype) for s in shapes]


def tol(dtype):
    return 1e-4 if np.dtype(dtype) in (np.float32, np.complex64) else 1e-11


@pytest.mark.parametrize("shapes", SHAPE_CASES, ids=str)
class TestAgainstNpKron:
    def test_attributes_and_dense(self, shapes):
        F = factors_for(shapes)
        K = kron(*F)
        D = naive.kron(*F)
        assert K.shape == D.shape
        assert K.ndim == 2
        assert K.dtype == D.dtype
        assert len(K.factors) == len(F)
        assert_array_equal(K.toarray(), D)
        assert_array_equal(np.asarray(K), D)

    def test_matvec(self, shapes):
        F = factors_for(shapes)
        K, D = kron(*F), naive.kron(*F)
        x = rand(D.shape[1])
        assert_allclose(K @ x, D @ x, rtol=1e-12, atol=1e-12)
        assert (K @ x).shape == (D @ x).shape

    def test_matmat_and_batches(self, shapes):
        F = factors_for(shapes)
        K, D = kron(*F), naive.kron(*F)
        for shape in [(D.shape[1], 1), (D.shape[1], 5), (2, D.shape[1], 3), (2, 1, D.shape[1], 2)]:
            x = rand(shape)
            y = K @ x
            assert y.shape == (D @ x).shape
            assert_allclose(y, D @ x, rtol=1e-12, atol=1e-12)

    def test_rmatmul(self, shapes):
        F = factors_for(shapes)
        K, D = kron(*F), naive.kron(*F)
        for shape in [(D.shape[0],), (4, D.shape[0]), (2, 3, D.shape[0])]:
            x = rand(shape)
            y = x @ K
            assert y.shape == (x @ D).shape
            assert_allclose(y, x @ D, rtol=1e-12, atol=1e-12)

    def test_transpose_conj_scalar(self, shapes):
        F = factors_for(shapes, np.complex128)
        K, D = kron(*F), naive.kron(*F)
        assert_allclose(K.T.toarray(), D.T)
        assert_allclose(K.H.toarray(), D.conj().T)
        assert_allclose(K.conj().toarray(), D.conj())
        assert_allclose((2.5 * K).toarray(), 2.5 * D)
        assert_allclose((K * (1 - 2j)).toarray(), D * (1 - 2j))
        assert_allclose((-K).toarray(), -D)
        assert_allclose((K / 4).toarray(), D / 4)
        x = rand(D.shape[0], np.complex128)
        assert_allclose(K.H @ x, D.conj().T @ x, rtol=1e-12, atol=1e-12)

    def test_sum(self, shapes):
        F, G = factors_for(shapes), factors_for(shapes)
        S = kron(*F) + kron(*G)
        DS = naive.kron(*F) + naive.kron(*G)
        assert isinstance(S, KronProductSum)
        assert_allclose(S.toarray(), DS, atol=1e-12)
        x = rand(DS.shape[1])
        assert_allclose(S @ x, DS @ x, rtol=1e-12, atol=1e-12)
        X = rand((DS.shape[1], 3))
        assert_allclose(S @ X, DS @ X, rtol=1e-12, atol=1e-12)
        assert_allclose(S.T.toarray(), DS.T, atol=1e-12)
        assert_allclose((S - kron(*G)).toarray(), naive.kron(*F), atol=1e-12)
        assert_allclose((S + S).toarray(), 2 * DS, atol=1e-12)
        y = rand(DS.shape[0])
        assert_allclose(y @ S, y @ DS, rtol=1e-12, atol=1e-12)

    def test_diagonal_and_norms(self, shapes):
        F = factors_for(shapes)
        K, D = kron(*F), naive.kron(*F)
        assert_allclose(K.diagonal(), np.diagonal(D), atol=1e-13)
        assert_allclose(K.norm(), np.linalg.norm(D), rtol=1e-12)
        assert_allclose(K.norm("fro"), np.linalg.norm(D, "fro"), rtol=1e-12)
        assert_allclose(K.norm(2), np.linalg.norm(D, 2), rtol=1e-10)
        assert_allclose(K.norm("nuc"), np.linalg.norm(D, "nuc"), rtol=1e-10)


SQUARE_CASES = [[3], [1, 1], [2, 3], [3, 1, 2], [2, 2, 2, 2], [1, 2, 1, 3, 2], [12, 9]]


def well_conditioned(n, rng=RNG, dtype=np.float64):
    A = rand((n, n), dtype, rng) + 3 * np.eye(n) * (1 + np.sqrt(n))
    return A.astype(dtype)


@pytest.mark.parametrize("sizes", SQUARE_CASES, ids=str)
class TestSquareAlgebra:
    def test_solve(self, sizes):
        F = [well_conditioned(n) for n in sizes]
        K, D = kron(*F), naive.kron(*F)
        b = rand(D.shape[0])
        assert_allclose(K.solve(b), np.linalg.solve(D, b), rtol=1e-10, atol=1e-12)
        B = rand((D.shape[0], 4))
        assert_allclose(K.solve(B), np.linalg.solve(D, B), rtol=1e-10, atol=1e-12)
        B = rand((2, D.shape[0], 3))
        assert_allclose(K.solve(B), np.linalg.solve(D, B), rtol=1e-10, atol=1e-12)
        # scaled residual, LAPACK style
        x = K.solve(b)
        eps = np.finfo(float).eps
        res = np.linalg.norm(b - D @ x) / (np.linalg.norm(D) * np.linalg.norm(x) * eps)
        assert res < 30

    def test_inv_det_trace_eig(self, sizes):
        F = [well_conditioned(n) for n in sizes]
        K, D = kron(*F), naive.kron(*F)
        assert isinstance(K.inv(), KronProduct)
        assert_allclose(K.inv().toarray(), np.linalg.inv(D), rtol=1e-9, atol=1e-12)
        assert_allclose(K.det(), np.linalg.det(D), rtol=1e-9)
        s, ld = K.slogdet()
        s0, ld0 = np.linalg.slogdet(D)
        assert s == s0
        assert_allclose(ld, ld0, rtol=1e-10)
        assert_allclose(K.trace(), np.trace(D), rtol=1e-12)
        ev = np.sort_complex(K.eigvals())
        assert_allclose(ev, np.sort_complex(np.linalg.eigvals(D)), rtol=1e-8, atol=1e-9)

    def test_complex_solve(self, sizes):
        F = [well_conditioned(n, dtype=np.complex128) for n in sizes]
        K, D = kron(*F), naive.kron(*F)
        b = rand(D.shape[0], np.complex128)
        assert_allclose(K.solve(b), np.linalg.solve(D, b), rtol=1e-10, atol=1e-12)
        s, ld = K.slogdet()
        s0, ld0 = np.linalg.slogdet(D)
        assert_allclose(s, s0, rtol=1e-9)
        assert_allclose(ld, ld0, rtol=1e-10)


def test_det_matches_for_negative_determinants():
    A = np.array([[0.0, 1.0], [1.0, 0.0]])  # det -1
    B = np.diag([2.0, -3.0, 1.0])  # det -6
    D = np.kron(A, B)
    assert_allclose(kron(A, B).det(), np.linalg.det(D))
    assert_allclose(kron(B, A, A).det(), np.linalg.det(np.kron(np.kron(B, A), A)))


def test_flattening_nested_products():
    A, B, C = factors_for([(2, 3), (3, 2), (1, 4)])
    K = kron(kron(A, B), C)
    assert len(K.factors) == 3
    assert_array_equal(K.toarray(), naive.kron(A, B, C))
    assert len(kron(A, kron(B, C)).factors) == 3


def test_mixed_product_rule():
    A, B, C = factors_for([(2, 3), (4, 2), (3, 3)])
    E, F, G = factors_for([(3, 2), (2, 5), (3, 1)])
    K = kron(A, B, C) @ kron(E, F, G)
    assert isinstance(K, KronProduct)
    assert len(K.factors) == 3
    assert_allclose(K.toarray(), naive.kron(A, B, C) @ naive.kron(E, F, G), atol=1e-12)


def test_mixed_product_regroups_factors():
    A, B, C = factors_for([(2, 2), (3, 3), (4, 4)])
    E, F = factors_for([(6, 6), (4, 2)])
    K = kron(A, B, C) @ kron(E, F)
    assert isinstance(K, KronProduct)
    assert_allclose(K.toarray(), naive.kron(A, B, C) @ naive.kron(E, F), atol=1e-12)
    # no common cut point: the whole thing becomes one factor
    G, H = factors_for([(4, 4), (6, 6)])
    K2 = kron(A, B, C) @ kron(G, H)
    assert_allclose(K2.toarray(), naive.kron(A, B, C) @ naive.kron(G, H), atol=1e-12)


def test_sum_times_product():
    A, B, C, D = factors_for([(2, 2), (3, 3), (2, 2), (3, 3)])
    S = kron(A, B) + kron(C, D)
    P = kron(np.eye(2), np.eye(3))
    assert_allclose((S @ P).toarray(), S.toarray(), atol=1e-12)
    assert_allclose((P @ S).toarray(), S.toarray(), atol=1e-12)
    assert_allclose((S @ S).toarray(), S.toarray() @ S.toarray(), atol=1e-10)


def test_seed_column_major_identity_cells_118_to_120():
    """np.kron(np.kron(U1, U2), U3).T @ B.flatten('F') == einsum(...).flatten('F')."""
    rng = np.random.default_rng(118)
    n1, n2, n3 = 4, 5, 6
    B = np.array(rng.standard_normal((n1, n2, n3)), order="F")
    U1, U2, U3 = (rng.standard_normal((n, n)) for n in (n1, n2, n3))
    # the notebook's convention, with distinct factors: column-major vectors pair
    # the first tensor axis with the *last* Kronecker factor
    y1 = np.kron(np.kron(U3, U2), U1).T @ B.flatten("F")
    y2 = np.einsum("abc,ia,jb,kc->ijk", B, U1.T, U2.T, U3.T, optimize="optimal")
    assert_allclose(y1, y2.flatten("F"), rtol=1e-10)
    # kronsolve's C-order convention gives the same tensor
    Y = ks.multi_mode_product(B, [U1, U2, U3], transpose=True)
    assert_allclose(Y, y2, rtol=1e-10)
    assert_allclose(kron(U1, U2, U3).T @ B.ravel(), Y.ravel(), rtol=1e-10)
    assert_allclose(kron(U3, U2, U1).T @ B.flatten("F"), Y.flatten("F"), rtol=1e-10)


DTYPES = [np.float32, np.float64, np.complex64, np.complex128, np.int64, np.int32, np.bool_]


@pytest.mark.parametrize("fdtype", DTYPES)
@pytest.mark.parametrize("xdtype", DTYPES)
def test_dtype_promotion_matches_numpy(fdtype, xdtype):
    F = [rand((3, 2), fdtype), rand((2, 3), fdtype)]
    K, D = kron(*F), naive.kron(*F)
    x = rand(6, xdtype)
    X = rand((6, 2), xdtype)
    for v in (x, X):
        y, y0 = K @ v, D @ v
        assert y.dtype == y0.dtype
        if y.dtype.kind in "biu":
            assert_array_equal(y, y0)
        else:
            t = max(tol(fdtype), tol(xdtype)) if np.dtype(fdtype).kind in "fc" else tol(y.dtype)
            t = max(t, tol(xdtype)) if np.dtype(xdtype).kind in "fc" else t
            assert_allclose(y, y0, rtol=t, atol=t)
    assert (x[:6] @ K.T).dtype == (x[:6] @ D.T).dtype


def test_mixed_factor_dtypes():
    A = rand((3, 3), np.float32)
    B = rand((2, 2), np.complex128)
    K, D = kron(A, B), naive.kron(A, B)
    assert K.dtype == D.dtype == np.complex128
    x = rand(6, np.float32)
    assert_allclose(K @ x, D @ x, rtol=1e-6)


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
def test_sparse_factors(fmt):
    A = sp.random(5, 4, density=0.5, format=fmt, random_state=0)
    B = rand((3, 3))
    C = sp.random_array((2, 6), density=0.5, format=fmt, random_state=1)
    for F in ([A, B, C], [B, A], [A], [B, C, B]):
        K, D = kron(*F), naive.kron(*F)
        x = rand(D.shape[1])
        assert_allclose(K @ x, D @ x, atol=1e-12)
        X = rand((D.shape[1], 3))
        assert_allclose(K @ X, D @ X, atol=1e-12)
        assert_allclose(K.T @ rand(D.shape[0], rng=np.random.default_rng(5)),
                        D.T @ rand(D.shape[0], rng=np.random.default_rng(5)), atol=1e-12)
        assert_allclose(K.toarray(), D)
        assert_allclose(K.norm(), np.linalg.norm(D))


def test_functional_forms():
    A, B, C = factors_for([(3, 2), (4, 5), (2, 2)])
    D = naive.kron(A, B, C)
    x = rand(20)
    assert_allclose(ks.kron_matvec([A, B, C], x), D @ x, atol=1e-12)
    X = rand((20, 7))
    assert_allclose(ks.kron_matvec([A, B, C], X), D @ X, atol=1e-12)
    T = x.reshape(2, 5, 2)
    assert_allclose(ks.multi_mode_product(T, [A, B, C]).ravel(), D @ x, atol=1e-12)


def test_densify_limit():
    A = np.ones((200, 200))
    K = kron(A, A, A)  # 8e6 x 8e6: 512 TB dense
    with pytest.raises(MemoryError, match=r"set_dense_limit"):
        K.toarray()
    with pytest.raises(MemoryError, match=r"GiB"):
        np.asarray(K)
    small = kron(np.ones((10, 10)), np.ones((10, 10)))
    with pytest.raises(MemoryError, match="max_bytes"):
        small.toarray(max_bytes=100)
    old = ks.set_dense_limit(100)
    try:
        with pytest.raises(MemoryError):
            small.toarray()
        assert small.toarray(max_bytes=10**6).shape == (100, 100)
    finally:
        ks.set_dense_limit(old)
    assert small.toarray().shape == (100, 100)


def test_inputs_not_modified():
    F = factors_for([(3, 3), (2, 2)])
    copies = [f.copy() for f in F]
    for f in F:
        f.flags.writeable = False
    K = kron(*F)
    x = rand(6)
    x.flags.writeable = False
    x0 = x.copy()
    K @ x
    x @ K
    K.solve(x)
    K.inv()
    (K + K) @ x
    ks.multi_mode_product(x.reshape(3, 2), F)
    for f, c in zip(F, copies):
        assert_array_equal(f, c)
    assert_array_equal(x, x0)


def test_non_contiguous_inputs():
    A = rand((6, 8))[:, ::2]
    B = rand((3, 3)).T
    K, D = kron(A, B), naive.kron(A, B)
    x = rand(24)[::2]
    assert_allclose(K @ x, D @ x, atol=1e-12)
    X = np.asfortranarray(rand((12, 5)))
    assert_allclose(K @ X, D @ X, atol=1e-12)


def test_results_do_not_alias_between_calls():
    A = rand((4, 4))
    K = kron(A, A, A)
    x1, x2 = rand(64), rand(64)
    y1 = K @ x1
    y1c = y1.copy()
    K @ x2
    assert_array_equal(y1, y1c)


# --------------------------------------------------------------------- errors


def test_errors_empty_and_dims():
    with pytest.raises(ValueError, match="at least one factor"):
        kron()
    with pytest.raises(ValueError, match=r"factors\[1\] must be a 2-D matrix.*\(3,\)"):
        kron(np.eye(2), np.ones(3))
    # a 3-D factor is a stack of per-item factors (tests/test_batched.py)
    assert isinstance(kron(np.ones((2, 2, 2))), ks.KronStack)
    with pytest.raises(TypeError, match="dtype object"):
        kron(np.array([[None]], dtype=object))
    with pytest.raises(TypeError, match="separate arguments"):
        kron([np.eye(2), np.eye(2)])
    with pytest.raises(ValueError, match="at least one matrix"):
        ks.kron_matvec([], np.ones(3))


def test_errors_mismatched_x():
    K = kron(np.ones((2, 3)), np.ones((4, 5)))
    with pytest.raises(ValueError, match=r"\(8, 15\).*\(14,\).*15"):
        K @ np.ones(14)
    with pytest.raises(ValueError, match=r"x.shape\[0\] == 15"):
        K @ np.ones((14, 3))
    with pytest.raises(ValueError, match="0-d"):
        K @ np.float64(1.0)
    with pytest.raises(ValueError, match=r"\(15, 8\)"):
        np.ones(15) @ K
    with pytest.raises(TypeError, match="numeric"):
        K @ np.array(["a"] * 15)
    with pytest.raises(ValueError, match="shape"):
        ks.kron_matvec([np.eye(2)], np.ones((2, 2, 2)))


def test_errors_square_and_singular():
    K = kron(np.ones((2, 3)), np.eye(2))
    for meth in ("solve", "inv", "det", "slogdet", "trace", "eigvals"):
        with pytest.raises(ValueError, match=r"factor 0 has shape \(2, 3\)"):
            f = getattr(K, meth)
            f(np.ones(6)) if meth == "solve" else f()
    S = kron(np.eye(2), np.array([[1.0, 2.0], [2.0, 4.0]]))
    with pytest.raises(np.linalg.LinAlgError, match=r"factor 1 \(shape \(2, 2\)\) is singular"):
        S.solve(np.ones(4))
    with pytest.raises(np.linalg.LinAlgError, match="factor 1"):
        S.inv()
    assert S.det() == 0
    with pytest.raises(ValueError, match="b must have shape"):
        kron(np.eye(2), np.eye(2)).solve(np.ones(3))


def test_errors_operator_algebra():
    K1 = kron(np.eye(2), np.eye(3))
    K2 = kron(np.eye(3), np.eye(3))
    with pytest.raises(ValueError, match=r"shapes \(6, 6\) and \(9, 9\)"):
        K1 + K2
    with pytest.raises(ValueError, match="do not line up"):
        K1 @ K2
    with pytest.raises(TypeError):
        K1 * np.ones(3)
    with pytest.raises(ValueError, match="ord"):
        K1.norm(1)


def test_mode_product_errors():
    X = np.ones((2, 3, 4))
    with pytest.raises(ValueError, match=r"mats\[0\] has shape \(5, 2\).*axis 1.*\(2, 3, 4\)"):
        ks.mode_product(X, np.ones((5, 2)), 1)
    with pytest.raises(ValueError, match="out of range"):
        ks.mode_product(X, np.ones((5, 2)), 3)
    with pytest.raises(ValueError, match="distinct"):
        ks.multi_mode_product(X, [np.eye(2), np.eye(2)], [0, 0])
    with pytest.raises(ValueError, match="2 matrices but 1 modes"):
        ks.multi_mode_product(X, [np.eye(2), np.eye(3)], [0])
    with pytest.raises(ValueError, match="only 3 dimension"):
        ks.multi_mode_product(X, [np.eye(2)] * 4)
    with pytest.raises(TypeError, match="sequence of matrices"):
        ks.multi_mode_product(X, np.eye(4))


# ----------------------------------------------------------------- properties

dims = st.lists(st.tuples(st.integers(1, 4), st.integers(1, 4)), min_size=1, max_size=4)


@settings(max_examples=60, deadline=None)
@given(shapes=dims, k=st.integers(0, 3), seed=st.integers(0, 2**32 - 1),
       dtype=st.sampled_from([np.float64, np.complex128, np.float32]))
def test_property_matches_np_kron(shapes, k, seed, dtype):
    rng = np.random.default_rng(seed)
    F = [rand(s, dtype, rng) for s in shapes]
    K, D = kron(*F), naive.kron(*F)
    x = rand((D.shape[1], k) if k else D.shape[1], dtype, rng)
    t = tol(dtype) * max(1.0, float(np.abs(D).max()) * D.shape[1])
    assert_allclose(K @ x, D @ x, rtol=tol(dtype), atol=t)
    y = rand(D.shape[0], dtype, rng)
    assert_allclose(y @ K, y @ D, rtol=tol(dtype), atol=t)
    assert_allclose(K.H @ y, D.conj().T @ y, rtol=tol(dtype), atol=t)


@settings(max_examples=40, deadline=None)
@given(sizes=st.lists(st.integers(1, 5), min_size=1, max_size=4), seed=st.integers(0, 2**32 - 1))
def test_property_solve_residual(sizes, seed):
    rng = np.random.default_rng(seed)
    F = []
    for n in sizes:
        Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
        lam = rng.uniform(0.5, 3.0, n) * rng.choice([-1, 1], n)
        F.append(Q @ np.diag(lam) @ Q.T)
    K, D = kron(*F), naive.kron(*F)
    b = rng.standard_normal(D.shape[0])
    x = K.solve(b)
    eps = np.finfo(float).eps
    res = np.linalg.norm(b - D @ x) / (np.linalg.norm(D, 2) * np.linalg.norm(x) * eps)
    assert res < 30


@settings(max_examples=40, deadline=None)
@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=4), seed=st.integers(0, 2**32 - 1),
       data=st.data())
def test_property_mode_product(shape, seed, data):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal(shape)
    mode = data.draw(st.integers(-len(shape), len(shape) - 1))
    m = data.draw(st.integers(1, 5))
    A = rng.standard_normal((m, shape[mode]))
    assert_allclose(ks.mode_product(X, A, mode), naive.mode_product(X, A, mode), atol=1e-12)
    assert_allclose(ks.mode_product(X, A.T, mode, transpose=True), naive.mode_product(X, A, mode),
                    atol=1e-12)


def test_product_with_kronsum():
    A, B = factors_for([(3, 3), (2, 2)])
    S = ks.kronsum(A, B)
    K = kron(*factors_for([(3, 3), (2, 2)]))
    assert_allclose((K @ S).toarray(), K.toarray() @ S.toarray(), atol=1e-12)
    assert_allclose(((K + K) @ S).toarray(), 2 * K.toarray() @ S.toarray(), atol=1e-12)


@pytest.mark.parametrize("strategy", ["std", "front", "back", "slabs", "fused", "auto"])
@pytest.mark.parametrize("shapes", [[(3, 3), (4, 4), (5, 5)], [(2, 2), (2, 2)],
                                    [(3, 3)] * 4, [(2, 3), (4, 4), (3, 2)]], ids=str)
def test_every_scheme_matches_np_kron(strategy, shapes, monkeypatch):
    """Every execution scheme of the mode products (forced) gives np.kron's answer."""
    import kronsolve._backends._transform as tr

    monkeypatch.setattr(tr, "_STRATEGY", [strategy])
    F = factors_for(shapes)
    K, D = kron(*F), naive.kron(*F)
    for x in (rand(D.shape[1]), rand((D.shape[1], 3)), rand((2, D.shape[1], 2))):
        assert_allclose(K @ x, D @ x, rtol=1e-12, atol=1e-12)
    X = rand(tuple(s[1] for s in shapes))
    assert_allclose(ks.multi_mode_product(X, F).ravel(), D @ X.ravel(), atol=1e-12)


def test_slab_scheme_is_chosen_for_many_right_hand_sides(monkeypatch):
    """``K @ X`` with a block of columns takes the two-pass slab scheme where the
    size limits allow, and it gives np.kron's answer (limits lowered to test size)."""
    import kronsolve._backends._transform as tr
    import kronsolve._backends.numpy as mp

    monkeypatch.setattr(tr, "_SLAB_MIN_BYTES", 1 << 10)
    monkeypatch.setattr(tr, "_PLAN_CACHE", {})
    monkeypatch.setattr(mp, "_fused_plan", lambda *a: None)  # the GEMM schemes' choice
    F = factors_for([(4, 4), (3, 3), (5, 5), (2, 2)])
    D = naive.kron(*F)
    calls = []
    real = mp._apply_slabs
    monkeypatch.setattr(mp, "_apply_slabs", lambda *a: calls.append(1) or real(*a))
    X = rand((4, 3, 5, 2, 7))
    X_before = X.copy()
    Y = ks.multi_mode_product(X, F, modes=[0, 1, 2, 3])
    assert calls, "the slab scheme did not run"
    assert_allclose(Y.reshape(120, 7), D @ X.reshape(120, 7), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(X, X_before)
    # a leading batch axis, a single tensor or rectangular factors keep the others
    calls.clear()
    ks.multi_mode_product(X, F[1:] + [rand((7, 7))])
    ks.multi_mode_product(X[..., 0], F)
    ks.multi_mode_product(X, [rand((3, 4))] + F[1:], modes=[0, 1, 2, 3])
    assert not calls


# ------------------------------------------------------------------ backends
# Every KronProduct method, KronProductSum and the mode products on the array
# library of the ``be`` fixture (conftest.py): inputs converted with be.asarray,
# results of the backend's kind (scalars: NumPy scalars for Dask), equal to the
# references of naive.py.

BE_RECT = [(2, 3), (4, 2), (3, 3)]
BE_SQUARE = [3, 2, 4]


def test_backend_kron_is_a_kronproduct(be):
    rng = np.random.default_rng(40)
    A, B, C = (rand(s, rng=rng) for s in [(2, 3), (3, 2), (2, 2)])
    K = kron(be.asarray(A), be.asarray(B))
    assert type(K) is ks.KronProduct
    assert K.shape == (6, 6)
    assert type(kron(K, be.asarray(C))) is ks.KronProduct
    assert type(K.T) is ks.KronProduct
    assert type(2.0 * K) is ks.KronProduct
    assert type(K + kron(be.asarray(B), be.asarray(A))) is ks.KronProductSum
    S = kron(be.asarray(well_conditioned(2, rng)), be.asarray(well_conditioned(3, rng)))
    assert type(S.inv()) is ks.KronProduct


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.complex128])
def test_backend_kron_matmul_transpose_rmatmul_toarray(be, dtype):
    rng = np.random.default_rng(41)
    F = [rand(s, dtype, rng) for s in BE_RECT]
    K = kron(*[be.asarray(A) for A in F])
    D = naive.kron(*F)
    t = tol(dtype)
    for shape in [(D.shape[1],), (D.shape[1], 2), (2, D.shape[1], 3)]:
        x = rand(shape, dtype, rng)
        got = K @ be.asarray(x)
        be.check_kind(got)
        be.check_dtype(got, (D @ x).dtype)
        assert_allclose(be.to_numpy(got), naive.kron_matvec(F, x), rtol=t, atol=t)
    y = rand(D.shape[0], dtype, rng)
    got = K.T @ be.asarray(y)
    be.check_kind(got)
    assert_allclose(be.to_numpy(got), naive.kron_matvec([A.T for A in F], y), rtol=t, atol=t)
    for v in (y, rand((3, D.shape[0]), dtype, rng)):
        got = be.asarray(v) @ K
        be.check_kind(got)
        assert_allclose(be.to_numpy(got), naive.kron_rmatvec(F, v), rtol=t, atol=t)
    dense = K.toarray()
    be.check_kind(dense)
    assert_allclose(be.to_numpy(dense), D, rtol=t, atol=t)


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_backend_kron_square_algebra(be, dtype):
    """solve, trace, diagonal, slogdet, det, norm, inv and eigvals of backend factors."""
    rng = np.random.default_rng(42)
    F = [well_conditioned(n, rng, dtype) for n in BE_SQUARE]
    K = kron(*[be.asarray(A) for A in F])
    N = naive.kron(*F).shape[0]
    for b in (rand(N, dtype, rng), rand((N, 3), dtype, rng)):
        got = K.solve(be.asarray(b))
        be.check_kind(got)
        assert_allclose(be.to_numpy(got), naive.kron_solve(F, b), rtol=1e-10, atol=1e-12)
    assert_allclose(be.scalar(K.trace()), naive.kron_trace(F), rtol=1e-12)
    diag = K.diagonal()
    be.check_kind(diag)
    assert_allclose(be.to_numpy(diag), naive.kron_diagonal(F), rtol=1e-12, atol=1e-13)
    sign, logdet = K.slogdet()
    sign0, logdet0 = naive.kron_slogdet(F)
    assert_allclose(be.scalar(sign), sign0, rtol=1e-9)
    assert_allclose(be.scalar(logdet), logdet0, rtol=1e-10)
    assert_allclose(be.scalar(K.det()), naive.kron_det(F), rtol=1e-9)
    for ord in (None, "fro", 2, "nuc"):
        assert_allclose(be.scalar(K.norm(ord)), naive.kron_norm(F, ord), rtol=1e-10)
    inv = K.inv()
    assert type(inv) is ks.KronProduct
    dense_inv = inv.toarray()
    be.check_kind(dense_inv)
    assert_allclose(be.to_numpy(dense_inv), naive.kron_inv(F), rtol=1e-9, atol=1e-12)
    ev = K.eigvals()
    be.check_kind(ev)
    assert_allclose(np.sort_complex(be.to_numpy(ev)), np.sort_complex(naive.kron_eigvals(F)),
                    rtol=1e-8, atol=1e-9)


def test_backend_kron_product_sum_matmul(be):
    rng = np.random.default_rng(43)
    F = [rand(s, rng=rng) for s in BE_RECT]
    G = [rand(s, rng=rng) for s in BE_RECT]
    S = kron(*[be.asarray(A) for A in F]) + kron(*[be.asarray(A) for A in G])
    assert type(S) is ks.KronProductSum
    D = naive.kron_product_sum([F, G])
    for shape in [(D.shape[1],), (D.shape[1], 2)]:
        x = rand(shape, rng=rng)
        got = S @ be.asarray(x)
        be.check_kind(got)
        assert_allclose(be.to_numpy(got), D @ x, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", [0, 1, 2, -1])
@pytest.mark.parametrize("transpose", [False, True])
def test_backend_mode_product(be, mode, transpose):
    rng = np.random.default_rng(44)
    X = rng.standard_normal((3, 4, 5))
    A = rng.standard_normal((X.shape[mode], 2) if transpose else (2, X.shape[mode]))
    got = ks.mode_product(be.asarray(X), be.asarray(A), mode, transpose=transpose)
    be.check_kind(got)
    assert_allclose(be.to_numpy(got), naive.mode_product(X, A, mode, transpose),
                    rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("modes", [None, [0, 2], [2, 0, 1], [-1]])
@pytest.mark.parametrize("transpose", [False, True])
def test_backend_multi_mode_product(be, modes, transpose):
    rng = np.random.default_rng(45)
    X = rng.standard_normal((2, 3, 4, 5))
    k = 3 if modes is None else len(modes)
    axes = list(range(4 - k, 4)) if modes is None else [m % 4 for m in modes]
    mats = [rng.standard_normal((X.shape[ax], 2 + i) if transpose else (2 + i, X.shape[ax]))
            for i, ax in enumerate(axes)]
    got = ks.multi_mode_product(be.asarray(X), [be.asarray(A) for A in mats], modes,
                                transpose=transpose)
    be.check_kind(got)
    assert_allclose(be.to_numpy(got), naive.multi_mode_product(X, mats, modes, transpose),
                    rtol=1e-12, atol=1e-12)


def test_backend_kron_matvec(be):
    rng = np.random.default_rng(46)
    F = [rand(s, rng=rng) for s in BE_RECT]
    Fb = [be.asarray(A) for A in F]
    N = naive.kron(*F).shape[1]
    for x in (rand(N, rng=rng), rand((N, 3), rng=rng)):
        for factors in (Fb, F):
            got = ks.kron_matvec(factors, be.asarray(x))
            be.check_kind(got)
            assert_allclose(be.to_numpy(got), naive.kron_matvec(F, x), rtol=1e-12, atol=1e-12)


def test_dask_kron_solve_and_products_are_lazy():
    """Dask right-hand sides: K @ b, K.T @ b, (K + K) @ b and K.solve(b) build graphs only."""
    da = pytest.importorskip("dask.array")

    rng = np.random.default_rng(47)
    F = [well_conditioned(n, rng) for n in (3, 4, 2)]
    b = rng.standard_normal(24)
    bd = da.from_array(b, chunks=5)
    K = kron(*F)
    with no_dask_compute():
        results = [K @ bd, K.T @ bd, (K + 2 * K) @ bd, K.solve(bd)]
    refs = [naive.kron_matvec(F, b), naive.kron_matvec([A.T for A in F], b),
            3 * naive.kron_matvec(F, b), naive.kron_solve(F, b)]
    for got, ref in zip(results, refs):
        assert isinstance(got, da.Array)
        assert_allclose(got.compute(scheduler="sync"), ref, rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------- defects


@pytest.mark.parametrize("shapes", [[(0, 0), (2, 2)], [(2, 2), (0, 0)], [(0, 3), (2, 2)],
                                    [(2, 0), (2, 2)], [(3, 1), (2, 0), (2, 2)]], ids=str)
def test_zero_size_factors(shapes):
    """Empty factors give the empty (or zero) product np.kron gives."""
    rng = np.random.default_rng(50)
    F = [rand(s, rng=rng) for s in shapes]
    K, D = kron(*F), naive.kron(*F)
    assert K.shape == D.shape
    for x in (rand(D.shape[1], rng=rng), rand((D.shape[1], 2), rng=rng)):
        y = K @ x
        assert y.shape == (D @ x).shape
        assert_array_equal(y, D @ x)


@pytest.mark.parametrize("left, right", [
    ([(3, 2), (4, 1)], [(1, 1), (2, 5), (1, 1)]),
    ([(1, 1), (3, 3)], [(3, 3), (1, 1)]),
    ([(2, 1), (1, 3)], [(1, 2), (3, 1)]),
], ids=str)
def test_mixed_product_with_1x1_factors(left, right):
    """K1 @ K2 where 1x1 factors sit at the cut points of the partitions."""
    rng = np.random.default_rng(51)

    def r(*s):
        return rng.standard_normal(s)

    F, G = [r(*s) for s in left], [r(*s) for s in right]
    P = kron(*F) @ kron(*G)
    assert isinstance(P, KronProduct)
    assert_allclose(P.toarray(), naive.kron(*F) @ naive.kron(*G), rtol=1e-12, atol=1e-12)


SCALINGS = {
    "K / 2": lambda K: K / 2,
    "2 * K": lambda K: 2 * K,
    "K * 2.5": lambda K: K * 2.5,
    "K * 1j": lambda K: K * 1j,
}


@pytest.mark.parametrize("dtype", [np.float32, np.complex64, np.bool_, np.int32])
@pytest.mark.parametrize("scale", list(SCALINGS), ids=str)
def test_scalar_multiple_keeps_numpy_dtype(dtype, scale):
    """A Python scalar does not upcast (NumPy's rule): (K / 2) @ x32 is float32."""
    rng = np.random.default_rng(52)
    A, x = rand((3, 3), dtype, rng), rand(9, dtype, rng)
    f = SCALINGS[scale]
    y, y0 = f(kron(A, A)) @ x, f(np.kron(A, A)) @ x
    assert y.dtype == y0.dtype
    t = 1e-5 if y0.dtype in (np.float32, np.complex64) else 1e-12
    assert_allclose(y, y0, rtol=t, atol=t)


def test_masked_arrays_are_refused():
    A = rand((2, 2))
    Am = np.ma.masked_array(A, mask=[[False, True], [False, False]])
    with pytest.raises((ValueError, TypeError), match="(?i)masked"):
        ks.kron(Am, A)
    with pytest.raises((ValueError, TypeError), match="(?i)masked"):
        ks.multi_mode_product(np.ma.array(rand((3, 2))), [A])


@pytest.mark.skipif(np.dtype(np.longdouble) == np.float64,
                    reason="np.longdouble is float64 on this platform")
def test_long_double_is_refused_naming_the_argument():
    A, x = rand((2, 2)), rand(4)
    names = (str(np.dtype(np.longdouble)), "longdouble")
    for k, factors in enumerate([(A.astype(np.longdouble), A), (A, A.astype(np.longdouble))]):
        with pytest.raises(TypeError, match=rf"factors\[{k}\]") as info:
            ks.kron(*factors) @ x
        assert any(n in str(info.value) for n in names), str(info.value)


def test_set_dense_limit_type_error():
    with pytest.raises(TypeError, match="nbytes"):
        ks.set_dense_limit("x")
