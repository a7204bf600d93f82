"""The Van Loan–Pitsianis rearrangement ``R``: ``R(B ⊗ C) = vec(B) vec(C)ᵀ``."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._kernels import _permute
from ._shuffle import _any_matrix, _check_out, _pair

__all__ = ["rearrange", "unrearrange"]


def _sizes(
    first: Any, second: Any
) -> tuple[int, int, int, int]:
    m1, n1 = _pair(first, "(m1, n1)", ("m1", "n1"))
    m2, n2 = _pair(second, "(m2, n2)", ("m2", "n2"))
    return m1, n1, m2, n2


def rearrange(
    M: Any,
    first: tuple[int, int],
    second: tuple[int, int],
    *,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Van Loan–Pitsianis rearrangement of an ``(m1*m2) x (n1*n2)`` matrix.

    Cut ``M`` into an ``m1 x n1`` grid of ``m2 x n2`` blocks ``M_ij``; row
    ``i + j*m1`` of the result is ``vec(M_ij)ᵀ`` (``vec`` stacks columns).  So
    ``rearrange(np.kron(B, C), (m1, n1), (m2, n2)) == np.outer(vec(B), vec(C))``,
    and the nearest Kronecker products of ``M`` come from the SVD of the
    result (see :func:`kpsvd`).  This is the seed's ``RM_1``/``RM_2``, made in
    one tiled copy.

    Parameters
    ----------
    M : array_like, 2-D, shape (m1 * m2, n1 * n2)
        Input of any dtype (strings and objects included).
    first : (int, int)
        ``(m1, n1)``, the shape of the first Kronecker factor (the block grid).
    second : (int, int)
        ``(m2, n2)``, the shape of the second factor (each block).
    out : ndarray, optional
        Array of shape ``(m1 * n1, m2 * n2)`` to write into, cast with
        ``casting='same_kind'``.

    Returns
    -------
    ndarray, shape (m1 * n1, m2 * n2)

    Raises
    ------
    ValueError
        ``M.shape != (m1 * m2, n1 * n2)``, a negative size, or a bad ``out``.

    See Also
    --------
    unrearrange : the inverse.

    Examples
    --------
    >>> import numpy as np
    >>> from kronsolve import rearrange
    >>> B = np.array([[1, 2], [3, 4], [5, 6]])
    >>> C = np.array([[1, -1], [0, 2]])
    >>> R = rearrange(np.kron(B, C), (3, 2), (2, 2))
    >>> R.shape
    (6, 4)
    >>> np.array_equal(R, np.outer(B.flatten('F'), C.flatten('F')))
    True
    """
    M = _any_matrix(M, "M")
    m1, n1, m2, n2 = _sizes(first, second)
    if M.shape != (m1 * m2, n1 * n2):
        raise ValueError(
            f"M has shape {M.shape}, but (m1, n1)=({m1}, {n1}) and (m2, n2)=({m2}, {n2}) "
            f"need shape (m1*m2, n1*n2) = ({m1 * m2}, {n1 * n2})"
        )
    shape = (m1 * n1, m2 * n2)
    out = _check_out(out, shape, M.dtype)
    return _permute(M, (m1, m2, n1, n2), (2, 0, 3, 1), shape, out)


def unrearrange(
    R: Any,
    first: tuple[int, int],
    second: tuple[int, int],
    *,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Inverse of :func:`rearrange`: the ``(m1*m2) x (n1*n2)`` matrix ``M`` with ``R(M) = R``.

    ``unrearrange(np.outer(vec(B), vec(C)), (m1, n1), (m2, n2)) == np.kron(B, C)``.

    Parameters
    ----------
    R : array_like, 2-D, shape (m1 * n1, m2 * n2)
        Input of any dtype.
    first : (int, int)
        ``(m1, n1)``, the shape of the first Kronecker factor.
    second : (int, int)
        ``(m2, n2)``, the shape of the second factor.
    out : ndarray, optional
        Array of shape ``(m1 * m2, n1 * n2)`` to write into, cast with
        ``casting='same_kind'``.

    Returns
    -------
    ndarray, shape (m1 * m2, n1 * n2)

    Raises
    ------
    ValueError
        ``R.shape != (m1 * n1, m2 * n2)``, a negative size, or a bad ``out``.

    Examples
    --------
    >>> import numpy as np
    >>> from kronsolve import rearrange, unrearrange
    >>> M = np.arange(24).reshape(6, 4)
    >>> R = rearrange(M, (3, 2), (2, 2))
    >>> np.array_equal(unrearrange(R, (3, 2), (2, 2)), M)
    True
    >>> B, C = np.eye(2), np.array([[1.0, 2.0]])
    >>> unrearrange(np.outer(B.flatten('F'), C.flatten('F')), (2, 2), (1, 2))
    array([[1., 2., 0., 0.],
           [0., 0., 1., 2.]])
    """
    R = _any_matrix(R, "R")
    m1, n1, m2, n2 = _sizes(first, second)
    if R.shape != (m1 * n1, m2 * n2):
        raise ValueError(
            f"R has shape {R.shape}, but (m1, n1)=({m1}, {n1}) and (m2, n2)=({m2}, {n2}) "
            f"need shape (m1*n1, m2*n2) = ({m1 * n1}, {m2 * n2})"
        )
    shape = (m1 * m2, n1 * n2)
    out = _check_out(out, shape, R.dtype)
    return _permute(R, (n1, m1, n2, m2), (1, 3, 0, 2), shape, out)
