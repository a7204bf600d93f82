"""Kronecker-product SVD and nearest Kronecker product."""

from __future__ import annotations

import naive
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import kronsolve as ks
from kronsolve import KPSVDResult, KronProductSum, kpsvd, kron, nearest_kron
from kronsolve import _kpsvd as kp


def _example_helpers():
    """examples/_checks.py, which holds the seed's data for the examples and the tests."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "_checks.py"
    spec = importlib.util.spec_from_file_location("kronsolve_examples_checks", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def seed_cell_117():
    """The matrix of the seed's cell 117, checked against its two Kronecker terms."""
    A, (B1, C1, B2, C2), first, second = _example_helpers().seed_cell117()
    assert np.all(np.kron(B1, C1) + np.kron(B2, C2) == A)
    return A, first, second


def test_seed_cell_117_recovered_exactly():
    A, first, second = seed_cell_117()
    res = kpsvd(A, first, second)
    assert isinstance(res, KPSVDResult)
    assert res.rank == 2
    assert res.B.shape == (2, 4, 3) and res.C.shape == (2, 3, 2)
    approx = res.to_operator().toarray()
    assert np.abs(approx - A).max() < 1e-12 * np.abs(A).max()
    np.testing.assert_allclose(res.toarray(), approx, rtol=1e-14, atol=1e-13)
    # tol=0 keeps the numerically zero terms too
    full = kpsvd(A, first, second, tol=0)
    assert full.rank == min(4 * 3, 3 * 2)
    assert full.s[2] < 1e-12 * full.s[0]


def test_to_operator_is_the_lazy_sum():
    A, first, second = seed_cell_117()
    res = kpsvd(A, first, second)
    op = res.to_operator()
    assert isinstance(op, KronProductSum)
    K1 = kron(res.s[0] * res.B[0], res.C[0])
    K2 = kron(res.s[1] * res.B[1], res.C[1])
    x = np.arange(6.0)
    np.testing.assert_allclose(op @ x, (K1 + K2) @ x, rtol=1e-13)
    np.testing.assert_allclose(op @ x, A @ x, rtol=1e-12)
    s, B, C = res  # unpacks as a tuple
    assert s is res.s and B is res.B and C is res.C


@settings(max_examples=30, deadline=None)
@given(
    m1=st.integers(1, 5), n1=st.integers(1, 5), m2=st.integers(1, 5), n2=st.integers(1, 5),
    k=st.integers(1, 4), seed=st.integers(0, 1000), complex_=st.booleans(),
)
def test_random_sums_recovered(m1, n1, m2, n2, k, seed, complex_):
    rng = np.random.default_rng(seed)
    kmax = min(m1 * n1, m2 * n2)
    k = min(k, kmax)

    def draw(*shape):
        x = rng.standard_normal(shape)
        return x + 1j * rng.standard_normal(shape) if complex_ else x

    Bs, Cs = draw(k, m1, n1), draw(k, m2, n2)
    A = sum(np.kron(Bs[i], Cs[i]) for i in range(k))
    res = kpsvd(A, (m1, n1), (m2, n2))
    assert res.rank <= k
    assert np.all(np.diff(res.s) <= 1e-12 * res.s[0])
    np.testing.assert_allclose(res.toarray(), A, atol=1e-10 * max(1, np.abs(A).max()))
    # orthonormal factors
    r = res.rank
    GB = np.einsum("iab,jab->ij", res.B, res.B.conj())
    GC = np.einsum("iab,jab->ij", res.C, res.C.conj())
    np.testing.assert_allclose(GB, np.eye(r), atol=1e-10)
    np.testing.assert_allclose(GC, np.eye(r), atol=1e-10)
    # phase convention: largest entry of each B_i real positive
    for i in range(r):
        piv = res.B[i].flat[np.argmax(np.abs(res.B[i]))]
        assert abs(piv.imag) < 1e-12 and piv.real > 0


@pytest.mark.parametrize("shape", [(3, 2, 2, 2), (4, 3, 3, 2), (1, 5, 3, 1), (5, 5, 5, 5)])
def test_truncation_error_and_rank(shape):
    m1, n1, m2, n2 = shape
    rng = np.random.default_rng(sum(shape))
    A = rng.standard_normal((m1 * m2, n1 * n2))
    full = kpsvd(A, (m1, n1), (m2, n2), tol=0)
    # ||A||_F^2 = sum s_i^2
    np.testing.assert_allclose(np.sum(full.s**2), np.sum(A**2), rtol=1e-12)
    for k in range(1, full.rank + 1):
        res = kpsvd(A, (m1, n1), (m2, n2), rank=k, tol=0)
        assert res.rank == k
        err = np.linalg.norm(A - res.toarray())
        np.testing.assert_allclose(err, np.sqrt(np.sum(full.s[k:] ** 2)), atol=1e-10)


