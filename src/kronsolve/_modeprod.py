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
        One matrix per mode.
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
    be = NUMPY if type(X) is np.ndarray and all(type(A) is np.ndarray for A in mats) \
        else backend_of(X, *mats)
    if be is NUMPY:
        X = _as_array(X, "X")
        mats = [_as_matrix(A, f"mats[{i}]") for i, A in enumerate(mats)]
    else:
        like = reference_of(X, *mats)
        X = be.tensor(X, "X", like)
        mats = [be.matrix(A, f"mats[{i}]", like) for i, A in enumerate(mats)]
    if X.ndim == 0:
        raise ValueError("X must have at least one dimension, got a 0-d array")
    mats, modes = _resolve_modes(tuple(X.shape), mats, modes, transpose)
    dtype = be.result_type(X, *mats)
    return be.modeprod(be.astype(X, dtype), [be.astype(A, dtype) for A in mats], modes)
