"""SciPy LinearOperator interop."""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.sparse.linalg import LinearOperator, aslinearoperator, cg, eigsh, gmres

from kronsolve import kron


def spd(n, rng):
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return Q @ np.diag(rng.uniform(1.0, 4.0, n)) @ Q.T


def test_aslinearoperator_function_and_method():
    rng = np.random.default_rng(0)
    A, B = rng.standard_normal((3, 4)), rng.standard_normal((5, 2))
    K = kron(A, B)
    D = np.kron(A, B)
    for L in (aslinearoperator(K), K.aslinearoperator()):
        assert isinstance(L, LinearOperator)
        assert L.shape == (15, 8)
        assert L.dtype == np.float64
        x = rng.standard_normal(8)
        assert_allclose(L @ x, D @ x)
        assert_allclose(L.matmat(rng.standard_normal((8, 3))).shape, (15, 3))
        y = rng.standard_normal(15)
        assert_allclose(L.rmatvec(y), D.T @ y)
        assert_allclose(L.H @ y, D.T @ y)
        assert_allclose(L.T @ y, D.T @ y)


def test_matmat_is_one_contraction(monkeypatch):
    rng = np.random.default_rng(1)
    K = kron(rng.standard_normal((3, 3)), rng.standard_normal((4, 4)))
    L = K.aslinearoperator()
    calls = []
    orig = type(K)._apply

    def counting(self, be, x, like):
        calls.append(x.shape)
        return orig(self, be, x, like)

    monkeypatch.setattr(type(K), "_apply", counting)
    X = rng.standard_normal((12, 7))
    assert_allclose(L.matmat(X), K.toarray() @ X)
    assert calls == [(12, 7)]


def test_complex_adjoint():
    rng = np.random.default_rng(2)
    A = rng.standard_normal((3, 3)) + 1j * rng.standard_normal((3, 3))
    B = rng.standard_normal((2, 2)) + 1j * rng.standard_normal((2, 2))
    L = kron(A, B).aslinearoperator()
    D = np.kron(A, B)
    y = rng.standard_normal(6) + 1j * rng.standard_normal(6)
    assert L.dtype == np.complex128
    assert_allclose(L.adjoint() @ y, D.conj().T @ y)
    assert_allclose(L.rmatvec(y), D.conj().T @ y)


def test_cg_gmres_eigsh():
    rng = np.random.default_rng(3)
    A, B, C = spd(6, rng), spd(5, rng), spd(4, rng)
    K = kron(A, B, C)
    D = K.toarray()
    b = rng.standard_normal(K.shape[0])
    x, info = cg(aslinearoperator(K), b, rtol=1e-12, maxiter=2000)
    assert info == 0
    assert_allclose(x, np.linalg.solve(D, b), rtol=1e-8, atol=1e-10)
    x, info = gmres(K.aslinearoperator(), b, rtol=1e-12, restart=120, maxiter=200)
    assert info == 0
    assert_allclose(x, np.linalg.solve(D, b), rtol=1e-7, atol=1e-9)
    vals = eigsh(K.aslinearoperator(), k=3, which="LA", return_eigenvectors=False)
    assert_allclose(np.sort(vals), np.sort(np.linalg.eigvalsh(D))[-3:], rtol=1e-8)


@pytest.mark.parametrize("dtype", [np.float32, np.complex64])
def test_linear_operator_dtype(dtype):
    A = np.eye(3, dtype=dtype)
    L = kron(A, A).aslinearoperator()
    assert L.dtype == dtype
    assert (L @ np.ones(9, dtype=dtype)).dtype == dtype
