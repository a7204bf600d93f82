"""Other array libraries: PyTorch, Dask and CuPy inputs give results of their own kind.

Every test runs once per backend; a backend whose library is missing (or, for
CuPy, that has no GPU) is skipped with the reason.  NumPy runs the same checks
as the reference.
"""

from __future__ import annotations

import numpy as np
import pytest
from backends import _cupy_reason, no_dask_compute

import kronsolve as ks

# The ``be`` fixture (one run per backend, skipped with the reason where the
# library or the GPU is missing) comes from conftest.py (see backends.py).


@pytest.fixture
def rng():
    return np.random.default_rng(12)


def _spd(rng, n, shift=None):
    A = rng.standard_normal((n, n))
    return A @ A.T + (n if shift is None else shift) * np.eye(n)


def _close(got, ref, rtol=1e-10, atol=1e-10):
    np.testing.assert_allclose(got, ref, rtol=rtol, atol=atol)


# ----------------------------------------------------------- mode products


@pytest.mark.parametrize("modes", [None, [0, 2], [2, 0, 1], [-1]])
def test_multi_mode_product(be, rng, modes):
    X = rng.standard_normal((3, 4, 5))
    k = 3 if modes is None else len(modes)
    axes = list(range(3 - k, 3)) if modes is None else [m % 3 for m in modes]
    mats = [rng.standard_normal((2 + i, X.shape[ax])) for i, ax in enumerate(axes)]
    ref = ks.multi_mode_product(X, mats, modes)
    got = ks.multi_mode_product(be.asarray(X), [be.asarray(A) for A in mats], modes)
    be.check_kind(got)
    _close(be.to_numpy(got), ref)


def test_multi_mode_product_full_and_batched(be, rng):
    """The rotating (all axes, square) scheme, with and without a trailing batch axis."""
    mats = [rng.standard_normal((n, n)) for n in (3, 4, 5)]
    for shape, modes in (((3, 4, 5), None), ((3, 4, 5, 2), [0, 1, 2])):
        X = rng.standard_normal(shape)
        ref = ks.multi_mode_product(X, mats, modes)
        got = ks.multi_mode_product(be.asarray(X), [be.asarray(A) for A in mats], modes)
        be.check_kind(got)
        _close(be.to_numpy(got), ref)


def test_mode_product_transpose(be, rng):
    X = rng.standard_normal((3, 4, 5))
    A = rng.standard_normal((4, 6))
    ref = ks.mode_product(X, A, 1, transpose=True)
    got = ks.mode_product(be.asarray(X), be.asarray(A), 1, transpose=True)
    be.check_kind(got)
    _close(be.to_numpy(got), ref)


def test_numpy_factors_with_foreign_tensor(be, rng):
    """NumPy factors are converted to the tensor's kind (and vice versa)."""
    X = rng.standard_normal((3, 4))
    A, B = rng.standard_normal((2, 3)), rng.standard_normal((5, 4))
    ref = ks.multi_mode_product(X, [A, B])
    got = ks.multi_mode_product(be.asarray(X), [A, B])
    be.check_kind(got)
    _close(be.to_numpy(got), ref)
    got = ks.multi_mode_product(X, [be.asarray(A), B])
    be.check_kind(got)
    _close(be.to_numpy(got), ref)


def test_shape_errors_are_the_same(be, rng):
    X = be.asarray(rng.standard_normal((3, 4)))
    with pytest.raises(ValueError, match="does not match axis 1"):
        ks.multi_mode_product(X, [be.asarray(np.ones((2, 3)))], [1])
    with pytest.raises(ValueError, match="distinct"):
        ks.multi_mode_product(X, [np.ones((3, 3)), np.ones((3, 3))], [0, 0])


# ------------------------------------------------------------ kron / matvec


def test_kron_matvec_forms(be, rng):
    F = [rng.standard_normal((m, n)) for m, n in ((2, 3), (4, 2), (3, 3))]
    Kn = ks.kron(*F)
    x = rng.standard_normal(Kn.shape[1])
    Xb = rng.standard_normal((Kn.shape[1], 2))
    Xbb = rng.standard_normal((2, Kn.shape[1], 3))
    Fb = [be.asarray(A) for A in F]
    for K in (ks.kron(*Fb), Kn):  # factors of the backend's kind, or NumPy ones
        for v in (x, Xb, Xbb):
            got = K @ be.asarray(v)
            be.check_kind(got)
            _close(be.to_numpy(got), Kn @ v)
    got = ks.kron_matvec(Fb, be.asarray(x))
    be.check_kind(got)
    _close(be.to_numpy(got), Kn @ x)
    got = ks.kron_matvec(F, be.asarray(x))
    be.check_kind(got)
    _close(be.to_numpy(got), Kn @ x)
    # NumPy x with factors of the backend's kind: the factors' kind
    got = ks.kron(*Fb) @ x
    be.check_kind(got)
    _close(be.to_numpy(got), Kn @ x)


