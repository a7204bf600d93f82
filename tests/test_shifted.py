"""Shifted Kronecker products ``K + σ²I`` (Gaussian processes on grids), against dense."""

from __future__ import annotations

import naive
import numpy as np
import pytest

import kronsolve as ks


def _kernel(n, ell, rng=None, complex_=False):
    x = np.linspace(0.0, 1.0, n)
    C = np.exp(-((x[:, None] - x[None, :]) ** 2) / ell)
    if complex_:
        B = rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))
        C = C + 0.1 * (B @ B.conj().T)
    return C


@pytest.mark.parametrize("ns", [(6,), (4, 5), (3, 4, 2), (2, 3, 2, 3)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.complex128])
def test_against_dense(ns, dtype):
    rng = np.random.default_rng(len(ns))
    cplx = np.dtype(dtype).kind == "c"
    factors = [_kernel(n, 0.1 + 0.1 * k, rng, cplx).astype(dtype) for k, n in enumerate(ns)]
    shift = 0.05
    S = ks.kron(*factors).shifted(shift)
    D = naive.shifted_kron(factors, shift)
    N = D.shape[0]
    tol = 1e-4 if np.dtype(dtype) == np.float32 else 1e-9
    b = rng.standard_normal(N).astype(dtype)
    B = rng.standard_normal((N, 3)).astype(dtype)
    ref = np.linalg.solve(D.astype(np.complex128 if cplx else np.float64), B)
    np.testing.assert_allclose(S.solve(B), ref, rtol=tol * 100, atol=tol * np.abs(ref).max())
    np.testing.assert_allclose(S.solve(b), ref[:, :0].sum(1) + np.linalg.solve(D, b),
                               rtol=tol * 100, atol=tol * 10 * np.abs(ref).max())
    sign, logdet = S.slogdet()
    rs, rl = np.linalg.slogdet(D.astype(np.complex128 if cplx else np.float64))
    assert np.isclose(logdet, rl, rtol=tol, atol=tol * N)
    assert np.isclose(sign, rs, atol=1e-6)
    assert np.isclose(S.logdet(), rl, rtol=tol, atol=tol * N)
    q = np.real(np.vdot(b, np.linalg.solve(D, b)))
    assert np.isclose(S.quad(b), q, rtol=tol * 100)
    np.testing.assert_allclose(S @ b, D @ b, rtol=tol * 10, atol=tol * 10)
    np.testing.assert_allclose(S.diagonal(), np.diag(D), rtol=tol)
    assert np.isclose(S.trace(), np.trace(D), rtol=tol)
    np.testing.assert_allclose(S.toarray(), D, rtol=tol, atol=tol)
    np.testing.assert_allclose(np.sort(S.eigenvalues().reshape(-1).real),
                               np.sort(np.linalg.eigvalsh(D)), rtol=tol * 10, atol=tol * 10)


def test_sample_covariance():
    """The sample covariance of 40 000 draws matches K + σ²I (4.5 standard errors)."""
    factors = [_kernel(4, 0.2), _kernel(3, 0.5)]
    S = ks.kron(*factors).shifted(0.1)
    D = naive.shifted_kron(factors, 0.1)
    n = 40_000
    Z = S.sample(np.random.default_rng(0), n)
    assert Z.shape == (n, 12)
    C = Z.T @ Z / n
    se = np.sqrt((np.outer(np.diag(D), np.diag(D)) + D**2) / n)
    assert np.all(np.abs(C - D) <= 4.5 * se)
    assert np.abs(Z.mean(axis=0)).max() <= 4.5 * np.sqrt(np.diag(D).max() / n)
    assert S.sample(1).shape == (12,)
    assert S.sample(1, (2, 5)).shape == (2, 5, 12)


