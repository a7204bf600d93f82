"""Perfect shuffles and commutation matrices.

The perfect shuffle ``P_{p,r}`` of ``p * r`` items reads them as a ``p x r``
matrix in row-major order and writes its transpose: with ``P`` the permutation
matrix ``I[perfect_shuffle(p, r), :]``, ``P_{m1,m2} (B ⊗ C) P_{n1,n2}ᵀ = C ⊗ B``
for ``B`` of shape ``(m1, n1)`` and ``C`` of shape ``(m2, n2)``.
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np

from ._kernels import _permute
from ._validation import _is_sparse, _normalize_axis

__all__ = ["commutation_matrix", "perfect_shuffle", "shuffle", "shuffle2"]


def _size(v: Any, name: str) -> int:
    """A non-negative integer size (``ValueError``/``TypeError`` naming it otherwise)."""
    if isinstance(v, bool | np.bool_):
        raise TypeError(f"{name} must be an integer, got {v!r}")
    try:
        n = operator.index(v)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {type(v).__name__} {v!r}") from None
    if n < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {n}")
    return n


def _pair(v: Any, name: str, names: tuple[str, str]) -> tuple[int, int]:
    """A pair of sizes such as ``(m1, n1)``."""
    try:
        a, b = v
    except (TypeError, ValueError):
        raise TypeError(
            f"{name} must be a pair of integers ({names[0]}, {names[1]}), got {v!r}"
        ) from None
    return _size(a, names[0]), _size(b, names[1])


def _any_array(x: Any, name: str) -> np.ndarray:
    """``x`` as an ndarray of any dtype (strings and objects included)."""
    if type(x) is np.ndarray:
        return x
    if _is_sparse(x):
        raise TypeError(
            f"{name} must be a dense array; got a scipy.sparse {type(x).__name__} of shape "
            f"{x.shape} (call .toarray() first)"
        )
    return np.asarray(x)


def _any_matrix(M: Any, name: str) -> np.ndarray:
    M = _any_array(M, name)
    if M.ndim != 2:
        raise ValueError(f"{name} must be a 2-D matrix, got an array of shape {M.shape}")
    return M


def _check_out(out: Any, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray | None:
    """Validate an ``out=`` argument: an ndarray of the result's shape, castable to."""
    if out is None:
        return None
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a NumPy array, got {type(out).__name__}")
    if out.shape != tuple(shape):
        raise ValueError(f"out must have shape {tuple(shape)}, got shape {out.shape}")
    if not np.can_cast(dtype, out.dtype, casting="same_kind"):
        raise TypeError(
            f"out has dtype {out.dtype}, which the result's dtype {dtype} cannot be cast to "
            "(casting='same_kind')"
        )
    if not out.flags.writeable:
        raise ValueError("out must be writeable, got a read-only array")
    return out


def perfect_shuffle(p: int, r: int) -> np.ndarray:
    """Index array of the perfect shuffle ``P_{p,r}`` of ``p * r`` items.

    Item ``k = i * p + j`` of the result (``0 <= i < r``, ``0 <= j < p``) is
    ``j * r + i``: reading ``x`` as a ``p x r`` matrix in row-major order,
    ``x[perfect_shuffle(p, r)]`` lists it column by column, i.e. it is
    ``x.reshape(p, r).T.ravel()``.  For ``B`` of shape ``(m1, n1)`` and ``C`` of
    shape ``(m2, n2)``::

        np.kron(B, C)[perfect_shuffle(m1, m2)][:, perfect_shuffle(n1, n2)] == np.kron(C, B)

    Parameters
    ----------
    p, r : int
        Non-negative sizes.

    Returns
    -------
    ndarray of intp, shape (p * r,)
        The inverse permutation is ``perfect_shuffle(r, p)``.

    Raises
    ------
    ValueError
        A negative size.

    See Also
    --------
    shuffle : apply the shuffle without building the index array.
    commutation_matrix : the same permutation as a sparse matrix.

    Examples
    --------
    >>> from kronsolve import perfect_shuffle
    >>> perfect_shuffle(3, 2)
    array([0, 2, 4, 1, 3, 5])
    >>> perfect_shuffle(2, 3)[perfect_shuffle(3, 2)]
    array([0, 1, 2, 3, 4, 5])
    """
    p = _size(p, "p")
    r = _size(r, "r")
    return np.ascontiguousarray(np.arange(p * r, dtype=np.intp).reshape(p, r).T).reshape(-1)


def commutation_matrix(m: int, n: int, *, dtype: Any = np.float64) -> Any:
    """The commutation matrix ``K_{m,n}``: ``K @ vec(A) == vec(A.T)`` for ``A`` of shape (m, n).

    ``vec`` stacks columns (``A.flatten('F')``).  ``K_{m,n}`` is the
    ``mn x mn`` permutation matrix ``I[perfect_shuffle(n, m), :]``; its
    transpose (and inverse) is ``K_{n,m}``, and ``K_{m1,m2}ᵀ (B ⊗ C) K_{n1,n2} ==
    C ⊗ B`` (Magnus & Neudecker).

    Parameters
    ----------
    m, n : int
        Non-negative sizes: the shape of ``A``.
    dtype : dtype, optional
        Dtype of the entries (default float64).

    Returns
    -------
    scipy.sparse.csr_array, shape (m * n, m * n)

    Raises
    ------
    ValueError
        A negative size.

    Examples
    --------
    >>> import numpy as np
    >>> from kronsolve import commutation_matrix
    >>> A = np.arange(6.0).reshape(2, 3)
    >>> K = commutation_matrix(2, 3)
    >>> K @ A.flatten('F')
    array([0., 1., 2., 3., 4., 5.])
    >>> np.array_equal(K @ A.flatten('F'), A.T.flatten('F'))
    True
    >>> (K.T != commutation_matrix(3, 2)).nnz
    0
    """
    import scipy.sparse as sp

    m = _size(m, "m")
    n = _size(n, "n")
    N = m * n
    cols = perfect_shuffle(n, m)
    return sp.csr_array(
        (np.ones(N, dtype=dtype), cols, np.arange(N + 1, dtype=np.intp)), shape=(N, N)
    )


