"""Gradients by implicit differentiation (PyTorch): solvers, shifted products, KronProduct.

The backward of ``X = L⁻¹B`` is one adjoint solve and contractions (no eigh or eig
differentiated), so repeated eigenvalues are harmless and the gradient with
respect to a symmetric factor is the full one.  References: ``gradcheck``
(finite differences), ``gradgradcheck``, and autograd through the dense system.
"""

from __future__ import annotations

import numpy as np
import pytest

import kronsolve as ks

torch = pytest.importorskip("torch")

gradcheck = torch.autograd.gradcheck
gradgradcheck = torch.autograd.gradgradcheck
f64 = torch.float64


def _t(a, grad=True):
    return torch.tensor(np.asarray(a), requires_grad=grad)


def _spd(rng, n, cplx=False):
    A = rng.standard_normal((n, n))
    if cplx:
        A = A + 1j * rng.standard_normal((n, n))
    return A @ A.conj().T + n * np.eye(n)


def _periodic(n):
    """The periodic 1-D Laplacian: eigenvalues 2 - 2cos(2πk/n), repeated in pairs."""
    L = 2 * np.eye(n) - np.roll(np.eye(n), 1, axis=1) - np.roll(np.eye(n), -1, axis=1)
    return L * n**2


def _dense_op(Ks, Ms, shift):
    """``Σ_k M1 ⊗ … ⊗ K_k ⊗ … ⊗ Md + shift·M1 ⊗ … ⊗ Md`` as a dense tensor (autograd kept)."""
    d = len(Ks)
    Ms = [torch.eye(K.shape[0], dtype=K.dtype) if M is None else M for K, M in zip(Ks, Ms)]
    out = None
    for k in range(d):
        t = None
        for j in range(d):
            f = Ks[j] if j == k else Ms[j]
            t = f if t is None else torch.kron(t, f)
        out = t if out is None else out + t
    t = Ms[0]
    for M in Ms[1:]:
        t = torch.kron(t, M)
    return out + shift * t


def _dense_solve(B, Ks, Ms, shift):
    d = len(Ks)
    ns = tuple(K.shape[0] for K in Ks)
    L = _dense_op(Ks, Ms, shift)
    batch = B.shape[:B.ndim - d]
    Bf = B.reshape(batch + (-1,))
    L = L.to(torch.promote_types(L.dtype, Bf.dtype))
    X = torch.linalg.solve(L, Bf.to(L.dtype).unsqueeze(-1)).squeeze(-1)
    return X.reshape(batch + ns)


def _grads(fn, inputs):
    """Gradients of ``Re Σ w·fn(...)`` for a fixed random weight (complex outputs too)."""
    for x in inputs:
        x.grad = None
    out = fn(*inputs)
    w = torch.from_numpy(np.random.default_rng(99).standard_normal(tuple(out.shape)))
    loss = (w.to(out.dtype) * out).real.sum() if out.is_complex() else (w * out).sum()
    loss.backward()
    return [x.grad.clone() for x in inputs]


# ----------------------------------------------------------------- gradcheck
@pytest.mark.parametrize("method", ["auto", "eig", "schur"])
def test_gradcheck_nonsymmetric(method):
    rng = np.random.default_rng(0)
    A1 = _t(rng.standard_normal((3, 3)) + 4 * np.eye(3))
    A2 = _t(rng.standard_normal((4, 4)) + 4 * np.eye(4))
    B = _t(rng.standard_normal((2, 3, 4)))
    s = _t(np.array(0.3))
    f = lambda B, A1, A2, s: ks.solve_kronsum(B, [A1, A2], shift=s, method=method)  # noqa: E731
    assert gradcheck(f, (B, A1, A2, s))
    assert gradgradcheck(f, (B, A1, A2, s))