def test_kron_transpose_and_rmatmul(be, rng):
    F = [rng.standard_normal((3, 2)), rng.standard_normal((2, 4))]
    Kn = ks.kron(*F)
    y = rng.standard_normal(Kn.shape[0])
    Y = rng.standard_normal((3, Kn.shape[0]))
    K = ks.kron(*[be.asarray(A) for A in F])
    got = K.T @ be.asarray(y)
    be.check_kind(got)
    _close(be.to_numpy(got), Kn.T @ y)
    got = be.asarray(Y) @ Kn
    be.check_kind(got)
    _close(be.to_numpy(got), Y @ Kn.toarray())
    if be.name != "numpy":
        assert K.shape == Kn.shape
        _close(be.to_numpy(K.toarray()), Kn.toarray())
        _close(be.to_numpy((K * 2.0) @ be.asarray(Kn.shape[1] * [1.0])),
               2 * Kn @ np.ones(Kn.shape[1]))


def test_kron_solve(be, rng):
    if be.name == "dask":
        pytest.skip("KronProduct.solve takes NumPy, PyTorch and CuPy arrays")
    F = [_spd(rng, 3), _spd(rng, 4)]
    b = rng.standard_normal(12)
    got = ks.kron(*[be.asarray(A) for A in F]).solve(be.asarray(b))
    be.check_kind(got)
    _close(be.to_numpy(got), np.linalg.solve(np.kron(*F), b))


def test_kronsum_matmul(be, rng):
    mats = [rng.standard_normal((n, n)) for n in (2, 3, 4)]
    Kn = ks.kronsum(*mats)
    x = rng.standard_normal(24)
    X2 = rng.standard_normal((24, 2))
    for v in (x, X2):
        got = Kn @ be.asarray(v)
        be.check_kind(got)
        _close(be.to_numpy(got), Kn @ v)
    K = ks.kronsum(*[be.asarray(A) for A in mats])
    got = K @ be.asarray(x)
    be.check_kind(got)
    _close(be.to_numpy(got), Kn @ x)
    if be.name != "numpy":
        _close(be.to_numpy(K.toarray()), Kn.toarray())
        got = K.T @ be.asarray(x)
        _close(be.to_numpy(got), Kn.T @ x)


# ------------------------------------------------------------------ solvers


def test_solve_sylvester3d(be, rng):
    n1, n2, n3 = 4, 5, 6
    A, A2, A3 = _spd(rng, n1), _spd(rng, n2), _spd(rng, n3)
    B = rng.standard_normal((n1, n2, n3))
    ref = ks.solve_sylvester3d(B, A, A2, A3, shift=0.5)
    got = ks.solve_sylvester3d(be.asarray(B), be.asarray(A), be.asarray(A2), be.asarray(A3),
                               shift=0.5)
    be.check_kind(got)
    _close(be.to_numpy(got), ref)
    # NumPy factors, right-hand side of the backend's kind
    got = ks.solve_sylvester3d(be.asarray(B), A, A2, A3, shift=0.5)
    be.check_kind(got)
    _close(be.to_numpy(got), ref)


def test_solve_kronsum_general_and_batched(be, rng):
    """Non-symmetric factors (complex eigenvalues inside, real result), batches."""
    mats = [rng.standard_normal((n, n)) + 2 * n * np.eye(n) for n in (3, 4)]
    B = rng.standard_normal((2, 3, 4))
    ref = ks.solve_kronsum(B, mats)
    got = ks.solve_kronsum(be.asarray(B), [be.asarray(A) for A in mats])
    be.check_kind(got)
    _close(be.to_numpy(got), ref, rtol=1e-8, atol=1e-10)


def test_solve_kronsum_masses(be, rng):
    K = [_spd(rng, n) for n in (3, 4)]
    M = [_spd(rng, 3, shift=3.0), None]
    B = rng.standard_normal((3, 4))
    ref = ks.solve_kronsum(B, K, masses=M)
    got = ks.solve_kronsum(be.asarray(B), [be.asarray(A) for A in K],
                           masses=[be.asarray(M[0]), None])
    be.check_kind(got)
    _close(be.to_numpy(got), ref, rtol=1e-8, atol=1e-10)