def shuffle(
    x: Any, p: int, r: int, *, axis: int = 0, out: np.ndarray | None = None
) -> np.ndarray:
    """Apply the perfect shuffle ``P_{p,r}`` along one axis, without an index array.

    Equal to ``np.take(x, perfect_shuffle(p, r), axis=axis)``: the ``p * r``
    entries along ``axis``, read as a ``p x r`` row-major matrix, come out
    column by column.  Works for any dtype; numeric (and other fixed-size)
    dtypes of large arrays go through a parallel tiled copy.

    Parameters
    ----------
    x : array_like
        Input, of any dtype, with ``x.shape[axis] == p * r``.
    p, r : int
        Non-negative sizes.
    axis : int, optional
        The axis to shuffle (default 0: the rows of a matrix).
    out : ndarray, optional
        Array of the result's shape to write into (it may be ``x`` itself);
        values are cast with ``casting='same_kind'``.

    Returns
    -------
    ndarray
        A new array (or ``out``) of the shape and dtype of ``x``.

    Raises
    ------
    ValueError
        ``x.shape[axis] != p * r``, a negative size, a bad axis, or ``out`` of
        the wrong shape.

    Examples
    --------
    >>> import numpy as np
    >>> from kronsolve import perfect_shuffle, shuffle
    >>> shuffle(np.arange(6), 3, 2)
    array([0, 2, 4, 1, 3, 5])
    >>> M = np.arange(12).reshape(2, 6)
    >>> np.array_equal(shuffle(M, 2, 3, axis=1), M[:, perfect_shuffle(2, 3)])
    True
    """
    x = _any_array(x, "x")
    p = _size(p, "p")
    r = _size(r, "r")
    if x.ndim == 0:
        raise ValueError("x must have at least one dimension, got a 0-d array")
    ax = _normalize_axis(axis, x.ndim, "axis")
    if x.shape[ax] != p * r:
        raise ValueError(
            f"x.shape[{axis}] = {x.shape[ax]} must equal p * r = {p} * {r} = {p * r} "
            f"(x has shape {x.shape})"
        )
    out = _check_out(out, x.shape, x.dtype)
    in_shape = x.shape[:ax] + (p, r) + x.shape[ax + 1 :]
    perm = tuple(range(ax)) + (ax + 1, ax) + tuple(range(ax + 2, x.ndim + 1))
    return _permute(x, in_shape, perm, x.shape, out)


def shuffle2(
    M: Any,
    rows: tuple[int, int],
    cols: tuple[int, int],
    *,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Perfect-shuffle the rows and the columns of a matrix in one pass.

    ``shuffle2(M, (p1, r1), (p2, r2))`` equals
    ``M[perfect_shuffle(p1, r1), :][:, perfect_shuffle(p2, r2)]`` (the seed's
    fancy indexing) but makes a single tiled copy.  With ``M = B ⊗ C``,
    ``B`` of shape ``(m1, n1)`` and ``C`` of shape ``(m2, n2)``,
    ``shuffle2(M, (m1, m2), (n1, n2)) == C ⊗ B``.

    Parameters
    ----------
    M : array_like, 2-D, shape (p1 * r1, p2 * r2)
        Input matrix of any dtype.
    rows : (int, int)
        ``(p1, r1)``, the shuffle of the rows.
    cols : (int, int)
        ``(p2, r2)``, the shuffle of the columns.
    out : ndarray, optional
        Array of M's shape to write into (may be ``M`` itself), cast with
        ``casting='same_kind'``.

    Returns
    -------
    ndarray
        A new matrix (or ``out``) of the shape and dtype of ``M``.

    Raises
    ------
    ValueError
        ``M.shape != (p1 * r1, p2 * r2)``, a negative size, or a bad ``out``.

    Examples
    --------
    >>> import numpy as np
    >>> from kronsolve import shuffle2
    >>> B = np.array([[1, 2], [3, 4], [5, 6]])
    >>> C = np.array([[0, 1], [1, 0]])
    >>> np.array_equal(shuffle2(np.kron(B, C), (3, 2), (2, 2)), np.kron(C, B))
    True
    """
    M = _any_matrix(M, "M")
    p1, r1 = _pair(rows, "rows", ("p1", "r1"))
    p2, r2 = _pair(cols, "cols", ("p2", "r2"))
    if M.shape != (p1 * r1, p2 * r2):
        raise ValueError(
            f"M has shape {M.shape}, but rows=(p1, r1)=({p1}, {r1}) and cols=(p2, r2)="
            f"({p2}, {r2}) need shape (p1*r1, p2*r2) = ({p1 * r1}, {p2 * r2})"
        )
    out = _check_out(out, M.shape, M.dtype)
    return _permute(M, (p1, r1, p2, r2), (1, 0, 3, 2), M.shape, out)