def test_gradcheck_symmetric_masses_and_shift():
    rng = np.random.default_rng(1)
    K1, K2, K3 = (_t(_spd(rng, n)) for n in (3, 2, 4))
    M1, M3 = _t(_spd(rng, 3)), _t(_spd(rng, 4))
    B = _t(rng.standard_normal((3, 2, 4)))
    s = _t(np.array(0.7))
    f = lambda B, K1, K2, K3, M1, M3, s: ks.solve_kronsum(  # noqa: E731
        B, [K1, K2, K3], masses=[M1, None, M3], shift=s)
    assert gradcheck(f, (B, K1, K2, K3, M1, M3, s))
    # non-symmetric stiffness with masses (the Schur route, masses folded in)
    N1 = _t(rng.standard_normal((3, 3)) + 5 * np.eye(3))
    assert gradcheck(f, (B, N1, K2, K3, M1, M3, s))


def test_gradgradcheck_symmetric():
    rng = np.random.default_rng(2)
    A = _t(_spd(rng, 3))
    A2 = _t(_spd(rng, 4))
    B = _t(rng.standard_normal((3, 4, 3)))
    f = lambda B, A, A2: ks.solve_sylvester3d(B, A, A2, shift=0.25)  # noqa: E731
    assert gradcheck(f, (B, A, A2))
    assert gradgradcheck(f, (B, A, A2))


def test_gradcheck_complex():
    rng = np.random.default_rng(3)
    H = _t(_spd(rng, 3, cplx=True))
    N = _t(rng.standard_normal((4, 4)) + 1j * rng.standard_normal((4, 4)) + 4 * np.eye(4))
    R = _t(rng.standard_normal((4, 4)) + 4 * np.eye(4))  # real factor, complex data
    B = _t(rng.standard_normal((2, 3, 4)) + 1j * rng.standard_normal((2, 3, 4)))
    s = _t(np.array(0.3 - 0.2j))
    f = lambda B, A1, A2, s: ks.solve_kronsum(B, [A1, A2], shift=s)  # noqa: E731
    assert gradcheck(f, (B, H, N, s))
    assert gradcheck(f, (B, H, R, s))


def test_flat_rhs_and_solver_reuse():
    rng = np.random.default_rng(4)
    A1, A2 = _t(_spd(rng, 3)), _t(rng.standard_normal((4, 4)) + 4 * np.eye(4))
    b = _t(rng.standard_normal(12))
    assert gradcheck(lambda b, A1, A2: ks.solve_kronsum(b, [A1, A2]), (b, A1, A2))
    solver = ks.KronSumSolver([A1, A2])
    assert gradcheck(lambda b: solver.solve(b, shift=0.5), (b,))
    # the factors' graph reaches through a solver built once and used twice
    X = solver.solve(b) + solver.solve(2 * b)
    X.sum().backward()
    assert A1.grad is not None and A2.grad is not None


