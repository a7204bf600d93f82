"""JAX as a backend: jax.Array in and out, jax.grad (custom_vjp, implicit backward),
jax.jit and jax.vmap.  Skipped where JAX is not installed (``pip install -e ".[jax]"``)."""

from __future__ import annotations

import numpy as np
import pytest

import kronsolve as ks

jax = pytest.importorskip("jax")
pytest.importorskip("array_api_compat")
jax.config.update("jax_enable_x64", True)
jnp = jax.numpy
from jax.test_util import check_grads  # noqa: E402


def _spd(rng, n):
    A = rng.standard_normal((n, n))
    return A @ A.T + n * np.eye(n)


def _periodic(n):
    L = 2 * np.eye(n) - np.roll(np.eye(n), 1, axis=1) - np.roll(np.eye(n), -1, axis=1)
    return L * n**2


def _rev(f, args):
    check_grads(f, args, order=1, modes=["rev"], atol=1e-6, rtol=1e-6)


# --------------------------------------------------------------- products
def test_products_return_jax_arrays_and_jit():
    rng = np.random.default_rng(0)
    A, B, C = (jnp.asarray(rng.standard_normal((k + 2, k + 2))) for k in range(3))
    X = jnp.asarray(rng.standard_normal((2, 3, 4)))
    ref = ks.multi_mode_product(np.asarray(X), [np.asarray(A), np.asarray(B), np.asarray(C)])
    Y = ks.multi_mode_product(X, [A, B, C])
    assert isinstance(Y, jax.Array)
    np.testing.assert_allclose(np.asarray(Y), ref, rtol=1e-12)
    Yj = jax.jit(lambda X, A, B, C: ks.multi_mode_product(X, [A, B, C]))(X, A, B, C)
    np.testing.assert_allclose(np.asarray(Yj), ref, rtol=1e-12)
    y = jax.jit(lambda x, A, B, C: ks.kron(A, B, C) @ x)(X.reshape(-1), A, B, C)
    assert isinstance(y, jax.Array)
    np.testing.assert_allclose(np.asarray(y), ref.reshape(-1), rtol=1e-12)
    _rev(lambda X, A, B, C: ks.multi_mode_product(X, [A, B, C]), (X, A, B, C))


def test_kronproduct_solve_logdet_grads_jit():
    rng = np.random.default_rng(1)
    A1 = jnp.asarray(rng.standard_normal((3, 3)) + 3 * np.eye(3))
    A2 = jnp.asarray(rng.standard_normal((2, 2)) + 3 * np.eye(2))
    b = jnp.asarray(rng.standard_normal(6))
    ref = np.linalg.solve(np.kron(np.asarray(A1), np.asarray(A2)), np.asarray(b))
    x = jax.jit(lambda b, A1, A2: ks.kron(A1, A2).solve(b))(b, A1, A2)
    np.testing.assert_allclose(np.asarray(x), ref, rtol=1e-12)
    _rev(lambda b, A1, A2: ks.kron(A1, A2).solve(b), (b, A1, A2))
    _rev(jax.jit(lambda A1, A2: ks.kron(A1, A2).slogdet()[1]), (A1, A2))


