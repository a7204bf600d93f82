"""Kronecker-sum solvers: solve_kronsum, solve_sylvester3d, KronSumSolver, solve_sylvester."""

from __future__ import annotations

import threading
import tracemalloc
import warnings

import naive
import numpy as np
import pytest
import scipy.linalg
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

import kronsolve as ks
from kronsolve import (
    KronSumSolver,
    kronsum,
    solve_kronsum,
    solve_sylvester,
    solve_sylvester3d,
)

# ----------------------------------------------------------------- helpers


def orthogonal(rng, n, complex_=False):
    G = rng.standard_normal((n, n))
    if complex_:
        G = G + 1j * rng.standard_normal((n, n))
    Q, R = np.linalg.qr(G)
    return Q


def sym_factor(rng, lam, complex_=False):
    """``Q diag(lam) Qᴴ``, exactly Hermitian."""
    n = len(lam)
    Q = orthogonal(rng, n, complex_)
    A = (Q * lam) @ Q.conj().T
    return (A + A.conj().T) / 2


def gen_factor(rng, lam, complex_=False):
    """Non-symmetric ``V diag(lam) V⁻¹`` with a well-conditioned ``V``."""
    n = len(lam)
    V = np.eye(n) + 0.3 * rng.standard_normal((n, n)) / np.sqrt(n)
    if complex_:
        V = V + 0.3j * rng.standard_normal((n, n)) / np.sqrt(n)
    return (V * lam) @ np.linalg.inv(V)


def op_norm_bound(mats, masses=None, shift=0.0):
    """Upper bound of the 2-norm of the operator."""
    n2 = [np.linalg.norm(np.asarray(A, np.complex128), 2) for A in mats]
    m2 = [1.0 if masses is None or masses[k] is None else
          np.linalg.norm(np.asarray(masses[k], np.complex128), 2) for k in range(len(mats))]
    pm = np.prod(m2)
    return sum(n2[k] * pm / m2[k] for k in range(len(mats))) + abs(shift) * pm


def scaled_residual(B, X, mats, masses=None, shift=0.0):
    eps = np.finfo(np.result_type(X.dtype, np.float32)).eps
    R = np.asarray(B, np.complex128) - naive.apply_kronsum(X, mats, masses, shift)
    nx = np.linalg.norm(X.astype(np.complex128))
    if nx == 0:
        return 0.0
    return np.linalg.norm(R) / (op_norm_bound(mats, masses, shift) * nx * eps)


def rand(rng, shape, dtype):
    dtype = np.dtype(dtype)
    x = rng.standard_normal(shape)
    if dtype.kind == "c":
        x = x + 1j * rng.standard_normal(shape)
    return x.astype(dtype)


DTYPES = [np.float32, np.float64, np.complex64, np.complex128]


# ------------------------------------------------------- accuracy (hypothesis)


