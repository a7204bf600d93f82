"""KronProduct against explicit np.kron."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from naive import kron_dense
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
        D = kron_dense(*F)
        assert K.shape == D.shape
        assert K.ndim == 2
        assert K.dtype == D.dtype
        assert len(K.factors) == len(F)
        assert_array_equal(K.toarray(), D)
        assert_array_equal(np.asarray(K), D)

    def test_matvec(self, shapes):
        F = factors_for(shapes)
        K, D = kron(*F), kron_dense(*F)
        x = rand(D.shape[1])
        assert_allclose(K @ x, D @ x, rtol=1e-12, atol=1e-12)
        assert (K @ x).shape == (D @ x).shape

    def test_matmat_and_batches(self, shapes):
        F = factors_for(shapes)
        K, D = kron(*F), kron_dense(*F)
        for shape in [(D.shape[1], 1), (D.shape[1], 5), (2, D.shape[1], 3), (2, 1, D.shape[1], 2)]:
            x = rand(shape)
            y = K @ x
            assert y.shape == (D @ x).shape
            assert_allclose(y, D @ x, rtol=1e-12, atol=1e-12)

    def test_rmatmul(self, shapes):
        F = factors_for(shapes)
        K, D = kron(*F), kron_dense(*F)
        for shape in [(D.shape[0],), (4, D.shape[0]), (2, 3, D.shape[0])]:
            x = rand(shape)
            y = x @ K
            assert y.shape == (x @ D).shape
            assert_allclose(y, x @ D, rtol=1e-12, atol=1e-12)

    def test_transpose_conj_scalar(self, shapes):
        F = factors_for(shapes, np.complex128)
        K, D = kron(*F), kron_dense(*F)
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
        DS = kron_dense(*F) + kron_dense(*G)
        assert isinstance(S, KronProductSum)
        assert_allclose(S.toarray(), DS, atol=1e-12)
        x = rand(DS.shape[1])
        assert_allclose(S @ x, DS @ x, rtol=1e-12, atol=1e-12)
        X = rand((DS.shape[1], 3))
        assert_allclose(S @ X, DS @ X, rtol=1e-12, atol=1e-12)
        assert_allclose(S.T.toarray(), DS.T, atol=1e-12)
        assert_allclose((S - kron(*G)).toarray(), kron_dense(*F), atol=1e-12)
        assert_allclose((S + S).toarray(), 2 * DS, atol=1e-12)
        y = rand(DS.shape[0])
        assert_allclose(y @ S, y @ DS, rtol=1e-12, atol=1e-12)

    def test_diagonal_and_norms(self, shapes):
        F = factors_for(shapes)
        K, D = kron(*F), kron_dense(*F)
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
        K, D = kron(*F), kron_dense(*F)
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
        K, D = kron(*F), kron_dense(*F)
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
        K, D = kron(*F), kron_dense(*F)
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
    assert_array_equal(K.toarray(), kron_dense(A, B, C))
    assert len(kron(A, kron(B, C)).factors) == 3


def test_mixed_product_rule():
    A, B, C = factors_for([(2, 3), (4, 2), (3, 3)])
    E, F, G = factors_for([(3, 2), (2, 5), (3, 1)])
    K = kron(A, B, C) @ kron(E, F, G)
    assert isinstance(K, KronProduct)
    assert len(K.factors) == 3
    assert_allclose(K.toarray(), kron_dense(A, B, C) @ kron_dense(E, F, G), atol=1e-12)


def test_mixed_product_regroups_factors():
    A, B, C = factors_for([(2, 2), (3, 3), (4, 4)])
    E, F = factors_for([(6, 6), (4, 2)])
    K = kron(A, B, C) @ kron(E, F)
    assert isinstance(K, KronProduct)
    assert_allclose(K.toarray(), kron_dense(A, B, C) @ kron_dense(E, F), atol=1e-12)
    # no common cut point: the whole thing becomes one factor
    G, H = factors_for([(4, 4), (6, 6)])
    K2 = kron(A, B, C) @ kron(G, H)
    assert_allclose(K2.toarray(), kron_dense(A, B, C) @ kron_dense(G, H), atol=1e-12)


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
    K, D = kron(*F), kron_dense(*F)
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
    K, D = kron(A, B), kron_dense(A, B)
    assert K.dtype == D.dtype == np.complex128
    x = rand(6, np.float32)
    assert_allclose(K @ x, D @ x, rtol=1e-6)


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
def test_sparse_factors(fmt):
    A = sp.random(5, 4, density=0.5, format=fmt, random_state=0)
    B = rand((3, 3))
    C = sp.random_array((2, 6), density=0.5, format=fmt, random_state=1)
    for F in ([A, B, C], [B, A], [A], [B, C, B]):
        K, D = kron(*F), kron_dense(*F)
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
    D = kron_dense(A, B, C)
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
    K, D = kron(A, B), kron_dense(A, B)
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
    with pytest.raises(ValueError, match=r"factors\[0\].*\(2, 2, 2\)"):
        kron(np.ones((2, 2, 2)))
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
    K, D = kron(*F), kron_dense(*F)
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
    K, D = kron(*F), kron_dense(*F)
    b = rng.standard_normal(D.shape[0])
    x = K.solve(b)
    eps = np.finfo(float).eps
    res = np.linalg.norm(b - D @ x) / (np.linalg.norm(D, 2) * np.linalg.norm(x) * eps)
    assert res < 30


@settings(max_examples=40, deadline=None)
@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=4), seed=st.integers(0, 2**32 - 1),
       data=st.data())
def test_property_mode_product(shape, seed, data):
    from naive import mode_product_naive

    rng = np.random.default_rng(seed)
    X = rng.standard_normal(shape)
    mode = data.draw(st.integers(-len(shape), len(shape) - 1))
    m = data.draw(st.integers(1, 5))
    A = rng.standard_normal((m, shape[mode]))
    assert_allclose(ks.mode_product(X, A, mode), mode_product_naive(X, A, mode), atol=1e-12)
    assert_allclose(ks.mode_product(X, A.T, mode, transpose=True), mode_product_naive(X, A, mode),
                    atol=1e-12)


def test_product_with_kronsum():
    A, B = factors_for([(3, 3), (2, 2)])
    S = ks.kronsum(A, B)
    K = kron(*factors_for([(3, 3), (2, 2)]))
    assert_allclose((K @ S).toarray(), K.toarray() @ S.toarray(), atol=1e-12)
    assert_allclose(((K + K) @ S).toarray(), 2 * K.toarray() @ S.toarray(), atol=1e-12)


@pytest.mark.parametrize("strategy", ["std", "front", "back", "slabs", "auto"])
@pytest.mark.parametrize("shapes", [[(3, 3), (4, 4), (5, 5)], [(2, 2), (2, 2)],
                                    [(3, 3)] * 4, [(2, 3), (4, 4), (3, 2)]], ids=str)
def test_every_scheme_matches_np_kron(strategy, shapes, monkeypatch):
    """Every execution scheme of the mode products (forced) gives np.kron's answer."""
    import kronsolve._modeprod as mp

    monkeypatch.setattr(mp, "_STRATEGY", [strategy])
    F = factors_for(shapes)
    K, D = kron(*F), kron_dense(*F)
    for x in (rand(D.shape[1]), rand((D.shape[1], 3)), rand((2, D.shape[1], 2))):
        assert_allclose(K @ x, D @ x, rtol=1e-12, atol=1e-12)
    X = rand(tuple(s[1] for s in shapes))
    assert_allclose(ks.multi_mode_product(X, F).ravel(), D @ X.ravel(), atol=1e-12)


def test_slab_scheme_is_chosen_for_many_right_hand_sides(monkeypatch):
    """``K @ X`` with a block of columns takes the two-pass slab scheme where the
    size limits allow, and it gives np.kron's answer (limits lowered to test size)."""
    import kronsolve._modeprod as mp

    monkeypatch.setattr(mp, "_SLAB_MIN_BYTES", 1 << 10)
    monkeypatch.setattr(mp, "_PLAN_CACHE", {})
    F = factors_for([(4, 4), (3, 3), (5, 5), (2, 2)])
    D = kron_dense(*F)
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
