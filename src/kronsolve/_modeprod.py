"""Mode-n products: the kernel under every Kronecker-structured operation.

``mode_product(X, A, k)`` multiplies the tensor ``X`` by the matrix ``A`` along axis
``k``: ``Y[..., i, ...] = sum_j A[i, j] X[..., j, ...]``.  A product with every axis
is a Kronecker matvec in C order::

    kron(A1, ..., Ad) @ X.ravel() == multi_mode_product(X, [A1, ..., Ad]).ravel()

The work is the backend's (``_backends``): for NumPy, one BLAS call per mode on
reshaped views of a C-contiguous tensor, planned once per shape, with
intermediates in per-thread work buffers, so that a call allocates only its
result.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ._backends import NUMPY, backend_of, reference_of
from ._backends.numpy import items_product
from ._validation import _as_array, _as_matrix, _resolve_modes

__all__ = ["mode_product", "multi_mode_product"]


def mode_product(X: Any, A: Any, mode: int, *, transpose: bool = False) -> Any:
    """Multiply a tensor by a matrix along one axis (the mode-n product ``X ×ₙ A``).

    ``Y[..., i, ...] = sum_j A[i, j] * X[..., j, ...]`` where ``i`` and ``j`` index
    axis ``mode`` of ``Y`` and ``X``.  PyTorch, CuPy and Dask inputs give a result
    of their kind (see :func:`multi_mode_product`).

    Parameters
    ----------
    X : ndarray
        Tensor of any number of dimensions (at least one).
    A : (m, n) ndarray or scipy.sparse matrix
        Matrix with ``n == X.shape[mode]`` (``m == X.shape[mode]`` when
        ``transpose=True``).
    mode : int
        Axis of ``X`` to multiply, 0-based; negative values count from the end.
    transpose : bool, optional
        Multiply by ``A.T`` instead of ``A``.

    Returns
    -------
    Y : ndarray
        ``X.shape`` with axis ``mode`` replaced by ``A.shape[0]`` (``A.shape[1]``
        when transposed); dtype as NumPy's ``A @ x``.

    Examples
    --------
    >>> import numpy as np
    >>> from kronsolve import mode_product
    >>> X = np.arange(24.0).reshape(2, 3, 4)
    >>> A = np.ones((5, 3))
    >>> mode_product(X, A, 1).shape
    (2, 5, 4)
    >>> np.allclose(mode_product(X, A, 1), np.einsum('ajc,ij->aic', X, A))
    True
    """
    return multi_mode_product(X, [A], [mode], transpose=transpose)


def multi_mode_product(
    X: Any,
    mats: Sequence[Any],
    modes: Sequence[int] | None = None,
    *,
    transpose: bool = False,
) -> Any:
    """Multiply a tensor by one matrix along each of several axes.

    ``multi_mode_product(X, [A1, ..., Ad])`` is ``X ×₁ A1 ×₂ A2 ... ×_d Ad``, and
    for ``X`` of shape ``(n1, ..., nd)``::

        kron(A1, ..., Ad) @ X.ravel() == multi_mode_product(X, [A1, ..., Ad]).ravel()

    (C order, ``np.kron``'s ordering).  The products commute; they are applied in
    the order that needs the fewest flops, one BLAS call each.

    PyTorch, CuPy and Dask arrays give results of their own kind (autograd kept;
    Dask stays a lazy graph); NumPy inputs mixed with them are converted, and
    two other libraries in one call raise ``TypeError``.

    Parameters
    ----------
    X : ndarray
        Tensor with at least ``len(mats)`` dimensions.
    mats : sequence of (m_k, n_k) ndarrays or scipy.sparse matrices
        One matrix per mode.  Stacks of matrices ``(..., m_k, n_k)`` (dense) are
        per-item factors: their leading dimensions broadcast against the
        leading (batch) dimensions of ``X``, as in NumPy's stacked ``matmul``
        (``modes`` must then be the default, the last axes).
    modes : sequence of int, optional
        Axes (0-based, distinct) that ``mats`` act on.  By default the last
        ``len(mats)`` axes, so that leading axes are batch dimensions.
    transpose : bool, optional
        Multiply by each ``mats[k].T`` instead (the adjoint for real matrices).

    Returns
    -------
    Y : ndarray
        Axis ``modes[k]`` of size ``m_k``; dtype as NumPy's ``@`` would give.

    Examples
    --------
    >>> import numpy as np
    >>> from kronsolve import multi_mode_product
    >>> rng = np.random.default_rng(0)
    >>> A, B, C = (rng.standard_normal((k + 2, k + 1)) for k in range(3))
    >>> X = rng.standard_normal((1, 2, 3))
    >>> Y = multi_mode_product(X, [A, B, C])
    >>> Y.shape
    (2, 3, 4)
    >>> np.allclose(Y.ravel(), np.kron(np.kron(A, B), C) @ X.ravel())
    True
    """
    if getattr(mats, "ndim", None) == 2:
        raise TypeError("mats must be a sequence of matrices; wrap a single matrix in a list")
    if not isinstance(mats, list | tuple):
        mats = list(mats)
    if any(getattr(A, "ndim", 2) > 2 for A in mats):
        return _batched(X, mats, modes, transpose)
    be, X, mats = _operands(X, mats, "X", stacks=False)
    if X.ndim == 0:
        raise ValueError("X must have at least one dimension, got a 0-d array")
    mats, modes = _resolve_modes(tuple(X.shape), mats, modes, transpose)
    dtype = be.result_type(X, *mats)
    return be.modeprod(be.astype(X, dtype), [be.astype(A, dtype) for A in mats], modes)


def _operands(X: Any, mats: list, xname: str, stacks: bool) -> tuple[Any, Any, list]:
    """The backend of a call (the mixing rule) and its operands converted and checked.

    ``mats`` are matrices (scipy.sparse allowed for NumPy) or, with ``stacks``,
    arrays of any dimension (stacks of matrices).
    """
    be = NUMPY if type(X) is np.ndarray and all(type(A) is np.ndarray for A in mats) \
        else backend_of(X, *mats)
    if be is NUMPY:
        conv = _as_array if stacks else _as_matrix
        return be, _as_array(X, xname), [conv(A, f"mats[{i}]") for i, A in enumerate(mats)]
    like = reference_of(X, *mats)
    conv = be.tensor if stacks else be.matrix
    return be, be.tensor(X, xname, like), [conv(A, f"mats[{i}]", like)
                                           for i, A in enumerate(mats)]


def _batched(X: Any, mats: list, modes: Any, transpose: bool) -> Any:
    """``multi_mode_product`` with per-item factors: stacked ``matmul``, one per mode."""
    d = len(mats)
    if modes is not None and list(modes) != list(range(-d, 0)) and \
            list(modes) != list(range(getattr(X, "ndim", d) - d, getattr(X, "ndim", d))):
        raise ValueError("stacks of factors act on the last len(mats) axes of X; "
                         f"modes must be left out, got {modes!r}")
    be, X, mats = _operands(X, mats, "X", stacks=True)
    for i, A in enumerate(mats):
        if A.ndim < 2:
            raise ValueError(f"mats[{i}] must be a matrix or a stack of matrices, got shape "
                             f"{tuple(A.shape)}")
    if X.ndim < d:
        raise ValueError(f"X must have at least {d} dimensions for {d} factors, got shape "
                         f"{tuple(X.shape)}")
    xb, ns = tuple(X.shape[:X.ndim - d]), tuple(X.shape[X.ndim - d:])
    for i, (A, n) in enumerate(zip(mats, ns)):
        inner = A.shape[-2] if transpose else A.shape[-1]
        if inner != n:
            raise ValueError(f"mats[{i}] of shape {tuple(A.shape)} does not act on axis "
                             f"{X.ndim - d + i} of X, of size {n}")
    try:
        batch = np.broadcast_shapes(xb, *[tuple(A.shape[:-2]) for A in mats])
    except ValueError:
        raise ValueError(
            "the batch dimensions do not broadcast: X has " + str(xb) + ", mats have "
            + str([tuple(A.shape[:-2]) for A in mats])) from None
    dtype = be.result_type(X, *mats)
    xp = be.xp
    Y = be.astype(X, dtype)
    if be is NUMPY:
        stacks = [be.astype(A, dtype) for A in mats]
        fused = items_product(Y, [np.swapaxes(A, -1, -2) for A in stacks] if transpose
                              else stacks, batch)
        if fused is not None:
            return fused
    nb = len(batch)
    Y = xp.reshape(Y, (1,) * (nb - len(xb)) + tuple(Y.shape))
    for k, A in enumerate(mats):
        A = be.astype(A, dtype)
        At = A if transpose else be.swapaxes(A, -1, -2)  # (..., n_k, m_k)
        ab = tuple(A.shape[:-2])
        # the factor's batch aligned with Y's, singleton axes for the other modes
        shape = (1,) * (nb - len(ab)) + ab + (1,) * max(d - 2, 0) + tuple(At.shape[-2:])
        At = xp.reshape(At, shape)
        ax = nb + k
        Ym = xp.moveaxis(Y, ax, -1)          # (..., n_k) last
        Ym = xp.matmul(Ym, At) if d > 1 else xp.matmul(Ym[..., None, :], At)[..., 0, :]
        Y = xp.moveaxis(Ym, -1, ax)
    return Y
