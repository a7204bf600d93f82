"""Log-determinants of Kronecker sums (with masses and shifts), against dense slogdet."""

from __future__ import annotations

import naive
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kronsolve as ks


def _factor(rng, n, kind):
    A = rng.standard_normal((n, n))
    if kind == "sym":
        return A + A.T
    if kind == "complex":
        return A + 1j * rng.standard_normal((n, n))
    if kind == "jordan":
        return 2.0 * np.eye(n) + np.eye(n, k=1)
    return A


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32 - 1), st.sampled_from(["sym", "gen", "complex", "jordan"]),
       st.booleans(), st.floats(-3, 3))
def test_slogdet_matches_dense(seed, kind, with_masses, shift):
    rng = np.random.default_rng(seed)
    d = int(rng.integers(1, 4))
    ns = [int(n) for n in rng.integers(1, 6, d)]
    mats = [_factor(rng, n, kind) for n in ns]
    masses = None
    if with_masses:
        masses = []
        for n in ns:
            Q = rng.standard_normal((n, n))
            masses.append(Q @ Q.T + n * np.eye(n))
    ref_sign, ref_log = naive.kronsum_slogdet(mats, masses, shift)
    try:
        sign, logdet = ks.KronSumSolver(mats, masses=masses).slogdet(shift)
    except np.linalg.LinAlgError:  # a mass the symmetric path refuses cannot occur here
        raise
    if ref_sign == 0 or not np.isfinite(ref_log):
        return
    assert np.isclose(logdet, ref_log, rtol=1e-8, atol=1e-7 * max(1.0, abs(ref_log)))
    assert np.isclose(sign, ref_sign, atol=1e-6)
    if kind != "complex":
        assert np.isrealobj(sign)


def test_kronsum_slogdet_det_and_singular():
    T = 2 * np.eye(5) - np.eye(5, k=1) - np.eye(5, k=-1)
    K = ks.kronsum(T, T, T)
    D = K.toarray()
    for shift in (0.0, -0.5, 2.0 + 1j):
        ref = np.linalg.slogdet(D + shift * np.eye(125))
        sign, logdet = K.slogdet(shift=shift)
        assert np.isclose(sign, ref[0]) and np.isclose(logdet, ref[1])
    assert np.isclose(K.det(), np.linalg.det(D))
    # a zero eigenvalue sum: the operator is singular
    J = np.array([[0.0, 1.0], [0.0, 0.0]])
    sign, logdet = ks.kronsum(J, J).slogdet()
    assert sign == 0 and logdet == -np.inf


def test_slogdet_large_without_dense_array():
    """N = 10**6: the sum of logs in blocks, against the closed form for T = diag."""
    n = 100
    lam = np.linspace(1.0, 2.0, n)
    D = np.diag(lam)
    sign, logdet = ks.KronSumSolver([D, D, D]).slogdet(shift=0.25)
    total = (lam[:, None, None] + lam[None, :, None] + lam[None, None, :] + 0.25)
    assert sign == 1.0
    assert np.isclose(logdet, np.log(total).sum(), rtol=1e-12)


def test_slogdet_bad_shift():
    with pytest.raises(TypeError, match="shift must be"):
        ks.KronSumSolver([np.eye(2)]).slogdet(np.ones(2))


def test_kron_eigvals_real_for_symmetric_factors():
    rng = np.random.default_rng(1)
    A = rng.standard_normal((4, 4))
    S = A + A.T
    C = rng.standard_normal((3, 3)) + 1j * rng.standard_normal((3, 3))
    H = C + C.conj().T
    w = ks.kron(S, H).eigvals()
    assert np.isrealobj(w)
    np.testing.assert_allclose(np.sort(w), np.sort(np.linalg.eigvalsh(np.kron(S, H))),
                               atol=1e-12)
    # a non-symmetric factor keeps the general path
    G = np.array([[0.0, -1.0], [1.0, 0.0]])
    assert np.iscomplexobj(ks.kron(S, G).eigvals())


@pytest.mark.parametrize("kind", ["product", "sum"])
@pytest.mark.parametrize("complex_", [False, True])
def test_eigh_objects(kind, complex_):
    rng = np.random.default_rng(12)
    mats = []
    for n in (3, 4, 2):
        A = rng.standard_normal((n, n)) + (1j * rng.standard_normal((n, n)) if complex_ else 0)
        mats.append(A + A.conj().T)
    op = ks.kron(*mats) if kind == "product" else ks.kronsum(*mats)
    D = op.toarray()
    E = op.eigh()
    assert E.kind == kind
    w = E.eigenvalues()
    assert np.isrealobj(w) and w.shape == (24,)
    V = E.eigenvectors.toarray()
    np.testing.assert_allclose(V @ np.diag(w) @ V.conj().T, D, atol=1e-10)
    np.testing.assert_allclose(V.conj().T @ V, np.eye(24), atol=1e-12)
    np.testing.assert_allclose(np.sort(w), np.linalg.eigvalsh(D), atol=1e-10)
    for lam, A in zip(E.factor_eigenvalues, mats):
        np.testing.assert_allclose(lam, np.linalg.eigvalsh(A), atol=1e-12)


def test_eigh_refuses_nonsymmetric_and_decomposes_once(monkeypatch):
    G = np.triu(np.ones((3, 3)))
    with pytest.raises(ValueError, match=r"eigh\(\) needs symmetric.*factors\[1\]"):
        ks.kron(np.eye(3), G).eigh()
    from kronsolve._backends import numpy as npb

    calls = []
    orig = npb.NumpyBackend.eigh
    monkeypatch.setattr(npb.NumpyBackend, "eigh",
                        lambda self, A, name: calls.append(name) or orig(self, A, name))
    S = np.array([[2.0, 1.0], [1.0, 2.0]])
    ks.kronsum(S, S, S).eigh()
    assert calls == ["factors[0]"]


@pytest.mark.parametrize("kind", ["product", "sum"])
def test_eigh_apply_functions(kind):
    import scipy.linalg

    rng = np.random.default_rng(13)
    mats = []
    for n in (3, 4, 2):
        A = rng.standard_normal((n, n))
        mats.append(A @ A.T + np.eye(n))
    op = ks.kron(*mats) if kind == "product" else ks.kronsum(*mats)
    E = op.eigh()
    D = op.toarray()
    x = rng.standard_normal(24)
    X = rng.standard_normal((24, 3))
    np.testing.assert_allclose(E.apply(np.sqrt, x), scipy.linalg.sqrtm(D) @ x, rtol=1e-9)
    w, V = np.linalg.eigh(D)  # the dense reference of a function of a symmetric matrix
    np.testing.assert_allclose(E.apply(np.log, X), (V * np.log(w)) @ V.T @ X, rtol=1e-9,
                               atol=1e-12)
    np.testing.assert_allclose(E.apply(lambda w: 1 / w, x), np.linalg.solve(D, x), rtol=1e-9)
    with pytest.raises(TypeError, match="f must be a callable"):
        E.apply(2.0, x)
    with pytest.raises(ValueError, match=r"b must have shape \(24,\)"):
        E.apply(np.sqrt, np.ones(5))