def test_errors():
    C = _kernel(4, 0.2)
    G = np.triu(np.ones((4, 4)))
    with pytest.raises(ValueError, match=r"needs symmetric \(Hermitian\) factors.*factors\[1\]"):
        ks.kron(C, G).shifted(0.1)
    with pytest.raises(ValueError, match="needs square factors"):
        ks.kron(C, np.ones((2, 3))).shifted(0.1)
    with pytest.raises(TypeError, match="shift must be"):
        ks.kron(C, C).shifted(np.ones(2))
    S = ks.kron(C, C).shifted(0.1)
    with pytest.raises(ValueError, match=r"b must have shape \(16,\)"):
        S.solve(np.ones(5))
    # a shift that cancels an eigenvalue: singular
    lam = np.linalg.eigvalsh(C)
    T = ks.kron(C).shifted(-lam[0])
    with pytest.raises(np.linalg.LinAlgError, match="singular to working precision"):
        T.solve(np.ones(4))
    # below the smallest eigenvalue: indefinite
    U = ks.kron(C, C).shifted(-2 * lam.min() * lam.max())
    with pytest.raises(np.linalg.LinAlgError, match="not positive definite"):
        U.logdet()
    with pytest.raises(np.linalg.LinAlgError, match="positive semidefinite"):
        U.sample(0)
    assert U.slogdet()[0] == -1.0 or U.slogdet()[0] == 1.0  # defined all the same


def test_same_factor_decomposed_once(monkeypatch):
    from kronsolve._backends import numpy as npb

    calls = []
    orig = npb.NumpyBackend.eigh

    def counting(self, A, name):
        calls.append(name)
        return orig(self, A, name)

    monkeypatch.setattr(npb.NumpyBackend, "eigh", counting)
    C = _kernel(5, 0.2)
    ks.kron(C, C, C).shifted(0.1)
    assert calls == ["factors[0]"]


def test_torch_gradients_of_log_marginal_likelihood():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x = torch.linspace(0, 1, 5, dtype=torch.float64)
    y = torch.tensor(rng.standard_normal(25))

    def nll(log_ell, log_s2):
        C = torch.exp(-((x[:, None] - x[None, :]) ** 2) / torch.exp(log_ell))
        S = ks.kron(C, C).shifted(torch.exp(log_s2))
        return 0.5 * S.quad(y) + 0.5 * S.logdet()

    p = torch.tensor([-1.5, -3.0], dtype=torch.float64, requires_grad=True)
    val = nll(p[0], p[1])
    val.backward()
    h = 1e-6
    for i in range(2):
        e = torch.zeros(2, dtype=torch.float64)
        e[i] = h
        with torch.no_grad():
            fd = (nll(*(p + e)) - nll(*(p - e))) / (2 * h)
        assert torch.isclose(p.grad[i], fd, rtol=1e-5, atol=1e-7), (i, p.grad[i], fd)
    # and the value against the dense formula
    with torch.no_grad():
        C = torch.exp(-((x[:, None] - x[None, :]) ** 2) / torch.exp(p[0]))
        D = torch.kron(C, C) + torch.exp(p[1]) * torch.eye(25, dtype=torch.float64)
        dense = 0.5 * y @ torch.linalg.solve(D, y) + 0.5 * torch.linalg.slogdet(D)[1]
        assert torch.isclose(val.detach(), dense, rtol=1e-10)


def _numpy_and(convert):
    """The same shifted product with NumPy factors and with ``convert``'s, and a b."""
    factors = [_kernel(4, 0.2), _kernel(3, 0.5)]
    return (ks.kron(*factors).shifted(0.1),
            ks.kron(*[convert(f) for f in factors]).shifted(0.1), np.arange(12.0))


def test_torch_matches_numpy():
    torch = pytest.importorskip("torch")
    S, St, b = _numpy_and(torch.tensor)
    x = St.solve(torch.tensor(b))
    assert isinstance(x, torch.Tensor)
    np.testing.assert_allclose(x.numpy(), S.solve(b), rtol=1e-12)
    assert np.isclose(float(St.logdet()), S.logdet())
    assert np.isclose(float(St.quad(torch.tensor(b))), S.quad(b))
    assert St.sample(0, 3).shape == (3, 12)
    # the mixing rule: a NumPy right-hand side joins the factors' library
    assert isinstance(St.solve(b), torch.Tensor)