# ------------------------------------------------------------------ solvers
def test_solve_matches_numpy_eager_jit_vmap():
    rng = np.random.default_rng(2)
    A1, A2 = _spd(rng, 4), _spd(rng, 5)
    B = rng.standard_normal((3, 4, 5))
    ref = ks.solve_kronsum(B, [A1, A2], shift=0.3)
    J = [jnp.asarray(a) for a in (B, A1, A2)]
    X = ks.solve_kronsum(J[0], J[1:], shift=0.3)
    assert isinstance(X, jax.Array)
    np.testing.assert_allclose(np.asarray(X), ref, rtol=1e-12)
    f = jax.jit(lambda B, A1, A2: ks.solve_kronsum(B, [A1, A2], shift=0.3, method="eigh"))
    np.testing.assert_allclose(np.asarray(f(*J)), ref, rtol=1e-12)
    # vmap over right-hand sides, the factors concrete (any method) or traced
    g = jax.vmap(lambda b: ks.solve_kronsum(b, J[1:], shift=0.3))
    np.testing.assert_allclose(np.asarray(g(J[0])), ref, rtol=1e-12)
    h = jax.jit(jax.vmap(lambda b, A1, A2: ks.solve_kronsum(b, [A1, A2], shift=0.3,
                                                           method="eigh"),
                         in_axes=(0, None, None)))
    np.testing.assert_allclose(np.asarray(h(*J)), ref, rtol=1e-12)
    # flat right-hand side, solve_sylvester3d, KronSumSolver
    b = jnp.asarray(rng.standard_normal(20))
    np.testing.assert_allclose(np.asarray(ks.solve_kronsum(b, J[1:])),
                               ks.solve_kronsum(np.asarray(b), [A1, A2]), rtol=1e-12)
    B3 = rng.standard_normal((4, 4, 4))
    np.testing.assert_allclose(np.asarray(ks.solve_sylvester3d(jnp.asarray(B3), J[1])),
                               ks.solve_sylvester3d(B3, A1), rtol=1e-12)
    S = ks.KronSumSolver(J[1:])
    np.testing.assert_allclose(np.asarray(jax.jit(lambda B: S.solve(B, 0.3))(J[0])), ref,
                               rtol=1e-12)


@pytest.mark.parametrize("jit", [False, True])
def test_grads_symmetric_masses_shift(jit):
    rng = np.random.default_rng(3)
    K1, K2, M1, M2 = (jnp.asarray(_spd(rng, n)) for n in (3, 4, 3, 4))
    B = jnp.asarray(rng.standard_normal((2, 3, 4)))
    s = jnp.asarray(0.4)
    method = "eigh" if jit else "auto"
    f = lambda B, K1, K2, M1, M2, s: ks.solve_kronsum(  # noqa: E731
        B, [K1, K2], masses=[M1, M2], shift=s, method=method)
    _rev(jax.jit(f) if jit else f, (B, K1, K2, M1, M2, s))


@pytest.mark.parametrize("method,jit", [("auto", False), ("schur", False), ("eig", True)])
def test_grads_nonsymmetric(method, jit):
    rng = np.random.default_rng(4)
    N1 = jnp.asarray(rng.standard_normal((3, 3)) + 4 * np.eye(3))
    N2 = jnp.asarray(rng.standard_normal((4, 4)) + 4 * np.eye(4))
    B = jnp.asarray(rng.standard_normal((3, 4)))
    s = jnp.asarray(0.25)
    f = lambda B, N1, N2, s: ks.solve_kronsum(B, [N1, N2], shift=s, method=method)  # noqa: E731
    _rev(jax.jit(f) if jit else f, (B, N1, N2, s))
    ref = ks.solve_kronsum(np.asarray(B), [np.asarray(N1), np.asarray(N2)], shift=0.25)
    np.testing.assert_allclose(np.asarray((jax.jit(f) if jit else f)(B, N1, N2, s)), ref,
                               rtol=1e-10)


def test_grads_complex():
    rng = np.random.default_rng(5)
    H = rng.standard_normal((3, 3)) + 1j * rng.standard_normal((3, 3))
    H = jnp.asarray(H @ H.conj().T + 3 * np.eye(3))
    N = jnp.asarray(rng.standard_normal((4, 4)) + 1j * rng.standard_normal((4, 4))
                    + 4 * np.eye(4))
    B = jnp.asarray(rng.standard_normal((3, 4)) + 1j * rng.standard_normal((3, 4)))
    s = jnp.asarray(0.3 + 0.1j)
    f = lambda B, A1, A2, s: ks.solve_kronsum(B, [A1, A2], shift=s)  # noqa: E731
    _rev(f, (B, H, N, s))
    fj = jax.jit(lambda B, A1, A2, s: ks.solve_kronsum(B, [A1, A2], shift=s, method="eig"))
    _rev(fj, (B, H, N, s))