# ------------------------------------------------- repeated eigenvalues (no NaN)
def test_repeated_eigenvalues_periodic_identical_factors():
    """Periodic Laplacians (eigenvalue pairs) and one factor used three times:
    eigh's backward divides by eigenvalue gaps (inf/NaN here); the implicit
    backward does not."""
    n = 6
    rng = np.random.default_rng(5)
    P = _t(_periodic(n))
    B = _t(rng.standard_normal((n, n, n)))
    lam = np.linalg.eigvalsh(_periodic(n))
    assert np.min(np.diff(lam)) < 1e-9  # repeated indeed
    f = lambda B, P: ks.solve_sylvester3d(B, P, shift=1.5)  # noqa: E731
    gB, gP = _grads(f, [B, P])
    assert torch.isfinite(gP).all() and torch.isfinite(gB).all()
    rB, rP = _grads(lambda B, P: _dense_solve(B, [P, P, P], [None] * 3, 1.5), [B, P])
    torch.testing.assert_close(gP, rP, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(gB, rB, rtol=1e-9, atol=1e-12)


def test_repeated_eigenvalues_shifted_product():
    n = 5
    P = _t(_periodic(n) + np.eye(n))
    s = _t(np.array(0.3))
    b = _t(np.random.default_rng(6).standard_normal(n**3))
    f = lambda b, P, s: ks.kron(P, P, P).shifted(s).solve(b)  # noqa: E731
    g = _grads(f, [b, P, s])
    assert all(torch.isfinite(x).all() for x in g)
    r = _grads(lambda b, P, s: torch.linalg.solve(
        torch.kron(torch.kron(P, P), P) + s * torch.eye(n**3, dtype=f64), b), [b, P, s])
    for x, y in zip(g, r):
        torch.testing.assert_close(x, y, rtol=1e-8, atol=1e-11)
    ld = _grads(lambda P, s: ks.kron(P, P, P).shifted(s).logdet().reshape(1), [P, s])
    rd = _grads(lambda P, s: torch.logdet(torch.kron(torch.kron(P, P), P)
                                          + s * torch.eye(n**3, dtype=f64)).reshape(1), [P, s])
    for x, y in zip(ld, rd):
        assert torch.isfinite(x).all()
        torch.testing.assert_close(x, y, rtol=1e-8, atol=1e-10)


# ------------------------------------------- full gradient of symmetric factors
def test_symmetric_factor_full_gradient_along_nonsymmetric_direction():
    """The issue's case: a symmetric A, the derivative along a non-symmetric
    direction E against central differences (the solve accepts any A)."""
    rng = np.random.default_rng(7)
    n = 4
    A0 = _spd(rng, n)
    B0 = rng.standard_normal((n, n, n))
    W = rng.standard_normal((n, n, n))
    E = np.zeros((n, n))
    E[0, 1] = 1.0  # one off-diagonal entry: not symmetric

    def loss(A):
        return float(np.sum(W * ks.solve_sylvester3d(B0, A)))

    h = 1e-6
    fd = (loss(A0 + h * E) - loss(A0 - h * E)) / (2 * h)
    A = _t(A0)
    (torch.from_numpy(W) * ks.solve_sylvester3d(torch.from_numpy(B0), A)).sum().backward()
    g = A.grad.numpy()
    assert abs(g[0, 1] - fd) <= 1e-7 * max(1.0, abs(fd))
    assert abs(g[0, 1] - g[1, 0]) > 1e-6 * abs(g[0, 1])  # not the symmetrized gradient
    # the full gradient matrix against autograd through the dense system
    B = torch.from_numpy(B0)
    r = _grads(lambda A: _dense_solve(B, [A, A, A], [None] * 3, 0.0), [_t(A0)])[0]
    g2 = _grads(lambda A: ks.solve_sylvester3d(B, A), [_t(A0)])[0]
    torch.testing.assert_close(g2, r, rtol=1e-9, atol=1e-12)


def test_method_eigh_gives_the_symmetrized_gradient():
    """``method="eigh"`` solves with the Hermitian part, so its gradient is that
    of ``A -> L((A + Aᵀ)/2)⁻¹ B``: symmetric, and right along any direction."""
    rng = np.random.default_rng(8)
    n = 3
    A0 = _spd(rng, n) + 0.3 * rng.standard_normal((n, n))  # not symmetric
    B0 = rng.standard_normal((n, n))
    A = _t(A0)
    ks.solve_kronsum(torch.from_numpy(B0), [A, A], method="eigh").sum().backward()
    S = 0.5 * (A0 + A0.T)
    Sd = _t(S)
    _dense_solve(torch.from_numpy(B0), [Sd, Sd], [None, None], 0.0).sum().backward()
    g_ref = 0.5 * (Sd.grad + Sd.grad.T)
    torch.testing.assert_close(A.grad, g_ref, rtol=1e-9, atol=1e-12)


def test_against_dense_autograd_batched_masses():
    rng = np.random.default_rng(9)
    K1 = _t(rng.standard_normal((3, 3)) + 4 * np.eye(3))
    K2 = _t(_spd(rng, 2))
    M1, M2 = _t(_spd(rng, 3)), _t(_spd(rng, 2))
    s = _t(np.array(-0.2))
    B = _t(rng.standard_normal((4, 3, 2)))
    ins = [B, K1, K2, M1, M2, s]
    g = _grads(lambda B, K1, K2, M1, M2, s: ks.solve_kronsum(B, [K1, K2], masses=[M1, M2],
                                                            shift=s), ins)
    r = _grads(lambda B, K1, K2, M1, M2, s: _dense_solve(B, [K1, K2], [M1, M2], s), ins)
    for x, y in zip(g, r):
        torch.testing.assert_close(x, y, rtol=1e-8, atol=1e-11)


def test_numpy_factors_tensor_rhs():
    rng = np.random.default_rng(10)
    A = _spd(rng, 4)
    B = _t(rng.standard_normal((4, 4, 4)))
    assert gradcheck(lambda B: ks.solve_sylvester3d(B, A), (B,))


# ------------------------------------------------------ shifted Kronecker GP
def _sym(S):
    n = S.shape[0]
    return S + S.T + 2 * n * torch.eye(n, dtype=f64)


def test_shifted_gradcheck_every_factor_shift_and_diag():
    rng = np.random.default_rng(11)
    S1, S2 = _t(rng.standard_normal((3, 3))), _t(rng.standard_normal((4, 4)))
    s = _t(np.array(0.4))
    b = _t(rng.standard_normal(12))
    Bm = _t(rng.standard_normal((2, 12, 3)))
    d1, d2 = _t(rng.random(3) + 0.5), _t(rng.random(4) + 0.5)

    def op(S1, S2, s, diag=None):
        return ks.kron(_sym(S1), _sym(S2)).shifted(s, diag=diag)

    assert gradcheck(lambda b, S1, S2, s: op(S1, S2, s).solve(b), (b, S1, S2, s))
    assert gradcheck(lambda b, S1, S2, s: op(S1, S2, s).solve(b), (Bm, S1, S2, s))
    assert gradcheck(lambda b, S1, S2, s: op(S1, S2, s).quad(b), (Bm, S1, S2, s))
    assert gradcheck(lambda S1, S2, s: op(S1, S2, s).logdet(), (S1, S2, s))
    assert gradcheck(lambda S1, S2, s: op(S1, S2, s).slogdet()[1], (S1, S2, s))
    assert gradcheck(lambda b, S1, S2, s, d1, d2: op(S1, S2, s, [d1, d2]).solve(b),
                     (b, S1, S2, s, d1, d2))
    assert gradcheck(lambda S1, S2, s, d1, d2: op(S1, S2, s, [d1, d2]).logdet(),
                     (S1, S2, s, d1, d2))


def test_shifted_full_gradient_against_dense():
    rng = np.random.default_rng(12)
    A1, A2 = _t(_spd(rng, 3)), _t(_spd(rng, 4))
    s = _t(np.array(0.2))
    b = _t(rng.standard_normal(12))
    ins = [b, A1, A2, s]
    g = _grads(lambda b, A1, A2, s: ks.kron(A1, A2).shifted(s).solve(b), ins)
    r = _grads(lambda b, A1, A2, s: torch.linalg.solve(
        torch.kron(A1, A2) + s * torch.eye(12, dtype=f64), b), ins)
    for x, y in zip(g, r):
        torch.testing.assert_close(x, y, rtol=1e-9, atol=1e-12)
    assert (g[1] - g[1].T).abs().max() > 1e-8  # the full, unsymmetrized gradient


# ---------------------------------------------------------- Kronecker product
def test_kronproduct_solve_and_logdet_gradients():
    rng = np.random.default_rng(13)
    A1 = _t(rng.standard_normal((3, 3)) + 3 * np.eye(3))
    A2 = _t(rng.standard_normal((2, 2)) + 3 * np.eye(2))
    b = _t(rng.standard_normal(6))
    assert gradcheck(lambda b, A1, A2: ks.kron(A1, A2).solve(b), (b, A1, A2))
    assert gradcheck(lambda A1, A2: ks.kron(A1, A2).slogdet()[1], (A1, A2))
    assert gradgradcheck(lambda b, A1, A2: ks.kron(A1, A2).solve(b), (b, A1, A2))


def test_no_grad_path_unchanged():
    """Without gradients the solve is the plain one (a NumPy-equal result)."""
    rng = np.random.default_rng(14)
    A = _spd(rng, 5)
    B = rng.standard_normal((5, 5, 5))
    with torch.no_grad():
        X = ks.solve_sylvester3d(torch.from_numpy(B), _t(A))
    np.testing.assert_allclose(X.numpy(), ks.solve_sylvester3d(B, A), rtol=1e-12)
    assert not X.requires_grad
