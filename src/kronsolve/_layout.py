"""Vectors as tensors and back: ``(..., N[, k])`` and ``(..., n1, ..., nd[, k])``.

A Kronecker operator of row sizes ``(m1, ..., md)`` and column sizes
``(n1, ..., nd)`` acts on a right-hand side ``x`` as NumPy's ``@`` does: ``x``
is ``(N,)`` or ``(..., N, k)``.  In C order, ``x`` seen as a tensor is
``x.reshape(n1, ..., nd)`` or ``x.reshape(..., n1, ..., nd, k)``, and the modes
that the factors act on are the ``d`` axes after the batch axes.  Works for
every array library whose arrays have ``reshape`` (NumPy, PyTorch, CuPy, Dask).
"""

from __future__ import annotations

from typing import Any

__all__: list[str] = []


def as_tensor(x: Any, ns: tuple[int, ...]) -> tuple[Any, int]:
    """``x`` (``(N,)`` or ``(..., N, k)``) as a tensor, and the axis of its first mode."""
    if x.ndim == 1:
        return x.reshape(ns), 0
    shape = tuple(x.shape)
    return x.reshape(shape[:-2] + ns + (shape[-1],)), x.ndim - 2


def as_matrix(Y: Any, b: int, d: int, M: int) -> Any:
    """Inverse of :func:`as_tensor`: the tensor ``Y`` with modes ``b .. b+d-1`` merged to ``M``."""
    if Y.ndim == d:
        return Y.reshape((M,))
    shape = tuple(Y.shape)
    return Y.reshape(shape[:b] + (M, shape[-1]))


def columns_as_batch(b: Any, ns: tuple[int, ...], swapaxes: Any) -> Any:
    """``b`` (``(N,)`` or ``(..., N, k)``) as ``(n1, ..., nd)`` or ``(..., k, n1, ..., nd)``.

    The columns become a batch axis in front of the modes (the layout of the
    Kronecker-sum solvers); ``swapaxes(a, i, j)`` is the array library's.
    """
    if b.ndim == 1:
        return b.reshape(ns)
    shape = tuple(b.shape)
    return swapaxes(b, -1, -2).reshape(shape[:-2] + (shape[-1],) + ns)


def batch_as_columns(X: Any, shape: tuple[int, ...], swapaxes: Any) -> Any:
    """Inverse of :func:`columns_as_batch` for a right-hand side of shape ``shape``."""
    if len(shape) == 1:
        return X.reshape(shape)
    return swapaxes(X.reshape(shape[:-2] + (shape[-1], shape[-2])), -1, -2)