def test_kronsum_solver_reuse(be, rng):
    mats = [_spd(rng, 3), _spd(rng, 4), _spd(rng, 2)]
    B = rng.standard_normal((3, 4, 2))
    ref = ks.KronSumSolver(mats).solve(B, shift=1.5)
    for factors in ([be.asarray(A) for A in mats], mats):
        solver = ks.KronSumSolver(factors)
        assert isinstance(solver, ks.KronSumSolver)
        got = solver.solve(be.asarray(B), shift=1.5)
        be.check_kind(got)
        _close(be.to_numpy(got), ref)
    # KronSum.solve with the backend's right-hand side
    got = ks.kronsum(*[be.asarray(A) for A in mats]).solve(be.asarray(B.ravel()))
    be.check_kind(got)
    _close(be.to_numpy(got), ks.kronsum(*mats).solve(B.ravel()))


def test_singular_sum_is_reported(be):
    T = np.array([[1.0, 0.0], [0.0, -1.0]])
    with pytest.raises(np.linalg.LinAlgError, match="singular"):
        ks.solve_kronsum(be.asarray(np.ones((2, 2))), [be.asarray(T), be.asarray(T)])


def test_float32_stays_float32(be, rng):
    if be.name == "numpy":
        pytest.skip("reference")
    X = rng.standard_normal((3, 4)).astype(np.float32)
    A = rng.standard_normal((4, 4)).astype(np.float32)
    got = ks.mode_product(be.asarray(X), be.asarray(A), 1)
    assert str(got.dtype).endswith("float32")


# ------------------------------------------------------------------ mixing


def test_mixing_libraries_is_a_type_error(rng):
    pytest.importorskip("torch")
    pytest.importorskip("dask.array")
    import dask.array as da
    import torch

    t = torch.ones((3, 3), dtype=torch.float64)
    d = da.ones((3, 3), chunks=3)
    with pytest.raises(TypeError, match="mix array libraries.*dask.*torch"):
        ks.multi_mode_product(t, [d])
    with pytest.raises(TypeError, match="mix array libraries"):
        ks.kron(t, d)
    with pytest.raises(TypeError, match="mix array libraries"):
        ks.kron(t) @ d[:, 0]
    with pytest.raises(TypeError, match="mix array libraries"):
        ks.solve_sylvester3d(d.reshape(3, 3, 1)[:, :, [0, 0, 0]], t)
    with pytest.raises(TypeError, match="mix array libraries"):
        ks.KronSumSolver([t, t]).solve(d)
    import scipy.sparse as sp

    with pytest.raises(TypeError, match="scipy.sparse"):
        ks.multi_mode_product(t, [sp.eye(3, format="csr")])


# ----------------------------------------------------------------- autograd


def test_torch_gradcheck_products(rng):
    torch = pytest.importorskip("torch")
    A = torch.tensor(rng.standard_normal((3, 2)), requires_grad=True)
    B = torch.tensor(rng.standard_normal((2, 4)), requires_grad=True)
    C = torch.tensor(rng.standard_normal((4, 3)), requires_grad=True)
    X = torch.tensor(rng.standard_normal((2, 4, 3)), requires_grad=True)
    assert torch.autograd.gradcheck(lambda X, A, B, C: ks.multi_mode_product(X, [A, B, C]),
                                    (X, A, B, C))
    x = torch.tensor(rng.standard_normal(24), requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, A, B, C: ks.kron(A, B, C) @ x, (x, A, B, C))
    assert torch.autograd.gradcheck(lambda x, A, B, C: ks.kron_matvec([A, B, C], x),
                                    (x, A, B, C))


def test_torch_gradcheck_solve_sylvester3d(rng):
    """Gradients w.r.t. B and the (symmetric) factors, through torch.linalg.eigh."""
    torch = pytest.importorskip("torch")
    n = 4
    S1 = torch.tensor(rng.standard_normal((n, n)), requires_grad=True)
    S2 = torch.tensor(rng.standard_normal((n + 1, n + 1)), requires_grad=True)
    B = torch.tensor(rng.standard_normal((n, n + 1, n)), requires_grad=True)
    I1 = torch.eye(n, dtype=torch.float64)
    I2 = torch.eye(n + 1, dtype=torch.float64)

    def f(B, S1, S2):
        A = S1 + S1.T + 3 * n * I1  # exactly symmetric, distinct eigenvalues
        A2 = S2 + S2.T + 3 * n * I2
        return ks.solve_sylvester3d(B, A, A2, shift=0.25)

    assert torch.autograd.gradcheck(f, (B, S1, S2))
    # NumPy factors: the gradient w.r.t. B only
    A = _spd(rng, n)
    assert torch.autograd.gradcheck(lambda B: ks.solve_sylvester3d(B, A), (B[:, :n, :],))


