"""Kronecker-product SVD and nearest Kronecker product (Van Loan & Pitsianis).

``A = sum_i s_i B_i ⊗ C_i`` with ``{vec(B_i)}`` and ``{vec(C_i)}`` orthonormal:
the SVD of the rearrangement ``R(A) = sum_i s_i vec(B_i) vec(C_i)ᵀ``.
Truncating it gives the best approximation of ``A`` by a sum of ``k``
Kronecker products in the Frobenius norm.
"""

from __future__ import annotations

import math
import operator
from typing import Any, NamedTuple

import numpy as np

from ._kronproduct import KronProductSum, kron
from ._rearrange import _sizes, rearrange
from ._validation import _as_matrix, _check_finite, _is_sparse

__all__ = ["KPSVDResult", "kpsvd", "nearest_kron"]

# Truncated SVD (svds) when rank <= _SVDS_SHARE * min(R.shape) and min(R.shape) >= _SVDS_MIN.
_SVDS_SHARE = 0.25
_SVDS_MIN = 32


class KPSVDResult(NamedTuple):
    """Result of :func:`kpsvd`: ``A ≈ sum_i s[i] * np.kron(B[i], C[i])``.

    Attributes
    ----------
    s : ndarray, shape (r,)
        Kronecker singular values, non-negative and non-increasing.
    B : ndarray, shape (r, m1, n1)
        First factors, orthonormal: ``sum(B[i] * B[j].conj()) == (i == j)``.
    C : ndarray, shape (r, m2, n2)
        Second factors, orthonormal in the same sense.

    Examples
    --------
    >>> import numpy as np
    >>> from kronsolve import kpsvd
    >>> A = np.kron(np.eye(2), np.ones((3, 3))) + np.kron(np.ones((2, 2)), np.eye(3))
    >>> res = kpsvd(A, (2, 2), (3, 3))
    >>> res.rank
    2
    >>> np.allclose(res.to_operator().toarray(), A)
    True
    """

    s: np.ndarray
    B: np.ndarray
    C: np.ndarray

    @property
    def rank(self) -> int:
        """Number of Kronecker terms."""
        return int(self.s.shape[0])

    def to_operator(self) -> KronProductSum:
        """The lazy sum ``kron(s[0] * B[0], C[0]) + kron(s[1] * B[1], C[1]) + ...``.

        Returns
        -------
        KronProductSum
            Same operator as adding the :func:`kron` terms with ``+``.
        """
        return KronProductSum(
            [kron(self.s[i] * self.B[i], self.C[i]) for i in range(self.rank)]
        )

    def toarray(self) -> np.ndarray:
        """The dense matrix ``sum_i s[i] * np.kron(B[i], C[i])``."""
        m1, n1 = self.B.shape[1:]
        m2, n2 = self.C.shape[1:]
        if self.rank == 0:
            return np.zeros((m1 * m2, n1 * n2), dtype=self.B.dtype)
        return sum(self.s[i] * np.kron(self.B[i], self.C[i]) for i in range(self.rank))


def _float_matrix(A: Any) -> np.ndarray:
    A = _as_matrix(A, "A", allow_sparse=True)
    if _is_sparse(A):
        A = A.toarray()
    if A.dtype.kind in "biu":
        A = A.astype(np.float64)
    elif A.dtype == np.float16:
        A = A.astype(np.float32)
    elif A.dtype.itemsize > 16 or A.dtype == np.longdouble:
        A = A.astype(np.complex128 if A.dtype.kind == "c" else np.float64)
    _check_finite(A, "A")
    return A


