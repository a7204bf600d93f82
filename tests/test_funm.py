"""Functions of Kronecker sums: expm, expm_multiply, funm_multiply, against dense SciPy."""

from __future__ import annotations

import naive
import numpy as np
import pytest

import kronsolve as ks


def _sym(rng, n, complex_=False):
    A = rng.standard_normal((n, n))
    if complex_:
        A = A + 1j * rng.standard_normal((n, n))
    return -(A @ A.conj().T) / n - np.eye(n)


@pytest.mark.parametrize("ns", [(5,), (3, 4), (2, 3, 4)])
@pytest.mark.parametrize("kind", ["sym", "hermitian", "general"])
def test_expm_matches_scipy(ns, kind):
    rng = np.random.default_rng(len(ns))
    if kind == "general":
        mats = [rng.standard_normal((n, n)) for n in ns]
    else:
        mats = [_sym(rng, n, kind == "hermitian") for n in ns]
    K = ks.kronsum(*mats)
    for t in (0.0, 0.3, -0.2):
        np.testing.assert_allclose(K.expm(t).toarray(), naive.kronsum_expm(mats, t),
                                   rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("complex_", [False, True])
def test_expm_multiply_many_times(complex_):
    rng = np.random.default_rng(7)
    mats = [_sym(rng, n, complex_) for n in (3, 4, 2)]
    K = ks.kronsum(*mats)
    x = rng.standard_normal(24)
    X = rng.standard_normal((24, 3))
    ts = np.array([0.0, 0.05, 0.4, 1.0])
    U = K.expm_multiply(x, ts)
    assert U.shape == (4, 24)
    for i, t in enumerate(ts):
        np.testing.assert_allclose(U[i], naive.kronsum_expm(mats, t) @ x, rtol=1e-10,
                                   atol=1e-12)
    np.testing.assert_allclose(K.expm_multiply(X, 0.3), naive.kronsum_expm(mats, 0.3) @ X,
                               rtol=1e-10, atol=1e-12)
    assert np.isrealobj(K.expm_multiply(x, 0.1)) == (not complex_)


def test_funm_multiply_sqrt_log_inverse_sqrt():
    rng = np.random.default_rng(8)
    mats = [-_sym(rng, n) for n in (3, 4)]  # positive definite
    K = ks.kronsum(*mats)
    x = rng.standard_normal(12)
    for f in (np.sqrt, np.log, lambda s: 1 / np.sqrt(s)):
        np.testing.assert_allclose(K.funm_multiply(f, x), naive.kronsum_funm(mats, f) @ x,
                                   rtol=1e-10, atol=1e-12)
    y = K.funm_multiply(np.sqrt, x)
    np.testing.assert_allclose(K.funm_multiply(np.sqrt, y), K @ x, rtol=1e-10)


def test_errors():
    G = ks.kronsum(np.triu(np.ones((3, 3))), np.eye(2))
    with pytest.raises(ValueError, match="needs symmetric"):
        G.expm_multiply(np.ones(6), 1.0)
    with pytest.raises(ValueError, match="needs symmetric"):
        G.funm_multiply(np.sqrt, np.ones(6))
    K = ks.kronsum(np.eye(2), np.eye(3))
    with pytest.raises(TypeError, match="f must be a callable"):
        K.funm_multiply(3.0, np.ones(6))
    with pytest.raises(ValueError, match="t must be a finite scalar or a 1-D array"):
        K.expm_multiply(np.ones(6), np.ones((2, 2)))
    with pytest.raises(TypeError, match="t must be a real or complex scalar"):
        K.expm(np.ones(2))
    with pytest.raises(ValueError, match="x must have shape|b must have shape"):
        K.expm_multiply(np.ones(5), 1.0)


def test_heat_equation_against_crank_nicolson():
    """u' = Δu on the unit square (Dirichlet): exact steps against Crank–Nicolson."""
    n = 20
    h = 1.0 / (n + 1)
    T = (np.eye(n, k=1) + np.eye(n, k=-1) - 2 * np.eye(n)) / h**2
    K = ks.kronsum(T, T)
    xg = np.linspace(h, 1 - h, n)
    u0 = np.outer(np.sin(np.pi * xg), np.sin(2 * np.pi * xg)).ravel()
    t_end = 0.01
    u_exact = K.expm_multiply(u0, t_end)
    # Crank–Nicolson with a fine step converges to the same semi-discrete solution
    D = K.toarray()
    dt = t_end / 400
    Ip = np.eye(n * n) - 0.5 * dt * D
    Im = np.eye(n * n) + 0.5 * dt * D
    u = u0.copy()
    step = np.linalg.solve(Ip, Im)
    for _ in range(400):
        u = step @ u
    assert np.linalg.norm(u - u_exact) <= 1e-5 * np.linalg.norm(u_exact)
    # and the decay of this eigenmode is exp(-λ t)
    lam = 4 / h**2 * (np.sin(np.pi * h / 2) ** 2 + np.sin(2 * np.pi * h / 2) ** 2)
    np.testing.assert_allclose(u_exact, np.exp(-lam * t_end) * u0, rtol=1e-10, atol=1e-14)


def test_torch_expm_gradient():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(9)
    A0 = torch.tensor(_sym(rng, 3))
    A = A0.clone().requires_grad_(True)
    K = ks.kronsum(A, A0)
    v = K.expm(0.5).toarray().sum()
    v.backward()
    D = torch.kron(A0, torch.eye(3, dtype=torch.float64)) + torch.kron(
        torch.eye(3, dtype=torch.float64), A0)
    np.testing.assert_allclose(float(v.detach()), float(torch.linalg.matrix_exp(0.5 * D).sum()),
                               rtol=1e-10)
    assert A.grad is not None and torch.all(torch.isfinite(A.grad))


def test_torch_funm_and_expm_multiply():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(10)
    mats = [-_sym(rng, n) for n in (3, 4)]
    K = ks.kronsum(*mats)
    Kt = ks.kronsum(*[torch.tensor(A) for A in mats])
    x = rng.standard_normal(12)
    y = Kt.funm_multiply(torch.sqrt, torch.tensor(x))
    assert isinstance(y, torch.Tensor)
    np.testing.assert_allclose(y.numpy(), K.funm_multiply(np.sqrt, x), rtol=1e-10)
    U = Kt.expm_multiply(torch.tensor(x), [0.1, 0.2])
    np.testing.assert_allclose(U.numpy(), K.expm_multiply(x, [0.1, 0.2]), rtol=1e-10)