@pytest.mark.parametrize("shape", [(3, 2, 2, 2), (2, 3, 4, 1), (1, 1, 3, 3), (4, 4, 1, 1),
                                   (5, 3, 2, 4)])
def test_nearest_kron_optimal(shape):
    m1, n1, m2, n2 = shape
    rng = np.random.default_rng(7 + sum(shape))
    A = rng.standard_normal((m1 * m2, n1 * n2))
    B, C = nearest_kron(A, (m1, n1), (m2, n2))
    assert B.shape == (m1, n1) and C.shape == (m2, n2)
    np.testing.assert_allclose(np.linalg.norm(B), np.linalg.norm(C), rtol=1e-12)
    best = np.linalg.norm(A - np.kron(B, C))
    for eps in (1e-1, 1e-3, 1e-5):
        for _ in range(20):
            dB = eps * rng.standard_normal(B.shape)
            dC = eps * rng.standard_normal(C.shape)
            assert np.linalg.norm(A - np.kron(B + dB, C + dC)) >= best * (1 - 1e-12)
    # scaling is a symmetry: (cB) ⊗ (C/c) is as good
    np.testing.assert_allclose(np.linalg.norm(A - np.kron(2 * B, C / 2)), best, rtol=1e-12)


def test_nearest_kron_exact_and_types():
    B0 = np.array([[1, 2, 0], [0, -1, 3]])
    C0 = np.array([[2, 1], [1, 0], [0, 5]])
    A = np.kron(B0, C0)
    for inp in (A, A.astype(np.float32), sp.csr_matrix(A), A.tolist()):
        B, C = nearest_kron(inp, (2, 3), (3, 2))
        tol = 1e-4 if getattr(inp, "dtype", None) == np.float32 else 1e-12
        np.testing.assert_allclose(np.kron(B, C), A, atol=tol * 30)
    B, C = nearest_kron(A.astype(np.float32), (2, 3), (3, 2))
    assert B.dtype == np.float32
    Bc, Cc = nearest_kron(A * (1 + 2j), (2, 3), (3, 2))
    np.testing.assert_allclose(np.kron(Bc, Cc), A * (1 + 2j), atol=1e-12)
    # a zero matrix: zero factors
    Bz, Cz = nearest_kron(np.zeros((6, 6)), (2, 3), (3, 2))
    assert np.all(np.kron(Bz, Cz) == 0)
    assert kpsvd(np.zeros((6, 6)), (2, 3), (3, 2)).rank == 1


def test_small_rank_uses_svds(monkeypatch):
    import scipy.sparse.linalg as sla

    calls = []
    real_svds = sla.svds

    def spy(*args, **kwargs):
        calls.append(kwargs.get("k"))
        return real_svds(*args, **kwargs)

    monkeypatch.setattr(sla, "svds", spy)
    rng = np.random.default_rng(0)
    m1, n1, m2, n2 = 8, 8, 6, 7
    A = sum(np.kron(rng.standard_normal((m1, n1)), rng.standard_normal((m2, n2)))
            * 10.0 ** -i for i in range(5))
    A = A + 1e-6 * rng.standard_normal(A.shape)
    res = kpsvd(A, (m1, n1), (m2, n2), rank=3)
    assert calls == [3]
    full = kpsvd(A, (m1, n1), (m2, n2), rank=42, tol=0)  # 42 = min(64, 42): full SVD
    assert calls == [3]
    np.testing.assert_allclose(res.s, full.s[:3], rtol=1e-10)
    np.testing.assert_allclose(res.B, full.B[:3], atol=1e-8)
    np.testing.assert_allclose(res.C, full.C[:3], atol=1e-8)
    # nearest_kron on a large matrix goes through svds with k=1
    nearest_kron(A, (m1, n1), (m2, n2))
    assert calls == [3, 1]


def test_public_names():
    for name in ("kpsvd", "nearest_kron", "KPSVDResult", "rearrange", "unrearrange",
                 "shuffle", "shuffle2", "perfect_shuffle", "commutation_matrix"):
        assert name in ks.__all__
        assert getattr(ks, name).__doc__