def _truncated_svd(R: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from scipy.sparse.linalg import svds

    n = min(R.shape)
    v0 = np.random.default_rng(0).standard_normal(n).astype(R.dtype)
    U, s, Vh = svds(R, k=k, v0=v0)
    order = np.argsort(s)[::-1]
    return U[:, order], s[order], Vh[order]


def kpsvd(
    A: Any,
    first: tuple[int, int],
    second: tuple[int, int],
    rank: int | None = None,
    tol: float | None = None,
) -> KPSVDResult:
    """Kronecker-product SVD: ``A = sum_i s_i B_i ⊗ C_i`` (Van Loan & Pitsianis).

    The SVD of :func:`rearrange` ``(A)``: the ``vec(B_i)`` are its left and the
    ``vec(C_i)`` its (conjugated) right singular vectors, so the ``B_i`` are
    orthonormal, the ``C_i`` too, and the first ``k`` terms are the best
    approximation of ``A`` by a sum of ``k`` Kronecker products in the
    Frobenius norm, with error ``sqrt(sum_{i>=k} s_i**2)``.

    Parameters
    ----------
    A : array_like or scipy.sparse matrix, shape (m1 * m2, n1 * n2)
        Numeric matrix (integers are converted to float64; sparse input is
        densified).
    first : (int, int)
        ``(m1, n1)``, the shape of the ``B_i``.
    second : (int, int)
        ``(m2, n2)``, the shape of the ``C_i``.
    rank : int, optional
        Keep at most this many terms, ``1 <= rank <= min(m1*n1, m2*n2)``.  A
        rank of at most a quarter of that bound uses a truncated SVD
        (``scipy.sparse.linalg.svds``) rather than the full one.  Default: all.
    tol : float, optional
        Drop the terms with ``s_i <= tol * s_0`` (at least one term is always
        kept).  Default ``max(m1*n1, m2*n2) * eps``, which drops the terms that
        are zero up to rounding; pass ``0`` to keep every computed term.

    Returns
    -------
    KPSVDResult
        ``(s, B, C)`` with ``B`` of shape ``(r, m1, n1)`` and ``C`` of shape
        ``(r, m2, n2)``; ``.to_operator()`` gives the lazy
        :class:`KronProductSum`.  Each term is normalised so that the entry of
        largest modulus of ``B_i`` is real and positive.

    Raises
    ------
    ValueError
        ``A.shape != (m1*m2, n1*n2)``, a size below 1, a rank out of range, a
        negative ``tol``, or inf/NaN in ``A``.

    Examples
    --------
    >>> import numpy as np
    >>> from kronsolve import kpsvd
    >>> rng = np.random.default_rng(0)
    >>> B1, B2 = rng.standard_normal((2, 4, 3))
    >>> C1, C2 = rng.standard_normal((2, 3, 2))
    >>> A = np.kron(B1, C1) + np.kron(B2, C2)
    >>> res = kpsvd(A, (4, 3), (3, 2))
    >>> res.rank, res.B.shape, res.C.shape
    (2, (2, 4, 3), (2, 3, 2))
    >>> K = res.to_operator()              # lazy kron(s0*B0, C0) + kron(s1*B1, C1)
    >>> np.allclose(K.toarray(), A)
    True
    """
    A = _float_matrix(A)
    m1, n1, m2, n2 = _sizes(first, second)
    for name, v in (("m1", m1), ("n1", n1), ("m2", m2), ("n2", n2)):
        if v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v}")
    if A.shape != (m1 * m2, n1 * n2):
        raise ValueError(
            f"A has shape {A.shape}, but (m1, n1)=({m1}, {n1}) and (m2, n2)=({m2}, {n2}) "
            f"need shape (m1*m2, n1*n2) = ({m1 * m2}, {n1 * n2})"
        )
    kmax = min(m1 * n1, m2 * n2)
    if rank is not None:
        if isinstance(rank, bool | np.bool_):
            raise TypeError(f"rank must be an integer or None, got {rank!r}")
        try:
            rank = operator.index(rank)
        except TypeError:
            raise TypeError(
                f"rank must be an integer or None, got {type(rank).__name__}"
            ) from None
        if not 1 <= rank <= kmax:
            raise ValueError(
                f"rank={rank} is out of range: it must be between 1 and "
                f"min(m1*n1, m2*n2) = min({m1 * n1}, {m2 * n2}) = {kmax}"
            )
    if tol is None:
        tol = max(m1 * n1, m2 * n2) * float(np.finfo(A.dtype).eps)
    else:
        try:
            tol = float(tol)
        except (TypeError, ValueError):
            raise TypeError(f"tol must be a real number or None, got {tol!r}") from None
        if not (math.isfinite(tol) and tol >= 0):
            raise ValueError(f"tol must be a finite non-negative number, got {tol}")

    R = rearrange(A, (m1, n1), (m2, n2))
    k = kmax if rank is None else rank
    if k <= _SVDS_SHARE * kmax and kmax >= _SVDS_MIN:
        U, s, Vh = _truncated_svd(R, k)
    else:
        U, s, Vh = np.linalg.svd(R, full_matrices=False)
        U, s, Vh = U[:, :k], s[:k], Vh[:k]
    keep = max(1, int(np.count_nonzero(s > tol * s[0]))) if s[0] > 0 else 1
    U, s, Vh = U[:, :keep], s[:keep], Vh[:keep]

    # Fix the phase: the largest entry of each vec(B_i) real and positive.
    idx = np.argmax(np.abs(U), axis=0)
    piv = U[idx, np.arange(keep)]
    phase = np.where(piv == 0, 1, piv / np.where(piv == 0, 1, np.abs(piv)))
    U = U * phase.conj()
    Vh = Vh * phase[:, None]

    B = np.ascontiguousarray(U.T.reshape(keep, n1, m1).transpose(0, 2, 1))
    C = np.ascontiguousarray(Vh.reshape(keep, n2, m2).transpose(0, 2, 1))
    return KPSVDResult(np.ascontiguousarray(s), B, C)


def nearest_kron(
    A: Any, first: tuple[int, int], second: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """The Kronecker product ``B ⊗ C`` nearest to ``A`` in the Frobenius norm.

    Solves ``min ‖A - B ⊗ C‖_F`` over ``B`` of shape ``(m1, n1)`` and ``C`` of
    shape ``(m2, n2)`` with the leading singular pair of :func:`rearrange`
    ``(A)`` (Van Loan & Pitsianis).  The factors are balanced:
    ``‖B‖_F == ‖C‖_F``.

    Parameters
    ----------
    A : array_like or scipy.sparse matrix, shape (m1 * m2, n1 * n2)
        Numeric matrix.
    first : (int, int)
        ``(m1, n1)``, the shape of ``B``.
    second : (int, int)
        ``(m2, n2)``, the shape of ``C``.

    Returns
    -------
    B : ndarray, shape (m1, n1)
    C : ndarray, shape (m2, n2)

    Raises
    ------
    ValueError
        ``A.shape != (m1*m2, n1*n2)``, a size below 1, or inf/NaN in ``A``.

    See Also
    --------
    kpsvd : all the terms.

    Examples
    --------
    >>> import numpy as np
    >>> from kronsolve import nearest_kron
    >>> B0 = np.array([[1.0, 2.0], [3.0, 4.0]])
    >>> C0 = np.array([[0.0, 1.0, 2.0]])
    >>> B, C = nearest_kron(np.kron(B0, C0), (2, 2), (1, 3))
    >>> np.allclose(np.kron(B, C), np.kron(B0, C0))
    True
    """
    res = kpsvd(A, first, second, rank=1, tol=0)
    root = np.sqrt(res.s[0])
    return root * res.B[0], root * res.C[0]