@pytest.mark.parametrize("kind", ["missing-cells", "varying-noise"])
def test_solve_plus_diagonal_by_pcg(kind):
    rng = np.random.default_rng(11)
    factors = [_kernel(6, 0.1), _kernel(5, 0.2), _kernel(4, 0.3)]
    S = ks.kron(*factors).shifted(0.01)
    N = S.shape[0]
    if kind == "missing-cells":
        d = np.zeros(N)
        d[rng.random(N) < 0.2] = 1e4
    else:
        d = rng.uniform(0.0, 0.05, N)
    y = rng.standard_normal(N)
    A = naive.shifted_kron(factors, 0.01) + np.diag(d)
    x, its = S.solve_plus_diagonal(d, y, rtol=1e-10)
    assert np.linalg.norm(A @ x - y) <= 1e-9 * np.linalg.norm(y)
    np.testing.assert_allclose(x, np.linalg.solve(A, y), rtol=1e-7, atol=1e-9)
    # the preconditioner does the work: iterations about the number of outliers
    assert its <= (int(np.count_nonzero(d)) + 10 if kind == "missing-cells" else 30)


def test_solve_plus_diagonal_errors_and_warning():
    S = ks.kron(_kernel(4, 0.2), _kernel(3, 0.3)).shifted(0.01)
    with pytest.raises(ValueError, match=r"d must have shape \(12,\)"):
        S.solve_plus_diagonal(np.ones(5), np.ones(12))
    with pytest.raises(ValueError, match="d \\+ shift >= 0"):
        S.solve_plus_diagonal(-np.ones(12), np.ones(12))
    with pytest.raises(ValueError, match="rtol must be positive"):
        S.solve_plus_diagonal(np.ones(12), np.ones(12), rtol=0)
    d = np.zeros(12)
    d[::2] = 1e6
    with pytest.warns(ks.AccuracyWarning, match="did not converge in 1 iterations"):
        S.solve_plus_diagonal(d, np.ones(12), maxiter=1)


