"""Per-item (batched) factors in multi_mode_product: stacks broadcast as in np.matmul."""

from __future__ import annotations

import naive
import numpy as np
import pytest

import kronsolve as ks
from kronsolve import _fused


@pytest.fixture(params=["fused", "stacked"])
def route(request, monkeypatch):
    """Both routes of per-item factors: the fused kernel (NumPy, items in cache)
    and the stacked ``matmul`` one (the fused kernel made unavailable)."""
    calls = []
    if request.param == "stacked":
        monkeypatch.setattr(_fused, "ready", lambda *a, **k: False)
    else:
        for name in ("run", "run_items"):
            real = getattr(_fused, name)
            monkeypatch.setattr(_fused, name, lambda *a, _r=real, **k: calls.append(1) or
                                _r(*a, **k))
    yield request.param
    if request.param == "fused":
        assert calls, "the fused kernel did not run"


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.complex128])
@pytest.mark.parametrize("d", [1, 2, 3, 4])
def test_against_loop(d, dtype, route):
    rng = np.random.default_rng(d)
    E = 3
    ms = [int(m) for m in rng.integers(1, 5, d)]
    ns = [int(n) for n in rng.integers(1, 5, d)]
    mats = []
    for k in range(d):
        shape = ((E,) if k % 2 == 0 else ()) + (ms[k], ns[k])
        A = rng.standard_normal(shape)
        if np.dtype(dtype).kind == "c":
            A = A + 1j * rng.standard_normal(shape)
        mats.append(A.astype(dtype))
    X = rng.standard_normal((E,) + tuple(ns)).astype(dtype)
    tol = 1e-5 if np.dtype(dtype) == np.float32 else 1e-12
    Y = ks.multi_mode_product(X, mats)
    np.testing.assert_allclose(Y, naive.batched_multi_mode_product(X, mats), rtol=tol,
                               atol=tol)
    Z = ks.multi_mode_product(Y, mats, transpose=True)
    np.testing.assert_allclose(Z, naive.batched_multi_mode_product(Y, mats, transpose=True),
                               rtol=tol, atol=tol)


def test_broadcasting_and_strided_input():
    rng = np.random.default_rng(7)
    A = rng.standard_normal((2, 1, 3, 3))       # batch (2, 1)
    B = rng.standard_normal((4, 3, 3))          # batch (4,)
    X = rng.standard_normal((3, 6))[:, ::2]     # no batch, strided: broadcast to (2, 4)
    Y = ks.multi_mode_product(X, [A, B])
    assert Y.shape == (2, 4, 3, 3)
    np.testing.assert_allclose(Y, naive.batched_multi_mode_product(X, [A, B]), rtol=1e-12)


def test_errors():
    A = np.ones((3, 2, 2))
    with pytest.raises(ValueError, match="batch dimensions do not broadcast"):
        ks.multi_mode_product(np.ones((4, 2, 2)), [A, A])
    with pytest.raises(ValueError, match=r"does not act on axis 1 of X, of size 5"):
        ks.multi_mode_product(np.ones((3, 5)), [A])
    with pytest.raises(ValueError, match="modes must be left out"):
        ks.multi_mode_product(np.ones((3, 2, 2)), [A], modes=[1])
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        ks.multi_mode_product(np.ones(2), [A, A])


def test_torch_batched():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(8)
    A = rng.standard_normal((4, 3, 3))
    X = rng.standard_normal((4, 3, 3))
    Y = ks.multi_mode_product(torch.tensor(X), [torch.tensor(A), torch.tensor(A)])
    assert isinstance(Y, torch.Tensor)
    np.testing.assert_allclose(Y.numpy(), A @ X @ np.swapaxes(A, -1, -2), rtol=1e-12)


def _spd(rng, *shape):
    A = rng.standard_normal(shape)
    return A @ np.swapaxes(A, -1, -2) + shape[-1] * np.eye(shape[-1])


def _loop_solve(B, mats, shift=0.0):
    d = len(mats)
    batch = np.broadcast_shapes(B.shape[:B.ndim - d], *[A.shape[:-2] for A in mats])
    ns = B.shape[B.ndim - d:]
    Bb = np.broadcast_to(B, batch + ns)
    out = None
    for idx in np.ndindex(*batch):
        fs = [np.broadcast_to(A, batch + A.shape[-2:])[idx] for A in mats]
        xi = naive.solve_kronsum(Bb[idx], fs, shift=shift)
        if out is None:
            out = np.empty(batch + ns, dtype=xi.dtype)
        out[idx] = xi
    return out