def test_errors():
    A = np.ones((6, 4))
    with pytest.raises(ValueError, match=r"rank=5 is out of range: .* = min\(6, 4\) = 4"):
        kpsvd(A, (3, 2), (2, 2), rank=5)
    with pytest.raises(ValueError, match="rank=0 is out of range"):
        kpsvd(A, (3, 2), (2, 2), rank=0)
    with pytest.raises(TypeError, match="rank must be an integer or None, got float"):
        kpsvd(A, (3, 2), (2, 2), rank=1.5)
    with pytest.raises(ValueError, match="tol must be a finite non-negative number, got -1"):
        kpsvd(A, (3, 2), (2, 2), tol=-1)
    with pytest.raises(ValueError, match=r"A has shape \(6, 4\), but \(m1, n1\)=\(2, 2\)"):
        kpsvd(A, (2, 2), (2, 2))
    with pytest.raises(ValueError, match="m1 must be a non-negative integer, got -3"):
        nearest_kron(A, (-3, -2), (-2, -2))
    with pytest.raises(ValueError, match="m1 must be a positive integer, got 0"):
        kpsvd(np.ones((0, 0)), (0, 0), (0, 0))
    with pytest.raises(ValueError, match="inf or NaN"):
        kpsvd(np.full((6, 4), np.nan), (3, 2), (2, 2))
    with pytest.raises(TypeError, match="numeric"):
        kpsvd(np.full((6, 4), "a"), (3, 2), (2, 2))
    with pytest.raises(ValueError, match="2-D"):
        nearest_kron(np.ones(4), (2, 2), (1, 1))


def test_svds_thresholds_documented():
    assert 0 < kp._SVDS_SHARE <= 0.5 and kp._SVDS_MIN >= 2


def test_noncontiguous_and_readonly_inputs():
    A, first, second = seed_cell_117()
    A = A.astype(float)
    ref = kpsvd(A, first, second)
    big = np.zeros((2 * A.shape[0], 3 * A.shape[1]))
    big[::2, ::3] = A
    ro = A.copy()
    ro.flags.writeable = False
    for v in (big[::2, ::3], np.asfortranarray(A), ro, A[::-1, ::-1].copy()[::-1, ::-1]):
        res = kpsvd(v, first, second)
        np.testing.assert_allclose(res.s, ref.s, rtol=1e-12)
        np.testing.assert_allclose(res.toarray(), A, atol=1e-12 * np.abs(A).max())
        B, C = nearest_kron(v, first, second)
        B0, C0 = nearest_kron(A, first, second)
        np.testing.assert_allclose(np.kron(B, C), np.kron(B0, C0), atol=1e-12 * np.abs(A).max())


@pytest.mark.parametrize("shape", [(3, 2, 2, 2), (2, 3, 4, 1), (4, 3, 3, 2), (1, 1, 3, 3)])
@pytest.mark.parametrize("complex_", [False, True])
def test_matches_naive_svd_of_looped_rearrangement(shape, complex_):
    """kpsvd and nearest_kron against the dense SVD of the rearrangement built by loops."""
    m1, n1, m2, n2 = shape
    rng = np.random.default_rng(sum(shape) + complex_)
    A = rng.standard_normal((m1 * m2, n1 * n2))
    if complex_:
        A = A + 1j * rng.standard_normal(A.shape)
    s0, B0, C0 = naive.kpsvd(A, (m1, n1), (m2, n2))
    res = kpsvd(A, (m1, n1), (m2, n2))
    assert res.rank == len(s0)
    np.testing.assert_allclose(res.s, s0, rtol=1e-12)
    # random data: distinct singular values, so the terms are unique up to the fixed phase
    np.testing.assert_allclose(res.B, B0, atol=1e-10)
    np.testing.assert_allclose(res.C, C0, atol=1e-10)
    for k in (1, len(s0)):
        s1, B1, C1 = naive.kpsvd(A, (m1, n1), (m2, n2), rank=k, tol=0)
        r = kpsvd(A, (m1, n1), (m2, n2), rank=k, tol=0)
        np.testing.assert_allclose(r.s, s1, rtol=1e-10)
        np.testing.assert_allclose(r.toarray(),
                                   sum(s1[i] * np.kron(B1[i], C1[i]) for i in range(k)),
                                   atol=1e-10)
    B, C = nearest_kron(A, (m1, n1), (m2, n2))
    Bn, Cn = naive.nearest_kron(A, (m1, n1), (m2, n2))
    np.testing.assert_allclose(B, Bn, atol=1e-10)
    np.testing.assert_allclose(C, Cn, atol=1e-10)