@pytest.mark.parametrize("ns", [(5,), (4, 3), (3, 2, 4)])
def test_kronecker_diagonal_noise(ns):
    """K + s2·(diag(d1) ⊗ ... ⊗ diag(dd)), exactly, against dense."""
    rng = np.random.default_rng(sum(ns))
    factors = [_kernel(n, 0.2 + 0.1 * k) for k, n in enumerate(ns)]
    ds = [rng.uniform(0.3, 3.0, n) for n in ns]
    S = ks.kron(*factors).shifted(0.07, diag=ds)
    dvec = ds[0]
    for dk in ds[1:]:
        dvec = np.kron(dvec, dk)
    D = naive.kron(*factors) + 0.07 * np.diag(dvec)
    N = D.shape[0]
    b = rng.standard_normal(N)
    B = rng.standard_normal((N, 2))
    np.testing.assert_allclose(S.solve(b), np.linalg.solve(D, b), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(S.solve(B), np.linalg.solve(D, B), rtol=1e-8, atol=1e-10)
    assert np.isclose(S.logdet(), np.linalg.slogdet(D)[1], rtol=1e-10)
    assert np.isclose(S.slogdet()[1], np.linalg.slogdet(D)[1], rtol=1e-10)
    assert np.isclose(S.quad(b), b @ np.linalg.solve(D, b), rtol=1e-9)
    np.testing.assert_allclose(S @ b, D @ b, rtol=1e-12)
    np.testing.assert_allclose(S @ B, D @ B, rtol=1e-12)
    np.testing.assert_allclose(S.toarray(), D, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(S.diagonal(), np.diag(D), rtol=1e-12)
    assert np.isclose(S.trace(), np.trace(D))
    d = np.full(N, 0.5)
    x, _ = S.solve_plus_diagonal(d, b, rtol=1e-11)
    np.testing.assert_allclose(x, np.linalg.solve(D + np.diag(d), b), rtol=1e-8, atol=1e-10)


def test_kronecker_diagonal_sample_covariance():
    factors = [_kernel(3, 0.3), _kernel(2, 0.5)]
    ds = [np.array([0.5, 1.0, 2.0]), np.array([3.0, 0.4])]
    S = ks.kron(*factors).shifted(0.2, diag=ds)
    D = S.toarray()
    n = 40_000
    Z = S.sample(np.random.default_rng(5), n)
    C = Z.T @ Z / n
    se = np.sqrt((np.outer(np.diag(D), np.diag(D)) + D**2) / n)
    assert np.all(np.abs(C - D) <= 4.5 * se)


def test_kronecker_diagonal_errors():
    C = _kernel(3, 0.3)
    with pytest.raises(TypeError, match="diag must be a list of 2 vectors"):
        ks.kron(C, C).shifted(0.1, diag=np.ones(3))
    with pytest.raises(ValueError, match=r"diag\[1\] must have shape \(3,\)"):
        ks.kron(C, C).shifted(0.1, diag=[np.ones(3), np.ones(2)])
    with pytest.raises(ValueError, match=r"diag\[0\] must hold positive finite numbers"):
        ks.kron(C, C).shifted(0.1, diag=[-np.ones(3), np.ones(3)])


def test_same_factor_with_different_diagonals():
    """One factor object used twice with different diag vectors: two decompositions."""
    C = _kernel(4, 0.3)
    d1, d2 = np.array([0.5, 1.0, 2.0, 4.0]), np.array([3.0, 1.0, 1.0, 0.2])
    S = ks.kron(C, C).shifted(0.3, diag=[d1, d2])
    D = np.kron(C, C) + 0.3 * np.diag(np.kron(d1, d2))
    b = np.arange(16.0)
    np.testing.assert_allclose(S.solve(b), np.linalg.solve(D, b), rtol=1e-9)
    assert np.isclose(S.logdet(), np.linalg.slogdet(D)[1])


def test_torch_solve_plus_diagonal_and_kron_diagonal():
    torch = pytest.importorskip("torch")
    factors = [_kernel(4, 0.2), _kernel(3, 0.5)]
    ds = [np.array([0.5, 1.0, 2.0, 1.5]), np.array([3.0, 0.4, 1.0])]
    S = ks.kron(*factors).shifted(0.1, diag=ds)
    St = ks.kron(*[torch.tensor(f) for f in factors]).shifted(
        0.1, diag=[torch.tensor(d) for d in ds])
    b = np.arange(12.0)
    np.testing.assert_allclose(St.solve(torch.tensor(b)).numpy(), S.solve(b), rtol=1e-10)
    assert np.isclose(float(St.logdet()), S.logdet())
    d = np.linspace(0.0, 1.0, 12)
    x, its = St.solve_plus_diagonal(torch.tensor(d), torch.tensor(b), rtol=1e-12)
    assert isinstance(x, torch.Tensor)
    np.testing.assert_allclose(x.numpy(), np.linalg.solve(S.toarray() + np.diag(d), b),
                               rtol=1e-9)


def test_dask_is_lazy_and_matches_numpy():
    da = pytest.importorskip("dask.array")
    S, Sd, b = _numpy_and(da.from_array)
    bd = da.from_array(b, chunks=6)
    x = Sd.solve(bd)
    assert isinstance(x, da.Array)
    np.testing.assert_allclose(x.compute(), S.solve(b), rtol=1e-12)
    q = Sd.quad(bd)
    assert isinstance(q, da.Array) and np.isclose(float(q.compute()), S.quad(b))
    ld = Sd.logdet()
    assert isinstance(ld, da.Array) and np.isclose(float(ld.compute()), S.logdet())
    sign, logabs = Sd.slogdet()
    assert sign == 1.0 and np.isclose(float(logabs.compute()), S.slogdet()[1])
    z = Sd.sample(0, 3)
    assert isinstance(z, da.Array) and z.shape == (3, 12)
    np.testing.assert_allclose(z.compute(), S.sample(0, 3), rtol=1e-12)
    with pytest.raises(NotImplementedError, match="solve_plus_diagonal iterates"):
        Sd.solve_plus_diagonal(np.ones(12), bd)
