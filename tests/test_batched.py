"""Per-item (batched) factors in multi_mode_product: stacks broadcast as in np.matmul."""

from __future__ import annotations

import naive
import numpy as np
import pytest

import kronsolve as ks


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.complex128])
@pytest.mark.parametrize("d", [1, 2, 3, 4])
def test_against_loop(d, dtype):
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