def _per_item_case(kind, shift):
    rng = np.random.default_rng(21)
    E = 4
    if kind == "symmetric":
        mats = [_spd(rng, E, 3, 3), _spd(rng, 4, 4), _spd(rng, E, 2, 2)]
    else:
        mats = [rng.standard_normal((E, 3, 3)) + 4 * np.eye(3), _spd(rng, 4, 4),
                rng.standard_normal((E, 2, 2)) + 4 * np.eye(2)]
    B = rng.standard_normal((E, 3, 4, 2))
    X = ks.solve_kronsum(B, mats, shift=shift)
    assert X.shape == (E, 3, 4, 2)
    np.testing.assert_allclose(X, _loop_solve(B, mats, shift), rtol=1e-9, atol=1e-12)
    assert np.iscomplexobj(X) == isinstance(shift, complex)


@pytest.mark.parametrize("shift", [0.0, 0.7, 0.5 + 0.5j])
def test_solve_kronsum_per_item_symmetric_factors(shift, route):
    _per_item_case("symmetric", shift)


@pytest.mark.parametrize("shift", [0.0, 0.7, 0.5 + 0.5j])
def test_solve_kronsum_per_item_general_factors(shift):
    """Non-symmetric stacks: item by item through the Schur route."""
    _per_item_case("general", shift)


def test_solve_kronsum_per_item_broadcast_and_errors(route):
    rng = np.random.default_rng(22)
    A = _spd(rng, 3, 1, 4, 4)  # batch (3, 1)
    C = _spd(rng, 2, 3, 3)     # batch (2,)
    B = rng.standard_normal((4, 3))  # no batch: broadcast to (3, 2)
    X = ks.solve_kronsum(B, [A, C])
    assert X.shape == (3, 2, 4, 3)
    np.testing.assert_allclose(X, _loop_solve(B, [A, C]), rtol=1e-9)
    with pytest.raises(ValueError, match="batch dimensions do not broadcast"):
        ks.solve_kronsum(np.ones((5, 4, 3)), [A, C])
    with pytest.raises(ValueError, match=r"B must have shape \(\.\.\., 4, 3\)"):
        ks.solve_kronsum(np.ones((4, 4)), [A, C])
    Z = np.zeros((2, 3, 3))
    with pytest.raises(np.linalg.LinAlgError, match="singular to working precision"):
        ks.solve_kronsum(np.ones((2, 3, 3)), [Z, Z])
    with pytest.raises(ValueError, match="B must contain only finite numbers"):
        ks.solve_kronsum(np.full((3, 3), np.nan), [_spd(rng, 2, 3, 3), _spd(rng, 3, 3)])


def test_solve_kronsum_per_item_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(23)
    mats = [_spd(rng, 3, 4, 4), _spd(rng, 3, 2, 2)]
    B = rng.standard_normal((3, 4, 2))
    X = ks.solve_kronsum(torch.tensor(B), [torch.tensor(A) for A in mats])
    assert isinstance(X, torch.Tensor)
    np.testing.assert_allclose(X.numpy(), _loop_solve(B, mats), rtol=1e-9)


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.complex128])
def test_solver_with_per_item_factors(dtype, route):
    """KronSumSolver factors stacks once (the spectral-element pattern) and solves
    many right-hand sides, flat ones too, against item-by-item dense solves."""
    rng = np.random.default_rng(31)
    E = 5
    mats = [_spd(rng, E, 3, 3), _spd(rng, 4, 4), _spd(rng, E, 5, 5)]
    if np.dtype(dtype).kind == "c":
        H = rng.standard_normal((E, 3, 3)) * 1j
        mats[0] = mats[0] + H - np.swapaxes(H, -1, -2)  # Hermitian
    mats = [A.astype(dtype) for A in mats]
    solver = ks.KronSumSolver(mats)
    assert solver.shape == (3, 4, 5) and solver.batch_shape == (E,)
    assert "per-item" in repr(solver)
    tol = 2e-4 if dtype == np.float32 else 1e-9
    for shift in (0.0, 0.25, 0.5 - 0.5j):
        B = rng.standard_normal((E, 3, 4, 5)).astype(dtype)
        X = solver.solve(B, shift=shift)
        assert X.dtype == np.result_type(dtype, type(shift)) or dtype == np.float32
        np.testing.assert_allclose(X, _loop_solve(B.astype(complex), mats, shift), rtol=tol,
                                   atol=tol)
    x = solver.solve(np.ones(60))  # one right-hand side for every item
    assert x.shape == (E, 3, 4, 5)
    np.testing.assert_allclose(x, _loop_solve(np.ones((3, 4, 5)), mats), rtol=tol, atol=tol)