@st.composite
def problems(draw, kinds=("sym",)):
    d = draw(st.integers(1, 4))
    cap = {1: 30, 2: 30, 3: 16, 4: 8}[d]
    ns = draw(st.lists(st.integers(1, cap), min_size=d, max_size=d))
    if d == 4 and draw(st.booleans()):
        ns[draw(st.integers(0, 3))] = 30  # one long mode at full size
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    kind = draw(st.sampled_from(kinds))
    with_masses = draw(st.booleans())
    sign = draw(st.sampled_from([1.0, -1.0]))
    shift_kind = draw(st.sampled_from(["zero", "real", "imag"] if dtype.kind == "c"
                                      else ["zero", "real"]))
    batch = draw(st.sampled_from([(), (2,)]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    cplx = dtype.kind == "c"
    mats, masses = [], []
    for n in ns:
        lam = sign * rng.uniform(0.5, 2.0, n)  # sums of one sign: away from zero
        A = sym_factor(rng, lam, cplx) if kind == "sym" else gen_factor(rng, lam, cplx)
        mats.append(A.astype(dtype))
        if with_masses:
            masses.append(sym_factor(rng, rng.uniform(1.0, 2.0, n), cplx).astype(dtype))
    if shift_kind == "zero":
        shift = 0.0
    elif shift_kind == "real":
        shift = sign * float(rng.uniform(0.0, 3.0))
    else:
        shift = complex(0.0, rng.uniform(-3.0, 3.0))
    B = rand(rng, batch + tuple(ns), dtype)
    return B, mats, (masses if with_masses else None), shift


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_scaled_residual_symmetric(problem):
    B, mats, masses, shift = problem
    B0 = B.copy()
    X = solve_kronsum(B, mats, masses=masses, shift=shift)
    assert X.shape == B.shape
    assert_array_equal(B, B0)
    # a Python scalar shift does not raise the precision (complex64 stays complex64)
    expected = np.result_type(B.dtype, *[A.dtype for A in mats],
                              np.complex64 if isinstance(shift, complex) else np.float16)
    assert X.dtype == expected
    assert scaled_residual(B, X, mats, masses, shift) <= 30


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems(kinds=("gen",)))
def test_scaled_residual_nonsymmetric(problem):
    B, mats, masses, shift = problem
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # these bases are well-conditioned
        X = solve_kronsum(B, mats, masses=masses, shift=shift)
    real = all(a.dtype.kind != "c" for a in (B, *mats)) and not isinstance(shift, complex)
    assert (X.dtype.kind != "c") == real
    # the Schur route: a small residual whatever the eigenvector bases
    assert scaled_residual(B, X, mats, masses, shift) <= 30


# ------------------------------------------------------- against references


@pytest.mark.parametrize("ns", [(5,), (3, 4), (2, 3, 4), (2, 2, 3, 2)], ids=str)
@pytest.mark.parametrize("kind", ["sym", "gen"])
@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_matches_dense_solve(ns, kind, dtype):
    rng = np.random.default_rng(7)
    cplx = np.dtype(dtype).kind == "c"
    make = sym_factor if kind == "sym" else gen_factor
    mats = [make(rng, rng.uniform(1, 3, n), cplx).astype(dtype) for n in ns]
    B = rand(rng, ns, dtype)
    for shift in (0.0, 0.7):
        X = solve_kronsum(B, mats, shift=shift)
        ref = np.linalg.solve(naive.kronsum_with_masses(mats, shift=shift), B.ravel())
        assert_allclose(X.ravel(), ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("ns", [(4,), (3, 2), (2, 3, 4)], ids=str)
def test_matches_dense_solve_with_masses(ns):
    rng = np.random.default_rng(8)
    mats = [sym_factor(rng, rng.uniform(1, 3, n)) for n in ns]
    masses = [sym_factor(rng, rng.uniform(1, 2, n)) for n in ns]
    B = rng.standard_normal(ns)
    X = solve_kronsum(B, mats, masses=masses, shift=0.4)
    ref = np.linalg.solve(naive.kronsum_with_masses(mats, masses, 0.4), B.ravel())
    assert_allclose(X.ravel(), ref, rtol=1e-10, atol=1e-12)
    # non-symmetric factors with masses go through the generalized eig
    gen = [gen_factor(rng, rng.uniform(1, 3, n)) for n in ns]
    X = solve_kronsum(B, gen, masses=masses, shift=0.4)
    ref = np.linalg.solve(naive.kronsum_with_masses(gen, masses, 0.4), B.ravel())
    assert_allclose(X.ravel(), ref, rtol=1e-9, atol=1e-11)
    # a None entry stands for the identity
    X = solve_kronsum(B, mats, masses=[None] + masses[1:])
    ref = np.linalg.solve(naive.kronsum_with_masses(mats, [None] + masses[1:]), B.ravel())
    assert_allclose(X.ravel(), ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("m,n", [(1, 1), (5, 3), (20, 20), (17, 9)])
@pytest.mark.parametrize("dtype", [np.float64, np.complex128, np.float32])
def test_d2_matches_scipy_solve_sylvester(m, n, dtype):
    rng = np.random.default_rng(m * 100 + n)
    cplx = np.dtype(dtype).kind == "c"
    a = sym_factor(rng, rng.uniform(1, 3, m), cplx).astype(dtype)
    b = sym_factor(rng, rng.uniform(1, 3, n), cplx).astype(dtype)
    q = rand(rng, (m, n), dtype)
    ref = scipy.linalg.solve_sylvester(a, b, q)
    rtol = 1e-4 if dtype == np.float32 else 1e-10
    x = solve_sylvester(a, b, q)
    assert x.dtype == ref.dtype
    assert_allclose(x, ref, rtol=rtol, atol=rtol)
    # the same through solve_kronsum: A X + X B = Q is X ×₁ A + X ×₂ Bᵀ
    assert_allclose(solve_kronsum(q, [a, b.T]), ref, rtol=rtol, atol=rtol)


def test_solve_sylvester_nonsymmetric_matches_scipy():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((6, 6)) + 6 * np.eye(6)
    b = rng.standard_normal((4, 4)) + 6 * np.eye(4)
    q = rng.standard_normal((6, 4))
    assert_allclose(solve_sylvester(a, b, q), scipy.linalg.solve_sylvester(a, b, q))
    # SciPy's own example (integer input)
    a = np.array([[-3, -2, 0], [-1, -1, 3], [3, -5, -1]])
    b = np.array([[1]])
    q = np.array([[1], [2], [3]])
    assert_allclose(solve_sylvester(a, b, q), [[0.0625], [-0.5625], [0.6875]])


def test_solve_sylvester_errors():
    with pytest.raises(ValueError, match="a must be square"):
        solve_sylvester(np.ones((2, 3)), np.eye(2), np.ones((2, 2)))
    with pytest.raises(ValueError, match=r"q must have shape"):
        solve_sylvester(np.eye(2), np.eye(3), np.ones((3, 2)))
    with pytest.raises(ValueError, match="q must contain only finite"):
        solve_sylvester(np.eye(2), np.eye(2), np.array([[1.0, np.nan], [0.0, 1.0]]))
    with pytest.raises(np.linalg.LinAlgError, match="singular"):
        solve_sylvester(np.eye(2), -np.eye(2), np.ones((2, 2)))


# ------------------------------------------------------------ seed notebook


def test_seed_notebook_cells_123_to_127():
    """Cells 123-127: X ×₁ A + X ×₂ A + X ×₃ A = B for a symmetric A, solved back."""
    rng = np.random.default_rng(123)
    n = 4
    X = rng.standard_normal((n, n, n))
    A = rng.standard_normal((n, n))
    A = A + A.T
    Id = np.eye(n)
    B = (np.einsum("abc,ia,jb,kc->ijk", X, A, Id, Id, optimize="optimal")
         + np.einsum("abc,ia,jb,kc->ijk", X, Id, A, Id, optimize="optimal")
         + np.einsum("abc,ia,jb,kc->ijk", X, Id, Id, A, optimize="optimal"))
    # cells 125-126, the notebook's own way (F order, dense diagonal)
    S, U = np.linalg.eigh(A)
    X1 = np.einsum("abc,ia,jb,kc->ijk", B, U.T, U.T, U.T, optimize="optimal")
    D = (np.kron(np.kron(Id, Id), np.diag(S)) + np.kron(np.kron(Id, np.diag(S)), Id)
         + np.kron(np.kron(np.diag(S), Id), Id))
    X2 = (np.diagonal(D) ** -1 * X1.flatten("F")).reshape(n, n, n, order="F")
    X_notebook = np.einsum("abc,ia,jb,kc->ijk", X2, U, U, U, optimize="optimal")
    assert np.allclose(X, X_notebook)  # cell 127
    X_found = solve_sylvester3d(B, A)
    assert np.allclose(X, X_found)
    assert_allclose(X_found, X_notebook, rtol=1e-9, atol=1e-9)
    # and as the lazy operator's solve
    assert np.allclose(kronsum(A, A, A).solve(B.ravel()).reshape(n, n, n), X)


def test_sylvester3d_distinct_factors_and_batch():
    rng = np.random.default_rng(5)
    A1, A2, A3 = (sym_factor(rng, rng.uniform(1, 2, n)) for n in (3, 4, 5))
    X = rng.standard_normal((2, 3, 4, 5))
    B = naive.apply_kronsum(X, [A1, A2, A3], shift=0.5)
    Y = solve_sylvester3d(B, A1, A2, A3, shift=0.5)
    assert_allclose(Y, X, rtol=1e-11, atol=1e-12)
    for i in range(2):
        assert_allclose(solve_sylvester3d(B[i], A1, A2, A3, shift=0.5), Y[i], rtol=1e-13)


# ----------------------------------------------------- manufactured solution


def _poisson_error(n):
    """Max error of the 2nd-order FD solution of -Δu = f on the unit cube."""
    h = 1.0 / (n + 1)
    x = np.linspace(h, 1 - h, n)
    T = sp.diags([-np.ones(n - 1), 2 * np.ones(n), -np.ones(n - 1)], [-1, 0, 1]) / h**2
    # u = a(x) b(y) c(z), a = x(1-x)e^x, b = sin(πy), c = z(1-z): zero on the boundary
    a = x * (1 - x) * np.exp(x)
    a2 = -(x**2 + 3 * x) * np.exp(x)
    b = np.sin(np.pi * x)
    b2 = -np.pi**2 * b
    c = x * (1 - x)
    c2 = -2.0 * np.ones(n)
    u = np.einsum("i,j,k->ijk", a, b, c)
    f = -(np.einsum("i,j,k->ijk", a2, b, c) + np.einsum("i,j,k->ijk", a, b2, c)
          + np.einsum("i,j,k->ijk", a, b, c2))
    Tdense = T.toarray()
    uh = solve_sylvester3d(f, Tdense)
    # the same through the lazy operator with sparse factors
    K = kronsum(T, T, T)
    assert_allclose(K @ uh.ravel(), f.ravel(), rtol=1e-8, atol=1e-8 * np.abs(f).max())
    return np.abs(uh - u).max()


def test_poisson_manufactured_solution_second_order():
    ns = [7, 15, 31, 63]
    errs = [_poisson_error(n) for n in ns]
    rates = [np.log2(errs[i] / errs[i + 1]) for i in range(len(ns) - 1)]
    assert all(1.9 < r < 2.1 for r in rates), (errs, rates)
    assert errs[-1] < 1e-4


# ----------------------------------------------------------------- solver


def test_solver_reuses_identical_factors():
    rng = np.random.default_rng(2)
    A = sym_factor(rng, rng.uniform(1, 2, 6))
    C = sym_factor(rng, rng.uniform(1, 2, 6))
    assert KronSumSolver([A, A, A])._n_decomposed == 1
    assert KronSumSolver([A, A.copy(), A])._n_decomposed == 1  # equal arrays
    assert KronSumSolver([A, C, A])._n_decomposed == 2
    M = sym_factor(rng, rng.uniform(1, 2, 6))
    assert KronSumSolver([A, A], masses=[M, M.copy()])._n_decomposed == 1
    assert KronSumSolver([A, A], masses=[M, None])._n_decomposed == 2


def test_solver_many_solves_and_shifts():
    rng = np.random.default_rng(4)
    mats = [sym_factor(rng, rng.uniform(1, 2, n)) for n in (4, 5, 6)]
    solver = KronSumSolver(mats)
    assert solver.shape == (4, 5, 6) and solver.ndim == 3
    assert "KronSumSolver" in repr(solver)
    for shift in (0.0, 1.5, -0.5, 2j):
        B = rng.standard_normal((3, 4, 5, 6))
        X = solver.solve(B, shift=shift)
        assert_allclose(naive.apply_kronsum(X, mats, shift=shift), B, atol=1e-12)
        assert (X.dtype.kind == "c") == isinstance(shift, complex)
    assert_allclose(np.sort(np.concatenate(solver.eigenvalues)),
                    np.sort(np.concatenate([np.linalg.eigvalsh(A) for A in mats])))


def test_sparse_factors_accepted():
    n = 6
    T = sp.diags([-np.ones(n - 1), 2 * np.ones(n), -np.ones(n - 1)], [-1, 0, 1], format="csr")
    B = np.random.default_rng(0).standard_normal((n, n))
    X = solve_kronsum(B, [T, T])
    assert_allclose(naive.apply_kronsum(X, [T.toarray()] * 2), B, atol=1e-12)


def test_dtypes_real_stays_real():
    rng = np.random.default_rng(9)
    A = sym_factor(rng, rng.uniform(1, 2, 5))
    B = rng.standard_normal((5, 5))
    assert solve_kronsum(B, [A, A]).dtype == np.float64
    assert solve_kronsum(B.astype(np.float32), [A.astype(np.float32)] * 2).dtype == np.float32
    assert solve_kronsum(np.ones((5, 5), dtype=int), [np.diag(np.arange(1, 6))] * 2).dtype \
        == np.float64
    assert solve_kronsum(B + 0j, [A, A]).dtype == np.complex128
    # a real non-symmetric factor with complex eigenvalues: complex inside, real result
    R = np.array([[1.0, -2.0], [2.0, 1.0]])  # eigenvalues 1 ± 2i
    X = solve_kronsum(np.ones((2, 2)), [R, R])
    assert X.dtype == np.float64
    assert_allclose(naive.apply_kronsum(X, [R, R]), np.ones((2, 2)), atol=1e-13)
    # a real non-symmetric factor with real eigenvalues stays in real arithmetic
    U = np.array([[2.0, 1.0], [0.0, 3.0]])
    assert KronSumSolver([U])._modes[0].real


def test_empty_and_trivial_sizes():
    X = solve_kronsum(np.zeros((0, 3)), [np.eye(0), 2 * np.eye(3)])
    assert X.shape == (0, 3)
    X = solve_kronsum(np.zeros((4, 0, 2)), [np.eye(2)])  # empty batch
    assert X.shape == (4, 0, 2)
    assert_allclose(solve_kronsum(np.array([6.0]), [np.array([[3.0]])]), [2.0])
    assert_allclose(solve_kronsum(np.ones((1, 1, 1)), [np.ones((1, 1))] * 3), [[[1 / 3]]])


# ----------------------------------------------------------------- errors


def test_singular_sum_raises_with_index_and_value():
    n = 4
    T = 2 * np.eye(n) - np.eye(n, k=1) - np.eye(n, k=-1)
    T[0, 0] = T[-1, -1] = 1.0  # Neumann: eigenvalue 0
    with pytest.raises(np.linalg.LinAlgError, match=r"multi-index \(0, 0, 0\).*= [-0-9.e]+"):
        solve_sylvester3d(np.ones((n, n, n)), T)
    # a shift that cancels one sum exactly
    A = np.diag([1.0, 2.0, 3.0])
    with pytest.raises(np.linalg.LinAlgError, match=r"multi-index \((1, 2|2, 1)\)") as info:
        solve_kronsum(np.ones((3, 3)), [A, A], shift=-5.0)
    assert "shift" in str(info.value)
    # nearly singular: zero relative to the scale
    with pytest.raises(np.linalg.LinAlgError, match="singular"):
        solve_kronsum(np.ones((3, 3)), [A, A], shift=-5.0 + 1e-15)
    # indefinite but nonsingular: fine
    X = solve_kronsum(np.ones((3, 3)), [A, A], shift=-4.5)
    assert np.isfinite(X).all()
    # complex eigenvalue sums that vanish
    R = np.array([[0.0, -1.0], [1.0, 0.0]])  # eigenvalues ±i
    with pytest.raises(np.linalg.LinAlgError, match="multi-index"):
        solve_kronsum(np.ones((2, 2)), [R, R])


def test_never_silent_inf_or_nan():
    A = np.diag([1.0, -1.0])
    with pytest.raises(np.linalg.LinAlgError):
        solve_kronsum(np.ones((2, 2)), [A, A])
    with pytest.raises(np.linalg.LinAlgError):
        KronSumSolver([A, A]).solve(np.ones((2, 2)))
    with pytest.raises(np.linalg.LinAlgError):
        kronsum(A, A).solve(np.ones(4))


def test_input_errors():
    A = np.eye(3)
    B = np.ones((3, 3))
    with pytest.raises(ValueError, match=r"mats\[1\] must be square, got shape \(3, 2\)"):
        solve_kronsum(B, [A, np.ones((3, 2))])
    with pytest.raises(ValueError, match=r"B must have shape \(3, 4\).*got shape \(3, 3\)"):
        solve_kronsum(B, [A, np.eye(4)])
    with pytest.raises(ValueError, match=r"B must contain only finite"):
        solve_kronsum(np.full((3, 3), np.inf), [A, A])
    with pytest.raises(ValueError, match=r"mats\[0\] must contain only finite"):
        solve_kronsum(B, [np.full((3, 3), np.nan), A])
    solve_kronsum(B, [A, A], check_finite=False)  # allowed to skip the check
    with pytest.raises(ValueError, match=r"masses\[1\] must contain only finite"):
        solve_kronsum(B, [A, A], masses=[A, np.full((3, 3), np.nan)])
    with pytest.raises(ValueError, match="assume_a must be one of"):
        solve_kronsum(B, [A, A], assume_a="symmetric")
    with pytest.raises(ValueError, match="got 1 masses for 2 factors"):
        solve_kronsum(B, [A, A], masses=[A])
    with pytest.raises(ValueError, match=r"masses\[0\] has shape \(2, 2\)"):
        solve_kronsum(B, [A, A], masses=[np.eye(2), A])
    with pytest.raises(np.linalg.LinAlgError, match=r"masses\[1\].*positive definite"):
        solve_kronsum(B, [A, A], masses=[A, -A])
    with pytest.raises(TypeError, match="mats must be a sequence"):
        solve_kronsum(B, A)
    with pytest.raises(TypeError, match="numeric"):
        solve_kronsum(B, [A, np.array([["a"] * 3] * 3)])
    with pytest.raises(TypeError, match="shift must be"):
        solve_kronsum(B, [A, A], shift=np.ones(2))
    with pytest.raises(ValueError, match="shift must be finite"):
        solve_kronsum(B, [A, A], shift=np.nan)
    with pytest.raises(ValueError, match="at least one matrix"):
        solve_kronsum(B, [])
    with pytest.raises(ValueError, match="at least three dimensions"):
        solve_sylvester3d(np.ones((3, 3)), A)
    with pytest.raises(ValueError, match=r"B must have shape \(3, 3, 2\)"):
        solve_sylvester3d(np.ones((3, 3, 3)), A, A3=np.eye(2))
    with pytest.raises(TypeError, match="not supported"):
        solve_kronsum(np.ones(2, dtype=np.longdouble), [np.eye(2, dtype=np.longdouble)])


def test_ill_conditioned_nonsymmetric_factor_warns():
    """``method="eig"`` warns about an ill-conditioned basis, from the caller's line."""
    rng = np.random.default_rng(0)
    A = sym_factor(rng, rng.uniform(1, 2, 4))
    J = np.array([[1.0, 1.0], [1e-20, 1.0 + 1e-9]])  # nearly defective
    with pytest.warns(ks.AccuracyWarning, match=r"mats\[1\].*ill-conditioned") as rec:
        solve_kronsum(np.ones((4, 2)), [A, J], method="eig")
    assert rec[0].filename == __file__  # points at the caller
    with pytest.warns(ks.AccuracyWarning, match=r"mats\[0\]") as rec:
        KronSumSolver([J], method="eig")
    assert rec[0].filename == __file__
    # larger distinct factors are decomposed in worker threads; the warning still
    # comes from the caller
    J48 = np.eye(48)
    J48[:2, :2] = J
    A48 = sym_factor(rng, rng.uniform(1, 2, 48))
    with pytest.warns(ks.AccuracyWarning, match=r"mats\[1\].*ill-conditioned") as rec:
        solve_kronsum(np.ones((48, 48)), [A48, J48], method="eig")
    assert rec[0].filename == __file__
    # the default route needs no eigenvector basis: accurate, and silent
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        X = solve_kronsum(np.ones((48, 48)), [A48, J48])
    assert scaled_residual(np.ones((48, 48)), X, [A48, J48]) <= 30


def test_inputs_not_modified_and_overwrite_b():
    rng = np.random.default_rng(11)
    mats = [sym_factor(rng, rng.uniform(1, 2, n)) for n in (4, 5)]
    masses = [sym_factor(rng, rng.uniform(1, 2, n)) for n in (4, 5)]
    gen = [gen_factor(rng, rng.uniform(1, 2, n)) for n in (4, 5)]
    B = rng.standard_normal((4, 5))
    copies = [x.copy() for x in (B, *mats, *masses, *gen)]
    X = solve_kronsum(B, mats, masses=masses, shift=0.3)
    solve_kronsum(B, gen, shift=0.3)
    solve_sylvester(mats[0], mats[0], B[:, :4])
    for orig, now in zip(copies, (B, *mats, *masses, *gen)):
        assert_array_equal(orig, now)
    Bw = B.copy()
    Y = solve_kronsum(Bw, mats, masses=masses, shift=0.3, overwrite_b=True)
    assert np.shares_memory(Y, Bw)
    assert_allclose(Y, X, rtol=1e-13, atol=1e-14)
    # a B that cannot hold the result (wrong dtype, F order, read-only) is left alone
    for Bx in (B.astype(np.float32), np.asfortranarray(B), B.copy()):
        Bx.flags.writeable = Bx.flags.c_contiguous and Bx.dtype == np.float32
        before = Bx.copy()
        Z = solve_kronsum(Bx, mats, overwrite_b=True)
        if not Bx.flags.writeable:
            assert_array_equal(Bx, before)
        assert_allclose(Z, solve_kronsum(before, mats), rtol=1e-5)
    # complex arithmetic for a real non-symmetric problem, result written back into B
    Bw = B.copy()
    Y = solve_kronsum(Bw, gen, overwrite_b=True)
    assert Y is Bw and Y.dtype == np.float64
    assert_allclose(naive.apply_kronsum(Y, gen), B, atol=1e-12)


def _peak_extra(fn):
    """Peak traced memory while ``fn`` runs in a fresh thread (fresh work buffers)."""
    result = {}

    def run():
        tracemalloc.start()
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        out = fn()
        result["peak"] = tracemalloc.get_traced_memory()[1] - base
        tracemalloc.stop()
        result["out"] = out

    t = threading.Thread(target=run)
    t.start()
    t.join()
    return result["peak"], result["out"]


@pytest.mark.parametrize("shape", [(48, 48, 48), (3, 40, 40, 40), (256, 512), (64, 64, 64)],
                         ids=str)
def test_peak_memory(shape):
    """At most one extra B plus the result (2x B), or one B with overwrite_b=True."""
    rng = np.random.default_rng(0)
    d = 3 if len(shape) != 2 else 2
    ns = shape[-d:]
    mats = [sym_factor(rng, rng.uniform(1, 2, n)) for n in ns]
    B = rng.standard_normal(shape)
    small = 32 * sum(n * n for n in ns) + 65536  # O(n²) factor data and bookkeeping
    solver = KronSumSolver(mats)
    peak, X = _peak_extra(lambda: solver.solve(B))
    assert peak <= 2 * B.nbytes + small, peak / B.nbytes
    assert_allclose(naive.apply_kronsum(X, mats), B, atol=1e-11)
    Bw = B.copy()
    peak, X = _peak_extra(lambda: solver.solve(Bw, overwrite_b=True))
    assert peak <= B.nbytes + small, peak / B.nbytes
    assert X is Bw
    # the one-shot function: decomposition included
    peak, X = _peak_extra(lambda: solve_kronsum(B, mats, shift=0.5))
    assert peak <= 2 * B.nbytes + small, peak / B.nbytes


def test_mode_product_convention():
    """The solution satisfies the equation written with explicit mode products."""
    rng = np.random.default_rng(12)
    A1, A2, A3 = (gen_factor(rng, rng.uniform(1, 2, n)) for n in (2, 3, 4))
    B = rng.standard_normal((2, 3, 4))
    X = solve_kronsum(B, [A1, A2, A3])
    lhs = (naive.mode_product(X, A1, 0) + naive.mode_product(X, A2, 1)
           + naive.mode_product(X, A3, 2))
    assert_allclose(lhs, B, atol=1e-12)
    assert ks.solve_kronsum is solve_kronsum


def test_blas_threads_restored_after_small_decompositions():
    """Small eigendecompositions run with one BLAS thread, and the setting is restored."""
    tp = pytest.importorskip("threadpoolctl")
    KronSumSolver([np.eye(40)])  # loads SciPy's BLAS as well
    before = {i["filepath"]: i["num_threads"] for i in tp.threadpool_info()}
    rng = np.random.default_rng(0)
    A = sym_factor(rng, rng.uniform(1, 2, 64))
    X = solve_kronsum(np.ones((64, 64)), [A, gen_factor(rng, rng.uniform(1, 2, 64))])
    assert np.isfinite(X).all()
    after = {i["filepath"]: i["num_threads"] for i in tp.threadpool_info()}
    assert after == before


@pytest.mark.parametrize("shape", [(64, 64, 64), (2, 48, 48, 48), (1, 200, 400), (600, 500)],
                         ids=str)
def test_large_problem_paths(shape):
    """Blocked and two-thread division, batched rotating transforms, n1 == 1."""
    rng = np.random.default_rng(21)
    ns = shape[1:] if len(shape) == 4 else shape
    mats = [sym_factor(rng, rng.uniform(1, 2, n)) for n in ns]
    B = rng.standard_normal(shape)
    for shift in (0.0, -2.5 - 0.5 * len(ns)):  # definite, then indefinite sums
        try:
            X = solve_kronsum(B, mats, shift=shift)
        except np.linalg.LinAlgError:
            continue
        assert scaled_residual(B, X, mats, shift=shift) <= 30


# ------------------------------------------------- the small one-shot path


@pytest.mark.parametrize("ns", [(5,), (4, 7), (16, 16, 16), (3, 1, 4, 2), (32, 9)], ids=str)
@pytest.mark.parametrize("same", [True, False])
@pytest.mark.parametrize("shift", [0.0, 0.75, -1])
@pytest.mark.parametrize("tier", ["lapack", "numba"])
def test_small_path_equals_solver(ns, same, shift, tier):
    """The one-shot path of small problems gives exactly the solver's result, with
    either tier of small eigendecompositions."""
    from kronsolve import _smalleig
    from kronsolve._backends.numpy import NUMPY

    _solve_small = NUMPY.solve_small

    rng = np.random.default_rng(sum(ns) + 7 * same)
    A0 = sym_factor(rng, rng.uniform(1, 2, ns[0]))
    mats = [A0 if same and n == ns[0] else sym_factor(rng, rng.uniform(1, 2, n)) for n in ns]
    B = rng.standard_normal(ns)
    with _smalleig._use_tier(tier):
        X = _solve_small(B, mats, shift, True)
        assert X is not None
        assert_array_equal(X, KronSumSolver(mats).solve(B, shift=shift))
        assert_array_equal(X, solve_kronsum(B, mats, shift=shift))
    assert scaled_residual(B, X, mats, shift=shift) <= 30


def put(M, index, value):
    """A copy of ``M`` with one entry replaced."""
    M = M.copy()
    M[index] = value
    return M


def test_small_path_declines_what_it_does_not_handle():
    """Anything but a real, exactly symmetric, definite, small problem goes the general way."""
    from kronsolve._backends._transform import _FRONT_MAX
    from kronsolve._backends.numpy import NUMPY

    _solve_small = NUMPY.solve_small

    rng = np.random.default_rng(3)
    A = sym_factor(rng, rng.uniform(1, 2, 6))
    B = rng.standard_normal((6, 6))
    assert _solve_small(B, [A, A], 0.0, True) is not None
    N = rng.standard_normal((6, 6))
    big = sym_factor(rng, rng.uniform(1, 2, _FRONT_MAX + 1))
    declined = {
        "float32 B": (B.astype(np.float32), [A, A], 0.0),
        "float32 factor": (B, [A, A.astype(np.float32)], 0.0),
        "batch dimension": (np.stack([B, B]), [A, A], 0.0),
        "F-ordered B": (np.asfortranarray(B), [A, A], 0.0),
        "non-symmetric factor": (B, [A, A + 0.1 * N], 0.0),
        "nearly symmetric factor": (B, [A, A + 1e-17 * N], 0.0),
        "complex shift": (B, [A, A], 1j),
        "indefinite sum": (B, [A, A], -3.0),
        "large factor": (rng.standard_normal((6, _FRONT_MAX + 1)), [A, big], 0.0),
        "non-finite B": (np.full((6, 6), np.nan), [A, A], 0.0),
        "non-finite factor": (B, [A, np.full((6, 6), np.inf)], 0.0),
        "one inf in B": (put(B, (4, 1), np.inf), [A, A], 0.0),
        "one NaN in a factor": (B, [A, put(A, (1, 3), np.nan)], 0.0),
        "inf on a diagonal": (B, [put(A, (2, 2), np.inf), A], 0.0),
        "-inf on a diagonal": (B, [A, put(A, (5, 5), -np.inf)], 0.0),
        "symmetric inf": (B, [A, put(put(A, (1, 3), np.inf), (3, 1), np.inf)], 0.0),
        "list factor": (B, [A, A.tolist()], 0.0),
        "empty B": (np.zeros((0, 6)), [np.zeros((0, 0)), A], 0.0),
    }
    for what, (b, mats, shift) in declined.items():
        assert _solve_small(b, mats, shift, True) is None, what
        if "inf" in what or "NaN" in what:
            with pytest.raises(ValueError, match="must contain only finite numbers"):
                solve_kronsum(b, mats, shift=shift)
    # the general path then solves or explains
    with pytest.raises(np.linalg.LinAlgError, match="singular"):
        solve_kronsum(B, [A, A], shift=-float(np.linalg.eigvalsh(A)[0]) * 2)
    X = solve_kronsum(B, [A, A + 0.1 * N])
    assert scaled_residual(B, X, [A, A + 0.1 * N]) <= 30


# ------------------------------------------------------------------ backends
# solve_kronsum, solve_sylvester3d and KronSumSolver (masses and shifts
# included) on the array library of the ``be`` fixture (conftest.py): inputs
# converted with be.asarray, results of the backend's kind, equal to the dense
# solves of naive.py.


def _problem(rng, ns, kind):
    make = sym_factor if kind == "sym" else gen_factor
    return [make(rng, rng.uniform(1, 3, n)) for n in ns]


def test_backend_solver_is_a_kronsumsolver(be):
    rng = np.random.default_rng(70)
    mats = _problem(rng, (3, 4), "sym")
    solver = KronSumSolver([be.asarray(A) for A in mats])
    assert type(solver) is KronSumSolver
    assert solver.shape == (3, 4) and solver.ndim == 2
    M = sym_factor(rng, rng.uniform(1, 2, 3))
    solver = KronSumSolver([be.asarray(A) for A in mats], masses=[be.asarray(M), None])
    assert type(solver) is KronSumSolver


@pytest.mark.parametrize("kind", ["sym", "gen"])
@pytest.mark.parametrize("batch", [(), (2,)], ids=str)
def test_backend_solve_kronsum(be, kind, batch):
    rng = np.random.default_rng(71)
    mats = _problem(rng, (3, 4, 2), kind)
    B = rng.standard_normal(batch + (3, 4, 2))
    t = 1e-10 if kind == "sym" else 1e-8
    for shift in (0.0, 0.7):
        got = solve_kronsum(be.asarray(B), [be.asarray(A) for A in mats], shift=shift)
        be.check_kind(got)
        assert got.shape == B.shape
        assert_allclose(be.to_numpy(got), naive.solve_kronsum(B, mats, shift=shift),
                        rtol=t, atol=t)


@pytest.mark.parametrize("shift", [0.0, 0.4])
def test_backend_solve_kronsum_masses(be, shift):
    rng = np.random.default_rng(72)
    mats = _problem(rng, (3, 4), "sym")
    masses = [sym_factor(rng, rng.uniform(1, 2, 3)), None]
    B = rng.standard_normal((3, 4))
    got = solve_kronsum(be.asarray(B), [be.asarray(A) for A in mats],
                        masses=[be.asarray(masses[0]), None], shift=shift)
    be.check_kind(got)
    assert_allclose(be.to_numpy(got), naive.solve_kronsum(B, mats, masses, shift),
                    rtol=1e-10, atol=1e-12)


def test_backend_solve_sylvester3d(be):
    rng = np.random.default_rng(73)
    A1, A2, A3 = _problem(rng, (3, 4, 5), "sym")
    B = rng.standard_normal((2, 3, 4, 5))
    ref = naive.solve_sylvester3d(B, A1, A2, A3, shift=0.5)
    for factors in ([be.asarray(A) for A in (A1, A2, A3)], [A1, A2, A3]):
        got = solve_sylvester3d(be.asarray(B), *factors, shift=0.5)
        be.check_kind(got)
        assert_allclose(be.to_numpy(got), ref, rtol=1e-10, atol=1e-12)
    # A2 and A3 default to A
    C = rng.standard_normal((3, 3, 3))
    got = solve_sylvester3d(be.asarray(C), be.asarray(A1))
    be.check_kind(got)
    assert_allclose(be.to_numpy(got), naive.solve_sylvester3d(C, A1), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("with_masses", [False, True])
def test_backend_kronsum_solver_shifts_and_masses(be, with_masses):
    rng = np.random.default_rng(74)
    mats = _problem(rng, (3, 4, 2), "sym")
    masses = ([sym_factor(rng, rng.uniform(1, 2, n)) for n in (3, 4)] + [None]
              if with_masses else None)
    bmasses = None if masses is None else [None if M is None else be.asarray(M) for M in masses]
    solver = KronSumSolver([be.asarray(A) for A in mats], masses=bmasses)
    shifts = (0.0, 1.5, -0.3) if with_masses else (0.0, 1.5, -0.3, 0.5j)
    for shift in shifts:
        B = rng.standard_normal((2, 3, 4, 2))
        got = solver.solve(be.asarray(B), shift=shift)
        be.check_kind(got)
        assert_allclose(be.to_numpy(got), naive.solve_kronsum(B, mats, masses, shift),
                        rtol=1e-10, atol=1e-12)
    # NumPy factors, right-hand side of the backend's kind
    got = KronSumSolver(mats, masses=masses).solve(be.asarray(B), shift=0.25)
    be.check_kind(got)
    assert_allclose(be.to_numpy(got), naive.solve_kronsum(B, mats, masses, 0.25),
                    rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------- defects


def test_factors_as_separate_arguments_raise_type_error():
    A = np.eye(3) * 2
    with pytest.raises(TypeError, match="list"):
        KronSumSolver(A, A, A)
    with pytest.raises(TypeError, match="list"):
        solve_kronsum(np.ones((3, 3)), A, A)


def test_one_dimensional_right_hand_side(be):
    """A vector b of length N = n1*...*nd is solved as b.reshape(ns), and stays a vector."""
    rng = np.random.default_rng(75)
    ns = (3, 4, 2)
    mats = _problem(rng, ns, "sym")
    bmats = [be.asarray(A) for A in mats]
    b = rng.standard_normal(24)
    ref = naive.solve_kronsum(b.reshape(ns), mats).ravel()
    assert_allclose(ref, naive.solve_kronsum(b, mats), rtol=1e-12)
    for got in (KronSumSolver(bmats).solve(be.asarray(b)),
                solve_kronsum(be.asarray(b), bmats),
                kronsum(*bmats).solve(be.asarray(b))):
        be.check_kind(got)
        assert tuple(got.shape) == (24,)
        assert_allclose(be.to_numpy(got), ref, rtol=1e-10, atol=1e-12)
    got = KronSumSolver(bmats).solve(be.asarray(b), shift=0.5)
    assert tuple(got.shape) == (24,)
    assert_allclose(be.to_numpy(got), naive.solve_kronsum(b, mats, shift=0.5),
                    rtol=1e-10, atol=1e-12)


def test_solver_aslinearoperator_preconditions_cg():
    """The solver as a SciPy LinearOperator applying the inverse: a preconditioner for CG."""
    import scipy.sparse.linalg as spla

    rng = np.random.default_rng(76)
    n = 10
    T = 2 * np.eye(n) - np.eye(n, k=1) - np.eye(n, k=-1)
    solver = KronSumSolver([T, T])
    op = solver.aslinearoperator()
    assert isinstance(op, spla.LinearOperator)
    assert op.shape == (n * n, n * n)
    b = rng.standard_normal(n * n)
    assert_allclose(op @ b, solver.solve(b.reshape(n, n)).ravel(), rtol=1e-12, atol=1e-14)
    assert_allclose(op @ b, naive.solve_kronsum(b, [T, T]), rtol=1e-10, atol=1e-12)
    # the Kronecker sum plus a small symmetric perturbation (still definite)
    E = rng.standard_normal((n * n, n * n))
    E = 0.01 * (E + E.T) / np.linalg.norm(E + E.T, 2)
    D = naive.kronsum(T, T) + E
    A = spla.aslinearoperator(D)
    pre, plain = [], []
    x, info = spla.cg(A, b, M=op, rtol=1e-10, atol=0.0, callback=pre.append)
    assert info == 0
    assert_allclose(x, np.linalg.solve(D, b), rtol=1e-7, atol=1e-9)
    spla.cg(A, b, rtol=1e-10, atol=0.0, callback=plain.append)
    assert len(pre) < len(plain) / 2, (len(pre), len(plain))


def test_sylvester3d_wrong_trailing_shape_names_B():
    n = 8
    T = 2 * np.eye(n) - np.eye(n, k=1) - np.eye(n, k=-1)
    with pytest.raises(ValueError, match="B must have shape"):
        solve_sylvester3d(np.ones((n, n, n + 1)), T)


def test_masked_right_hand_side_is_refused():
    A = 2 * np.eye(3)
    with pytest.raises((ValueError, TypeError), match="(?i)masked"):
        solve_kronsum(np.ma.array(np.ones((3, 3)), mask=np.eye(3, dtype=bool)), [A, A])


@pytest.mark.skipif(np.dtype(np.longdouble) == np.float64,
                    reason="np.longdouble is float64 on this platform")
def test_long_double_factor_is_refused_naming_the_argument():
    A = sym_factor(np.random.default_rng(77), [1.0, 2.0, 3.0])
    names = (str(np.dtype(np.longdouble)), "longdouble")
    for k, mats in enumerate([[A.astype(np.longdouble), A], [A, A.astype(np.longdouble)]]):
        with pytest.raises(TypeError, match=rf"mats\[{k}\]") as info:
            solve_kronsum(np.ones((3, 3)), mats)
        assert any(n in str(info.value) for n in names), str(info.value)


@pytest.mark.parametrize("m,n", [(1, 1), (4, 3), (5, 5)])
def test_solve_sylvester_matches_dense_kron(m, n):
    rng = np.random.default_rng(78 + m + n)
    a = sym_factor(rng, rng.uniform(1, 3, m))
    b = sym_factor(rng, rng.uniform(1, 3, n))
    q = rng.standard_normal((m, n))
    assert_allclose(solve_sylvester(a, b, q), naive.solve_sylvester(a, b, q), rtol=1e-10)
    g = gen_factor(rng, rng.uniform(1, 3, n))
    assert_allclose(solve_sylvester(a, g, q), naive.solve_sylvester(a, g, q), rtol=1e-10)