def test_repeated_eigenvalues_no_nan_and_full_gradient():
    n = 5
    rng = np.random.default_rng(6)
    P = jnp.asarray(_periodic(n))
    B = jnp.asarray(rng.standard_normal((n, n, n)))
    W = jnp.asarray(rng.standard_normal((n, n, n)))

    def loss(P):
        return jnp.sum(W * ks.solve_sylvester3d(B, P, shift=1.5))

    g = jax.grad(loss)(P)
    gj = jax.jit(jax.grad(lambda P: jnp.sum(W * ks.solve_sylvester3d(B, P, shift=1.5,
                                                                       method="eigh"))))(P)
    assert np.all(np.isfinite(np.asarray(g))) and np.all(np.isfinite(np.asarray(gj)))
    # against the dense system (full gradient, unsymmetrized)
    I = jnp.eye(n)

    def dense(P):
        L = (jnp.kron(jnp.kron(P, I), I) + jnp.kron(jnp.kron(I, P), I)
             + jnp.kron(jnp.kron(I, I), P) + 1.5 * jnp.eye(n**3))
        return jnp.sum(W * jnp.linalg.solve(L, B.reshape(-1)).reshape(n, n, n))

    r = jax.grad(dense)(P)
    np.testing.assert_allclose(np.asarray(g), np.asarray(r), rtol=1e-9, atol=1e-12)
    # method="eigh" solves with the symmetric part: its gradient is symmetrized
    np.testing.assert_allclose(np.asarray(gj), 0.5 * np.asarray(r + r.T), rtol=1e-9,
                               atol=1e-12)
    assert float(jnp.max(jnp.abs(r - r.T))) > 1e-8


def test_traced_checks_give_nan_or_clear_errors():
    rng = np.random.default_rng(7)
    A = jnp.asarray(_spd(rng, 3))
    B = jnp.asarray(rng.standard_normal((3, 3)))
    # singular: the eager route raises, the traced one returns NaN
    with pytest.raises(np.linalg.LinAlgError):
        ks.solve_kronsum(B, [A, A], shift=-float(2 * np.linalg.eigvalsh(np.asarray(A))[0]))
    lam0 = float(np.linalg.eigvalsh(np.asarray(A))[0])
    X = jax.jit(lambda B, A, s: ks.solve_kronsum(B, [A, A], shift=s, method="eigh"))(
        B, A, jnp.asarray(-2 * lam0))
    assert np.all(np.isnan(np.asarray(X)))
    # route choice needs concrete factors
    with pytest.raises(TypeError, match="method='eigh'"):
        jax.jit(lambda B, A: ks.solve_kronsum(B, [A, A]))(B, A)
    with pytest.raises(TypeError, match="concrete JAX factors"):
        jax.jit(lambda A: ks.KronSumSolver([A, A]).solve(B))(A)
    N = jnp.asarray(rng.standard_normal((3, 3)) + 4 * np.eye(3))
    with pytest.raises(TypeError, match="Schur route"):
        jax.vmap(lambda b: ks.solve_kronsum(b, [N, N]))(jnp.stack([B, B]))
    # a defective factor on the traced eig route: NaN, not a wrong number
    J = jnp.asarray(np.eye(4) * 2 + np.eye(4, k=1))
    Bj = jnp.asarray(rng.standard_normal((4, 4)))
    Xe = jax.jit(lambda B, J: ks.solve_kronsum(B, [J, J], method="eig"))(Bj, J)
    Xs = ks.solve_kronsum(np.asarray(Bj), [np.asarray(J)] * 2)
    Xe = np.asarray(Xe)
    assert np.all(np.isnan(Xe)) or np.allclose(Xe, Xs, rtol=1e-8)


def test_shifted_product_eager():
    rng = np.random.default_rng(8)
    C = _spd(rng, 4)
    y = rng.standard_normal(16)
    S = ks.kron(jnp.asarray(C), jnp.asarray(C)).shifted(0.1)
    D = np.kron(C, C) + 0.1 * np.eye(16)
    np.testing.assert_allclose(np.asarray(S.solve(jnp.asarray(y))), np.linalg.solve(D, y),
                               rtol=1e-10)
    np.testing.assert_allclose(float(S.logdet()), np.linalg.slogdet(D)[1], rtol=1e-12)