def test_solver_with_per_item_factors_errors():
    rng = np.random.default_rng(32)
    with pytest.raises(NotImplementedError, match="symmetric and without masses"):
        ks.KronSumSolver([rng.standard_normal((3, 4, 4)), _spd(rng, 3, 3)])
    with pytest.raises(NotImplementedError, match="symmetric and without masses"):
        ks.KronSumSolver([_spd(rng, 2, 3, 3)], masses=[np.eye(3)])
    with pytest.raises(ValueError, match="do not broadcast"):
        ks.KronSumSolver([_spd(rng, 2, 3, 3), _spd(rng, 3, 3, 3)])
    with pytest.raises(ValueError, match="square"):
        ks.KronSumSolver([rng.standard_normal((2, 3, 4))[:, :, :3][:, :2]])
    solver = ks.KronSumSolver([_spd(rng, 2, 3, 3), _spd(rng, 4, 4)])
    with pytest.raises(ValueError, match="do not broadcast"):
        solver.solve(np.ones((3, 3, 4)))
    with pytest.raises(ValueError, match=r"B must have shape \(\.\.\., 3, 4\)"):
        solver.solve(np.ones((3, 3)))
    with pytest.raises(ValueError, match="finite"):
        solver.solve(np.full((3, 4), np.inf))
    with pytest.raises(NotImplementedError, match="per-item"):
        solver.slogdet()
    Z = np.zeros((2, 3, 3))
    with pytest.raises(np.linalg.LinAlgError, match="singular"):
        ks.KronSumSolver([Z, Z]).solve(np.ones((3, 3)))


def _dense_stack(mats):
    batch = np.broadcast_shapes(*[A.shape[:-2] for A in mats])
    out = None
    for idx in np.ndindex(*batch):
        D = naive.kron(*[np.broadcast_to(A, batch + A.shape[-2:])[idx] for A in mats])
        if out is None:
            out = np.empty(batch + D.shape, dtype=D.dtype)
        out[idx] = D
    return out


@pytest.mark.parametrize("dtype", [np.float64, np.complex128, np.float32])
def test_kron_of_stacks_is_a_stack_of_products(dtype, route):
    """``kron`` of per-item factors applies like NumPy's stacked matmul of the
    explicit per-item Kronecker matrices."""
    rng = np.random.default_rng(41)
    mats = [rng.standard_normal((3, 1, 2, 3)), rng.standard_normal((4, 2)),
            rng.standard_normal((2, 3, 3))]
    if np.dtype(dtype).kind == "c":
        mats[0] = mats[0] + 1j * rng.standard_normal(mats[0].shape)
    mats = [A.astype(dtype) for A in mats]
    K = ks.kron(*mats)
    assert isinstance(K, ks.KronStack)
    assert K.batch_shape == (3, 2) and K.shape == (24, 18)
    D = _dense_stack(mats)
    tol = 1e-4 if dtype == np.float32 else 1e-11
    np.testing.assert_allclose(K.toarray(), D, rtol=tol, atol=tol)
    for x in (rng.standard_normal(18), rng.standard_normal((18, 5)),
              rng.standard_normal((2, 18, 4)), rng.standard_normal((3, 2, 18, 1))):
        np.testing.assert_allclose(K @ x, D @ x, rtol=tol, atol=tol)
    y = rng.standard_normal((24, 2))
    np.testing.assert_allclose(K.T @ y, np.swapaxes(D, -1, -2) @ y, rtol=tol, atol=tol)
    np.testing.assert_allclose(ks.kron_matvec(mats, y[:18]), D @ y[:18], rtol=tol, atol=tol)
    assert "KronStack" in repr(K)


def test_kron_of_stacks_errors():
    rng = np.random.default_rng(42)
    K = ks.kron(rng.standard_normal((3, 2, 2)), rng.standard_normal((3, 3)))
    with pytest.raises(ValueError, match=r"expected x.shape\[-2\] == 6"):
        K @ np.ones((5, 1))
    with pytest.raises(ValueError, match=r"expected \(6,\)"):
        K @ np.ones(5)
    with pytest.raises(ValueError, match="do not broadcast"):
        K @ np.ones((4, 6, 1))
    with pytest.raises(ValueError, match="do not broadcast"):
        ks.kron(rng.standard_normal((3, 2, 2)), rng.standard_normal((4, 3, 3)))
    with pytest.raises(ValueError, match="matrix or a stack"):
        ks.kron(rng.standard_normal((3, 2, 2)), np.ones(3))
    with pytest.raises(TypeError, match="combine with arrays only"):
        ks.kron(rng.standard_normal((3, 2, 2)), ks.kronsum(np.eye(2), np.eye(2)))


def test_kron_of_stacks_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(43)
    mats = [rng.standard_normal((3, 2, 2)), rng.standard_normal((3, 3))]
    K = ks.kron(*[torch.tensor(A) for A in mats])
    x = rng.standard_normal((6, 2))
    y = K @ torch.tensor(x)
    assert isinstance(y, torch.Tensor)
    np.testing.assert_allclose(y.numpy(), _dense_stack(mats) @ x, rtol=1e-12)
