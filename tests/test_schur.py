"""The Schur route of the Kronecker-sum solvers (generalized Bartels–Stewart).

Non-symmetric factors (convection–diffusion, Jordan-like, non-normal, graded,
badly scaled), the recursion of the blocked back-substitution (with
``kronsolve._schur._LEAF`` made small), singular sums, the choice of method,
the float32 singularity tolerance, the scaled symmetry test of
``solve_sylvester`` and the PyTorch backend.

Accuracy is measured LAPACK-style, by the scaled residual
``‖B − op(X)‖ / (‖op‖ ‖X‖ eps) <= 30``, and against a manufactured solution
``X_true`` (``B = op(X_true)`` formed densely): the forward error must stay
within a small multiple of the forward error of ``np.linalg.solve`` on the
dense operator.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import textwrap
import warnings

import naive
import numpy as np
import pytest
import scipy.linalg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from test_solvers import _peak_extra, gen_factor, orthogonal, sym_factor
from test_solvers import scaled_residual as _scaled_residual
from threadpoolctl import ThreadpoolController

import kronsolve as ks
from kronsolve import KronSumSolver, solve_kronsum, solve_sylvester, solve_sylvester3d

EPS64 = np.finfo(np.float64).eps

# leaf sizes of the recursion: the default (small problems never recurse) and
# small ones that split every mode, inside and next to 2 x 2 blocks
LEAVES = [None, 2, 3]


@pytest.fixture
def leaf(request, monkeypatch):
    """``kronsolve._schur._LEAF`` set to the parameter (None: the default)."""
    if request.param is not None:
        monkeypatch.setattr(ks._schur, "_LEAF", request.param)
    return request.param


# ----------------------------------------------------------------- helpers

_BLAS = ThreadpoolController()


def serial_blas(fn):
    """Run a dense reference computation with one BLAS thread.

    Small dense solves with several OpenBLAS threads can be 20-100 times slower
    on busy machines (threads spinning in two BLAS libraries, NumPy's and
    SciPy's); the references are kept serial so the file stays fast.  The
    library's own calls run with the default threads.
    """
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with _BLAS.limit(limits=1, user_api="blas"):
            return fn(*args, **kwargs)
    return wrapper


scaled_residual = serial_blas(_scaled_residual)
sylvester_ref = serial_blas(scipy.linalg.solve_sylvester)


def conv_diff(n, pe, scheme):
    """The 1-D convection–diffusion matrix on ``n`` interior points, ``h = 1/(n+1)``."""
    h = 1.0 / (n + 1)
    eye, E = np.eye(n), np.eye(n, k=-1)
    D = (2 * eye - E - E.T) / h**2
    if scheme == "upwind":
        return D + pe * (eye - E) / h
    assert scheme == "central"
    return D + pe * (E.T - E) / (2 * h)


def laplacian(n, dtype=np.float64):
    """The scaled 1-D Dirichlet Laplacian ``(2I − E − Eᵀ)(n+1)²``."""
    E = np.eye(n, k=-1)
    return ((2 * np.eye(n) - E - E.T) * (n + 1) ** 2).astype(dtype)


def rotation_blocks(rng, n, rotate=True):
    """A real matrix with complex eigenvalue pairs: 2 x 2 blocks ``[[a, w], [-w, a]]``
    (and a 1 x 1 block when ``n`` is odd) plus a strictly upper part, rotated."""
    A = np.zeros((n, n))
    for i in range(0, n - 1, 2):
        a, w = rng.uniform(1.0, 3.0), rng.uniform(0.5, 4.0)
        A[i:i + 2, i:i + 2] = [[a, w], [-w, a]]
    if n % 2:
        A[-1, -1] = rng.uniform(1.0, 3.0)
    A += np.triu(rng.standard_normal((n, n)), 2)
    if rotate:
        Q = orthogonal(rng, n)
        A = Q @ A @ Q.T
    return A


def random_real(rng, n):
    """A random real matrix (complex pairs), its spectrum (``|λ| ≲ √n`` before the
    shift) moved into the right half-plane."""
    R = rng.standard_normal((n, n))
    return R + (1.0 + 1.5 * np.sqrt(n)) * np.eye(n)


def random_complex(rng, n):
    R = rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))
    return R + (1.0 + 2.0 * np.sqrt(n)) * np.eye(n)


@serial_blas
def manufactured(rng, mats, batch=(), masses=None, shift=0.0, complex_=False):
    """``(X_true, B, D)`` with ``B = op(X_true)`` formed with the dense operator ``D``."""
    ns = tuple(A.shape[0] for A in mats)
    Xt = rng.standard_normal(batch + ns)
    if complex_:
        Xt = Xt + 1j * rng.standard_normal(batch + ns)
    D = naive.kronsum_with_masses(mats, masses, shift)
    N = D.shape[0]
    B = (Xt.reshape(-1, N) @ D.T).reshape(Xt.shape)
    return Xt, B, D


@serial_blas
def dense_solve(D, B):
    N = D.shape[0]
    return np.linalg.solve(D, B.reshape(-1, N).T).T.reshape(B.shape)


def rel_err(X, Y):
    """``‖X − Y‖ / ‖Y‖`` by max-norms (safe from overflow for badly scaled data)."""
    return float(np.max(np.abs(X - Y)) / np.max(np.abs(Y)))


def assert_forward_error(X, Xt, B, D, factor=10.0, floor=50 * EPS64):
    """The forward error of ``X`` at most ``factor`` times that of a dense solve (+ a floor)."""
    Xd = dense_solve(D, np.asarray(B, np.result_type(B, D)))
    err, ref = rel_err(X, Xt), rel_err(Xd, Xt)
    assert err <= factor * ref + floor, (err, ref)


def solve_quietly(*args, **kwargs):
    """``solve_kronsum`` with every warning an error (the default route must not warn)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return solve_kronsum(*args, **kwargs)


# --------------------------------------------- 1. convection–diffusion factors


CD_SIZES = {2: 24, 3: 10, 4: 5}


@pytest.mark.parametrize("leaf", LEAVES, indirect=True)
@pytest.mark.parametrize("pe", [1.0, 100.0, 1e3, 1e4])
@pytest.mark.parametrize("scheme", ["upwind", "central"])
@pytest.mark.parametrize("d", [2, 3, 4])
def test_convection_diffusion(d, scheme, pe, leaf):
    rng = np.random.default_rng(d * 1000 + int(pe))
    n = CD_SIZES[d]
    mats = [conv_diff(n, pe, scheme)] * d
    Xt, B, D = manufactured(rng, mats)
    X = solve_quietly(B, mats)
    assert X.shape == B.shape and X.dtype == np.float64
    assert scaled_residual(B, X, mats) <= 30
    assert_forward_error(X, Xt, B, D)
    if d == 2:
        # X ×₁ A1 + X ×₂ A2 = B is A1 X + X A2ᵀ = B
        ref = sylvester_ref(mats[0], mats[1].T, B)
        assert rel_err(X, ref) <= 1e-12


MIXED = {
    # distinct Péclet numbers, schemes and sizes per mode; a Laplacian (Pe = 0,
    # symmetric: an eigh mode) among the Schur modes
    "d2": [conv_diff(24, 100.0, "central"), conv_diff(17, 1e4, "upwind")],
    "d3": [conv_diff(10, 1.0, "upwind"), conv_diff(9, 1e3, "central"),
           conv_diff(11, 1e4, "upwind")],
    "d3-laplacian": [conv_diff(10, 1e3, "central"), laplacian(8), conv_diff(7, 100.0, "upwind")],
    "d4": [conv_diff(6, 1e4, "central"), conv_diff(5, 1.0, "upwind"), laplacian(6),
           conv_diff(7, 1e3, "central")],
}


@pytest.mark.parametrize("leaf", LEAVES, indirect=True)
@pytest.mark.parametrize("case", list(MIXED))
def test_convection_diffusion_distinct_modes(case, leaf):
    rng = np.random.default_rng(len(case))
    mats = MIXED[case]
    for shift in (0.0, 50.0):
        Xt, B, D = manufactured(rng, mats, shift=shift)
        X = solve_quietly(B, mats, shift=shift)
        assert scaled_residual(B, X, mats, shift=shift) <= 30
        assert_forward_error(X, Xt, B, D)
        if len(mats) == 2:
            ref = sylvester_ref(mats[0] + shift * np.eye(len(mats[0])), mats[1].T, B)
            assert rel_err(X, ref) <= 1e-12


# ------------------------------- 2. Jordan-like, non-normal and other factors


def _jordan(rng, n):
    return 3 * np.eye(n) + 2 * np.eye(n, k=1)


def _rotated_jordan(rng, n):
    Q = orthogonal(rng, n)
    return Q @ np.eye(n, k=1) @ Q.T + 2 * np.eye(n)


def _advection(rng, n):
    h = 1.0 / (n + 1)
    return (np.eye(n) - np.eye(n, k=-1)) / h  # one eigenvalue 1/h, one Jordan block


def _graded(rng, n):
    Dg = np.logspace(0, 8, n)
    return (Dg[:, None] * conv_diff(n, 100.0, "central")) / Dg[None, :]


# name: (factor maker, sizes); each case runs as a d-mode problem
FACTOR_CASES = {
    "jordan-d2": (_jordan, (12, 12)),
    "jordan-d3": (_jordan, (8, 7, 6)),
    "rotated-jordan": (_rotated_jordan, (12, 10)),
    "advection-upwind": (_advection, (16, 16)),
    "rotation-blocks": (rotation_blocks, (9, 8)),
    "rotation-blocks-d3": (rotation_blocks, (7, 6, 5)),
    "random-real": (random_real, (11, 9)),
    "random-real-d3": (random_real, (7, 8, 6)),
    "graded": (_graded, (12, 10)),
    "random-complex": (random_complex, (7, 6, 5)),
}


@pytest.mark.parametrize("leaf", LEAVES, indirect=True)
@pytest.mark.parametrize("case", list(FACTOR_CASES))
def test_nonnormal_factors(case, leaf):
    rng = np.random.default_rng(sum(map(ord, case)))
    make, ns = FACTOR_CASES[case]
    mats = [make(rng, n) for n in ns]
    cplx = any(np.iscomplexobj(A) for A in mats)
    Xt, B, D = manufactured(rng, mats, complex_=cplx)
    X = solve_quietly(B, mats)
    assert X.dtype == (np.complex128 if cplx else np.float64)
    assert scaled_residual(B, X, mats) <= 30
    assert_forward_error(X, Xt, B, D)


@pytest.mark.parametrize("leaf", LEAVES, indirect=True)
@pytest.mark.parametrize("scale", [2.0**500, 2.0**-500], ids=["1e150", "1e-150"])
def test_badly_scaled_factors(scale, leaf):
    """``A·s`` with ``B·s``: the same solution; powers of two keep the scaling exact.

    The factors are normalized to ``max |A_ij| = 1`` first, so the largest scaled
    entry is ``s`` itself (see ``test_solve_sylvester_badly_scaled_nonsymmetric``
    for larger ones)."""
    rng = np.random.default_rng(4)
    mats = [rotation_blocks(rng, 9), conv_diff(8, 1e3, "central")]
    mats = [A / 2.0 ** np.ceil(np.log2(np.abs(A).max())) for A in mats]
    Xt, B, D = manufactured(rng, mats)
    X = solve_quietly(B * scale, [A * scale for A in mats])
    assert np.all(np.isfinite(X))
    assert scaled_residual(B, X, mats) <= 30
    assert_forward_error(X, Xt, B, D)


@pytest.mark.parametrize("leaf", LEAVES, indirect=True)
@pytest.mark.parametrize("dtype", [np.float32, np.complex64])
def test_single_precision(dtype, leaf):
    rng = np.random.default_rng(5)
    if dtype == np.float32:
        mats = [conv_diff(9, 100.0, "upwind"), rotation_blocks(rng, 8), random_real(rng, 7)]
    else:
        mats = [random_complex(rng, 9), random_complex(rng, 8), rotation_blocks(rng, 7)]
    mats = [(A / np.abs(A).max()).astype(dtype) for A in mats]
    B = rng.standard_normal((9, 8, 7))
    if dtype == np.complex64:
        B = B + 1j * rng.standard_normal(B.shape)
    B = B.astype(dtype)
    X = solve_quietly(B, mats)
    assert X.dtype == dtype
    assert scaled_residual(B, X, mats) <= 30  # with the float32 eps


@pytest.mark.parametrize("leaf", LEAVES, indirect=True)
def test_complex_shift_on_real_factors(leaf):
    rng = np.random.default_rng(6)
    mats = [conv_diff(10, 1e3, "central"), rotation_blocks(rng, 9), random_real(rng, 6)]
    for shift in (2.0 + 3.0j, -1.5j):
        Xt, B, D = manufactured(rng, mats, shift=shift, complex_=True)
        X = solve_quietly(B, mats, shift=shift)
        assert X.dtype == np.complex128
        assert scaled_residual(B, X, mats, shift=shift) <= 30
        assert_forward_error(X, Xt, B, D)
    # a real right-hand side with a complex shift: a complex result
    Breal = rng.standard_normal((10, 9, 6))
    X = solve_quietly(Breal, mats, shift=1j)
    assert X.dtype == np.complex128
    assert scaled_residual(Breal, X, mats, shift=1j) <= 30


@pytest.mark.parametrize("leaf", LEAVES, indirect=True)
@pytest.mark.parametrize("mass_kind", ["spd", "nonsymmetric", "mixed"])
def test_masses_with_nonsymmetric_stiffness(mass_kind, leaf):
    rng = np.random.default_rng(7)
    ns = (9, 7, 6)
    mats = [conv_diff(9, 1e3, "central"), rotation_blocks(rng, 7), _jordan(rng, 6)]
    spd = [sym_factor(rng, rng.uniform(1.0, 2.0, n)) for n in ns]
    nonsym = [np.eye(n) + 0.2 * rng.standard_normal((n, n)) / np.sqrt(n) for n in ns]
    masses = {"spd": spd, "nonsymmetric": nonsym,
              "mixed": [spd[0], None, nonsym[2]]}[mass_kind]
    for shift in (0.0, 0.8):
        Xt, B, D = manufactured(rng, mats, batch=(2,), masses=masses, shift=shift)
        X = solve_quietly(B, mats, masses=masses, shift=shift)
        assert X.shape == B.shape
        assert scaled_residual(B, X, mats, masses, shift) <= 30
        assert_forward_error(X, Xt, B, D)


@pytest.mark.parametrize("leaf", LEAVES, indirect=True)
def test_batches_flat_and_one_mode(leaf):
    rng = np.random.default_rng(8)
    mats = [rotation_blocks(rng, 7), conv_diff(6, 1e4, "upwind")]
    # leading batch dimensions
    Xt, B, D = manufactured(rng, mats, batch=(2, 3))
    X = solve_quietly(B, mats)
    assert X.shape == (2, 3, 7, 6)
    assert scaled_residual(B, X, mats) <= 30
    assert_forward_error(X, Xt, B, D)
    # each batch entry is the problem on its own
    assert_allclose(X[1, 2], solve_quietly(B[1, 2], mats), rtol=1e-13, atol=1e-13)
    # a flat right-hand side gives a flat result
    x = solve_quietly(B[0, 0].ravel(), mats)
    assert x.shape == (42,)
    assert_allclose(x, X[0, 0].ravel(), rtol=1e-13, atol=1e-13)
    x = KronSumSolver(mats).solve(B[0, 1].ravel(), shift=0.5)
    assert x.shape == (42,)
    assert_allclose(x, dense_solve(naive.kronsum_with_masses(mats, shift=0.5), B[0, 1].ravel()),
                    rtol=1e-12, atol=1e-12)
    # non-contiguous right-hand sides, and overwrite_b
    F = np.asfortranarray(B)
    assert_allclose(solve_quietly(F, mats), X, rtol=1e-13, atol=1e-13)
    W = np.zeros((2, 3, 7, 12))
    W[..., ::2] = B
    assert_allclose(solve_quietly(W[..., ::2], mats), X, rtol=1e-13, atol=1e-13)
    Bw = B.copy()
    Y = solve_quietly(Bw, mats, overwrite_b=True)
    assert_allclose(Y, X, rtol=1e-13, atol=1e-13)
    # d = 1: a plain non-symmetric solve, batched
    A = rotation_blocks(rng, 11) + 2 * np.eye(11, k=1)
    b = rng.standard_normal((4, 11))
    x = solve_quietly(b, [A], shift=0.3)
    ref = np.linalg.solve(A + 0.3 * np.eye(11), b.T).T
    assert x.shape == (4, 11)
    assert rel_err(x, ref) <= 1e-13
    J = _jordan(rng, 9)
    assert rel_err(solve_quietly(b[0, :9], [J]), np.linalg.solve(J, b[0, :9])) <= 1e-13


# --------------------------------------------------------------- 3. singular


def test_singular_nilpotent_jordan():
    n = 12
    J = np.eye(n, k=1)  # every eigenvalue 0, defective
    with pytest.raises(np.linalg.LinAlgError, match="singular"):
        solve_kronsum(np.ones((n, n)), [J, J])


@pytest.mark.parametrize("method", ["auto", "schur"])
def test_singular_shifted_jordan_names_eigenvalue_sum(method):
    n = 12
    A = 3 * np.eye(n) + np.eye(n, k=1)
    with pytest.raises(np.linalg.LinAlgError,
                       match=r"singular.*λ1\[\d+\] \+ λ2\[\d+\] \+ shift"):
        solve_kronsum(np.ones((n, n)), [A, A], shift=-6.0, method=method)
    with pytest.raises(np.linalg.LinAlgError, match=r"λ1\[\d+\] \+ λ2\[\d+\] \+ shift"):
        KronSumSolver([A, A], method=method).solve(np.ones((n, n)), shift=-6.0)
    # nearby shifts are fine
    B = np.ones((n, n))
    X = solve_quietly(B, [A, A], shift=-5.0, method=method)
    assert scaled_residual(B, X, [A, A], shift=-5.0) <= 30


def test_singular_rotated_nilpotent_jordan():
    """The computed eigenvalues of a rotated Jordan block are perturbed away from 0
    (by about eps**(1/12)): the solution must show the singularity."""
    rng = np.random.default_rng(9)
    n = 12
    Q = orthogonal(rng, n)
    N = Q @ np.eye(n, k=1) @ Q.T
    with pytest.raises(np.linalg.LinAlgError, match="singular"):
        solve_kronsum(np.ones((n, n)), [N, N])


# ---------------------------------------------------------- 4. method choice


def test_method_eig_well_conditioned():
    rng = np.random.default_rng(10)
    mats = [gen_factor(rng, rng.uniform(1, 3, n)) for n in (7, 6, 5)]
    Xt, B, D = manufactured(rng, mats)
    X = solve_quietly(B, mats, method="eig")
    assert scaled_residual(B, X, mats) <= 30
    assert_forward_error(X, Xt, B, D)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        solver = KronSumSolver(mats, method="eig")
        assert_allclose(solver.solve(B, shift=0.5),
                        dense_solve(naive.kronsum_with_masses(mats, shift=0.5), B),
                        rtol=1e-12, atol=1e-12)


_EIG_WARNING_SCRIPT = textwrap.dedent("""
    import json, warnings
    import numpy as np
    import kronsolve as ks

    seen = []
    def hook(message, category, filename, lineno, file=None, line=None):
        seen.append((category.__name__, str(message)))
    warnings.showwarning = hook

    n = 16
    h = 1.0 / (n + 1)
    E = np.eye(n, k=-1)
    A = (2 * np.eye(n) - E - E.T) / h**2 + 1e3 * (np.eye(n) - E) / h
    B = np.random.default_rng(0).standard_normal((n, n, n))
    out = {}
    for _ in range(2):
        X = ks.solve_kronsum(B, [A, A, A], method="eig")
    out["function"] = list(seen)
    seen.clear()
    solver = ks.KronSumSolver([A, A, A], method="eig")
    out["construction"] = list(seen)
    seen.clear()
    for _ in range(2):
        Y = solver.solve(B)
    out["solver"] = list(seen)
    out["diff"] = float(np.max(np.abs(X - Y)) / np.max(np.abs(Y)))
    print(json.dumps(out))
""")


def test_method_eig_warns_on_every_call_with_default_filters():
    """With Python's default warning filters, the fallback warns on every call of a
    loop (one call site), not once: run in a fresh interpreter, outside pytest's
    warning capture."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    proc = subprocess.run([sys.executable, "-c", _EIG_WARNING_SCRIPT], capture_output=True,
                          text=True, env=env, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["diff"] <= 1e-12  # both from the Schur route

    def count(ws, text):
        return sum(1 for cat, msg in ws if cat == "AccuracyWarning" and text in msg)

    fallback = "Schur route"
    basis = "eigenvector basis"
    # solve_kronsum: one ill-conditioned basis warning and one fallback per call
    assert count(out["function"], fallback) == 2, out["function"]
    assert count(out["function"], basis) == 2, out["function"]
    # KronSumSolver: the basis once at construction, the fallback on every solve
    assert count(out["construction"], basis) == 1, out["construction"]
    assert count(out["construction"], fallback) == 0
    assert count(out["solver"], fallback) == 2, out["solver"]
    assert count(out["solver"], basis) == 0, out["solver"]
    assert all(cat == "AccuracyWarning" for cat, _ in out["function"] + out["solver"])


def test_method_eig_falls_back_to_schur_accurately():
    n = 16
    A = conv_diff(n, 1e3, "upwind")
    mats = [A, A, A]
    rng = np.random.default_rng(11)
    B = rng.standard_normal((n, n, n))

    def fallbacks(w):
        return [x for x in w if issubclass(x.category, ks.AccuracyWarning)
                and "Schur route" in str(x.message)]

    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        X = solve_kronsum(B, mats, method="eig")
        assert len(fallbacks(w)) == 1
        assert scaled_residual(B, X, mats) <= 30
        assert_allclose(X, solve_kronsum(B, mats, method="schur"), rtol=1e-12, atol=1e-14)
        solver = KronSumSolver(mats, method="eig")
        assert len(fallbacks(w)) == 1
        for i in range(2):
            Y = solver.solve(B, shift=0.5)
            assert len(fallbacks(w)) == 2 + i
            assert scaled_residual(B, Y, mats, shift=0.5) <= 30


@pytest.mark.parametrize("leaf", LEAVES, indirect=True)
def test_method_schur_on_symmetric_factors_agrees_with_eigh(leaf):
    rng = np.random.default_rng(12)
    mats = [sym_factor(rng, rng.uniform(1, 3, n)) for n in (7, 6, 5)]
    masses = [sym_factor(rng, rng.uniform(1, 2, n)) for n in (7, 6, 5)]
    B = rng.standard_normal((2, 7, 6, 5))
    for kw in ({}, {"shift": 0.7}, {"masses": masses, "shift": 0.3}):
        Xs = solve_quietly(B, mats, method="schur", **kw)
        Xe = solve_quietly(B, mats, method="eigh", **kw)
        assert_allclose(Xs, Xe, rtol=1e-11, atol=1e-13)
        assert scaled_residual(B, Xs, mats, kw.get("masses"), kw.get("shift", 0.0)) <= 30
    T = laplacian(9)
    Xs = solve_sylvester3d(np.ones((9, 9, 9)), T, method="schur")
    assert_allclose(Xs, solve_sylvester3d(np.ones((9, 9, 9)), T), rtol=1e-11)


def test_invalid_method():
    A = np.eye(3) + np.eye(3, k=1)
    B = np.ones((3, 3))
    with pytest.raises(ValueError, match="method"):
        solve_kronsum(B, [A, A], method="lu")
    with pytest.raises(ValueError, match="method"):
        KronSumSolver([A, A], method="Schur")
    with pytest.raises(ValueError, match="method"):
        solve_sylvester3d(np.ones((3, 3, 3)), A, method=None)


# ------------------------------------------------------ 5. KronSumSolver reuse


@pytest.mark.parametrize("leaf", LEAVES, indirect=True)
def test_solver_reuse_shifts_and_right_hand_sides(leaf):
    rng = np.random.default_rng(13)
    mats = [conv_diff(9, 1e3, "central"), gen_factor(rng, rng.uniform(1, 3, 7)),
            rotation_blocks(rng, 6)]
    solver = KronSumSolver(mats)
    assert solver.shape == (9, 7, 6)
    for shift in (0.0, 1.5, -0.5, 2.0 + 3.0j, 0.0):
        for batch in ((), (3,)):
            cplx = isinstance(shift, complex)
            Xt, B, D = manufactured(rng, mats, batch=batch, shift=shift, complex_=cplx)
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                X = solver.solve(B, shift=shift)
            assert X.shape == B.shape
            assert X.dtype == (np.complex128 if cplx else np.float64)
            assert scaled_residual(B, X, mats, shift=shift) <= 30
            assert_forward_error(X, Xt, B, D)
    # the same answer as the one-shot function, and again the same on a second call
    B = rng.standard_normal((9, 7, 6))
    X1 = solver.solve(B, shift=0.25)
    assert_allclose(X1, solve_kronsum(B, mats, shift=0.25), rtol=1e-13, atol=1e-15)
    assert np.array_equal(solver.solve(B, shift=0.25), X1)


# -------------------------------------------------------------- 6. hypothesis


@st.composite
def nonnormal_problems(draw):
    d = draw(st.integers(1, 3))
    ns = draw(st.lists(st.integers(1, 7), min_size=d, max_size=d))
    cplx = draw(st.booleans())
    shift_kind = draw(st.sampled_from(["zero", "real", "complex"]))
    batch = draw(st.sampled_from([(), (2,)]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    mats = []
    for n in ns:
        # triangular-heavy: a diagonal in [1, 2] (or in the right half-plane),
        # a large strictly upper part, a small full part (complex pairs), rotated
        lam = rng.uniform(1.0, 2.0, n)
        if cplx:
            lam = lam + 1j * rng.uniform(-2.0, 2.0, n)
        U = np.triu(rng.standard_normal((n, n)), 1)
        F = rng.standard_normal((n, n))
        if cplx:
            U = U + 1j * np.triu(rng.standard_normal((n, n)), 1)
            F = F + 1j * rng.standard_normal((n, n))
        T = np.diag(lam) + 10 * U + 0.3 * F
        Q = orthogonal(rng, n, cplx)
        mats.append(Q @ T @ Q.conj().T)
    shift = {"zero": 0.0, "real": float(rng.uniform(0.0, 3.0)),
             "complex": complex(rng.uniform(0.0, 3.0), rng.uniform(-3.0, 3.0))}[shift_kind]
    B = rng.standard_normal(batch + tuple(ns))
    if cplx:
        B = B + 1j * rng.standard_normal(B.shape)
    return B, mats, shift


def _check_nonnormal(problem):
    B, mats, shift = problem
    try:
        X = solve_quietly(B, mats, shift=shift)
    except np.linalg.LinAlgError:
        # only a sum singular to working precision may be refused
        D = naive.kronsum_with_masses(mats, shift=shift)
        assert np.linalg.cond(D) * EPS64 > 1e-3
        return
    assert X.shape == B.shape
    assert scaled_residual(B, X, mats, shift=shift) <= 30


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nonnormal_problems())
def test_hypothesis_nonnormal(problem):
    _check_nonnormal(problem)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nonnormal_problems(), st.sampled_from([2, 3, 4]))
def test_hypothesis_nonnormal_small_leaf(problem, leaf_size):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ks._schur, "_LEAF", leaf_size)
        _check_nonnormal(problem)


# ---------------------------------------------------- 7. float32 Poisson


def test_float32_poisson_2d():
    """The singularity tolerance no longer grows with n: the float32 Poisson problem
    of size 300 (smallest sum 2π², the old tolerance n·d·eps·scale about 50) solves."""
    n = 300
    T = laplacian(n, np.float32)
    B = np.ones((n, n), np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        X = solve_kronsum(B, [T, T])
    assert X.dtype == np.float32 and X.shape == (n, n)
    T64 = T.astype(np.float64)
    x = X.ravel().astype(np.float64)
    r = B.ravel().astype(np.float64) - ks.kronsum(T64, T64) @ x
    opn = 2 * np.linalg.norm(T64, 2)
    assert np.linalg.norm(r) / (opn * np.linalg.norm(x) * np.finfo(np.float32).eps) <= 30
    # and the Schur route (non-symmetric factors) in float32 at this size
    A = (T64 + 30.0 * (n + 1) * (np.eye(n) - np.eye(n, k=-1))).astype(np.float32)
    Y = solve_kronsum(B[:120, :100], [A[:120, :120], A[:100, :100]])
    assert Y.dtype == np.float32
    assert scaled_residual(B[:120, :100], Y, [A[:120, :120], A[:100, :100]]) <= 30


def _apply_laplacian_3d(X, c):
    """``X ×₁ T + X ×₂ T + X ×₃ T`` for ``T = c·tridiag(-1, 2, -1)``, by its stencil."""
    out = 6.0 * X
    for ax in range(3):
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        lo[ax], hi[ax] = slice(None, -1), slice(1, None)
        out[tuple(lo)] -= X[tuple(hi)]
        out[tuple(hi)] -= X[tuple(lo)]
    return c * out


def test_float32_poisson_3d():
    n = 200
    T = laplacian(n, np.float32)
    B = np.ones((n, n, n), np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        small = 32 * 3 * n * n + 65536
        peak, X = _peak_extra(lambda: solve_kronsum(B, [T, T, T]))
    assert X.dtype == np.float32 and X.shape == B.shape
    assert peak <= 2 * B.nbytes + small, peak / B.nbytes
    c = float((n + 1) ** 2)  # exact in float32
    assert T[0, 0] == 2 * c and T[1, 0] == -c
    x = X.astype(np.float64)
    r = B.astype(np.float64) - _apply_laplacian_3d(x, c)
    opn = 3 * np.linalg.norm(T.astype(np.float64), 2)
    assert np.linalg.norm(r) / (opn * np.linalg.norm(x) * np.finfo(np.float32).eps) <= 30


# ---------------------------------------------- 8. scaling of the symmetry test


@pytest.mark.parametrize("kind", ["complex-pairs", "real-eigenvalues"])
@pytest.mark.parametrize("scale", [1e160, 1e-200])
def test_solve_sylvester_badly_scaled_nonsymmetric(scale, kind):
    rng = np.random.default_rng(14)
    if kind == "complex-pairs":
        G = rng.standard_normal((6, 6))
    else:
        Q = orthogonal(rng, 6)
        G = Q @ (np.triu(rng.standard_normal((6, 6)), 1) + np.diag(rng.uniform(1, 2, 6))) @ Q.T
    assert not np.allclose(G, G.T)
    B = rng.standard_normal((6, 6))
    a, b = G * scale, G.T * scale
    ref = scipy.linalg.solve_sylvester(a, b, B)
    x = solve_sylvester(a, b, B)
    assert rel_err(x, ref) <= 1e-10


@pytest.mark.parametrize("scale", [1e160, 1e-200])
def test_solve_sylvester_badly_scaled_symmetric(scale):
    """Symmetric factors at these scales are recognized as symmetric (eigh route)."""
    rng = np.random.default_rng(15)
    G = rng.standard_normal((6, 6))
    S = (G + G.T) * scale + 12 * scale * np.eye(6)
    B = rng.standard_normal((6, 6))
    ref = scipy.linalg.solve_sylvester(S, S, B)
    assert rel_err(solve_sylvester(S, S, B), ref) <= 1e-10


# ----------------------------------------- 9. solve_sylvester, non-symmetric


@pytest.mark.parametrize("leaf", [None, 4], indirect=True)
@pytest.mark.parametrize("m,n", [(1, 1), (5, 5), (40, 40), (70, 70), (70, 5), (1, 40)])
@pytest.mark.parametrize("cplx", [False, True], ids=["real", "complex"])
def test_solve_sylvester_nonsymmetric_matches_scipy(m, n, cplx, leaf):
    rng = np.random.default_rng(m * 100 + n)
    a = random_complex(rng, m) if cplx else random_real(rng, m)
    b = random_complex(rng, n) if cplx else random_real(rng, n)
    q = rng.standard_normal((m, n))
    if cplx:
        q = q + 1j * rng.standard_normal((m, n))
    ref = sylvester_ref(a, b, q)
    x = solve_sylvester(a, b, q)
    assert x.dtype == ref.dtype and x.shape == (m, n)
    assert rel_err(x, ref) <= 1e-9
    assert np.linalg.norm(a @ x + x @ b - q) <= 30 * EPS64 * (
        np.linalg.norm(a, 2) + np.linalg.norm(b, 2)) * np.linalg.norm(x)


# ------------------------------------------------------------- 10. PyTorch


def test_torch_nonsymmetric_matches_numpy():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(16)
    mats = [conv_diff(8, 1e3, "central"), rotation_blocks(rng, 7), _jordan(rng, 6)]
    B = rng.standard_normal((2, 8, 7, 6))
    Xn = solve_kronsum(B, mats, shift=0.4)
    Xt = solve_kronsum(torch.from_numpy(B), [torch.from_numpy(A) for A in mats], shift=0.4)
    assert isinstance(Xt, torch.Tensor) and Xt.dtype == torch.float64
    assert_allclose(Xt.numpy(), Xn, rtol=1e-12, atol=1e-14)
    solver = KronSumSolver([torch.from_numpy(A) for A in mats])
    Yt = solver.solve(torch.from_numpy(B), shift=0.4)
    assert isinstance(Yt, torch.Tensor)
    assert_allclose(Yt.numpy(), Xn, rtol=1e-12, atol=1e-14)


def test_torch_schur_route_propagates_gradients():
    """The Schur route is differentiable by implicit differentiation (tests/test_autodiff.py)."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(17)
    A1, A2 = rotation_blocks(rng, 5), conv_diff(4, 100.0, "upwind")
    B = torch.from_numpy(rng.standard_normal((5, 4))).requires_grad_(True)
    a1 = torch.from_numpy(A1).requires_grad_(True)
    a2 = torch.from_numpy(A2)
    assert torch.autograd.gradcheck(lambda B, a1: solve_kronsum(B, [a1, a2]), (B, a1))