# -------------------------------------------------------------------- Dask


def test_dask_is_lazy_and_chunked_along_every_mode(rng):
    da = pytest.importorskip("dask.array")
    import dask

    n1, n2, n3 = 6, 7, 8
    A, A2, A3 = _spd(rng, n1), _spd(rng, n2), rng.standard_normal((n3, n3)) + 3 * n3 * np.eye(n3)
    B = rng.standard_normal((n1, n2, n3))
    mats = [rng.standard_normal((n, n)) for n in (n1, n2, n3)]
    Bd = da.from_array(B, chunks=(2, 3, 3))  # several blocks along every mode
    assert all(nb > 1 for nb in Bd.numblocks)
    # small blocks, so that the rechunks keep several blocks too
    with dask.config.set({"array.chunk-size": "1KiB"}):
        with no_dask_compute():
            Y = ks.multi_mode_product(Bd, mats)
            X = ks.solve_sylvester3d(Bd, A, A2, A3, shift=0.5)
            X2 = ks.KronSumSolver([A, A2, A3]).solve(Bd, shift=0.5)
            Z = ks.kron(*mats) @ Bd.reshape(-1)
    assert isinstance(Y, da.Array) and isinstance(X, da.Array) and isinstance(Z, da.Array)
    _close(Y.compute(scheduler="sync"), ks.multi_mode_product(B, mats))
    ref = ks.solve_sylvester3d(B, A, A2, A3, shift=0.5)
    _close(X.compute(scheduler="sync"), ref)
    _close(X2.compute(scheduler="sync"), ref)
    _close(Z.compute(scheduler="sync"), ks.kron(*mats) @ B.ravel())


def test_dask_mode_product_sees_whole_modes(rng):
    """Each block task gets the contracted axis whole (the block shapes tell)."""
    da = pytest.importorskip("dask.array")
    from kronsolve._backends import dask as _dask

    seen = []
    orig = _dask._block_product

    def spy(Xb, *mats, modes):
        seen.append((Xb.shape, modes))
        return orig(Xb, *mats, modes=modes)

    X = rng.standard_normal((5, 6, 7))
    mats = [rng.standard_normal((n, n)) for n in (5, 6, 7)]
    Xd = da.from_array(X, chunks=(2, 2, 2))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_dask, "_block_product", spy)
        Y = ks.multi_mode_product(Xd, mats)
        _close(Y.compute(scheduler="sync"), ks.multi_mode_product(X, mats))
    assert seen
    for shape, modes in seen:
        for k in modes:
            assert shape[k] == X.shape[k]


def test_dask_check_finite_is_lazy(rng):
    da = pytest.importorskip("dask.array")
    B = rng.standard_normal((3, 3, 3))
    B[1, 1, 1] = np.nan
    X = ks.solve_sylvester3d(da.from_array(B, chunks=2), _spd(rng, 3))
    with pytest.raises(ValueError, match="finite"):
        X.compute(scheduler="sync")


def test_cupy_skips_with_reason():
    reason = _cupy_reason()
    if reason:
        pytest.skip(reason)
    import cupy

    X = cupy.asarray(np.arange(24.0).reshape(2, 3, 4))
    Y = ks.multi_mode_product(X, [np.eye(3), np.eye(4)])
    assert isinstance(Y, cupy.ndarray)


def test_dask_cluster_script(capsys):
    """benchmarks/dask_cluster.py on an existing (in-process) cluster, small, with residual."""
    pytest.importorskip("dask.distributed")
    pytest.importorskip("psutil")
    import importlib.util
    from pathlib import Path

    from dask.distributed import LocalCluster

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "dask_cluster.py"
    spec = importlib.util.spec_from_file_location("dask_cluster", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                      dashboard_address=None) as cluster:
        rc = mod.main(["--scheduler", cluster.scheduler_address, "--n", "40",
                       "--chunk-size", "64KiB", "--check"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "relative residual" in out and "peak RSS" in out
