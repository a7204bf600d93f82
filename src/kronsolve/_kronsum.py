"""``KronSum``: a lazy Kronecker sum ``A1 ⊕ A2 ⊕ ... ⊕ Ad``."""

from __future__ import annotations

from collections.abc import Sequence
from math import prod
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ._backend import _is_foreign
from ._kronproduct import (
    KronProduct,
    KronProductSum,
    _check_dense_size,
    _check_solve_rhs,
    _dense,
    _is_scalar,
    _KronOperator,
)
from ._modeprod import _apply, _cast, _result_dtype
from ._validation import _as_array, _as_matrix

__all__ = ["kronsum", "KronSum"]


class KronSum(_KronOperator):
    """Lazy Kronecker sum ``A1 ⊕ A2 ⊕ ... ⊕ Ad`` of square matrices.

    In ``np.kron`` ordering ``A1 ⊕ A2 ⊕ A3 = kron(A1, I, I) + kron(I, A2, I) +
    kron(I, I, A3)``; in the C-order tensor convention
    ``K @ X.ravel() == (X ×₁ A1 + X ×₂ A2 + X ×₃ A3).ravel()``.  Create it with
    :func:`kronsum`.  Products cost one mode product per factor; :meth:`solve`
    uses the fast diagonalization method (:class:`KronSumSolver`), factorized on
    first use and cached.

    Attributes
    ----------
    mats : tuple of arrays
        The square factors.
    shape : (int, int)
        ``(N, N)`` with ``N = n_1 * ... * n_d``.
    dtype : numpy.dtype
        Result type of the factors.

    Examples
    --------
    >>> import numpy as np
    >>> from kronsolve import kronsum
    >>> A, B = np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[0.0, 1.0], [1.0, 0.0]])
    >>> K = kronsum(A, B)
    >>> K.shape
    (4, 4)
    >>> np.array_equal(K.toarray(), np.kron(A, np.eye(2)) + np.kron(np.eye(2), B))
    True
    >>> K @ np.ones(4)
    array([4., 4., 8., 8.])
    """

    __slots__ = ("mats", "shape", "dtype", "_ns", "_cast_cache", "_solver")

    def __init__(self, mats: Sequence[Any]):
        mats = tuple(mats)
        if not mats:
            raise ValueError("kronsum needs at least one matrix, got none")
        for i, A in enumerate(mats):
            if A.ndim != 2 or A.shape[0] != A.shape[1]:
                raise ValueError(f"mats[{i}] must be a square matrix, got shape {A.shape}")
        self.mats = mats
        self._ns = tuple(A.shape[0] for A in mats)
        N = prod(self._ns)
        self.shape = (N, N)
        self.dtype = _result_dtype(*mats)
        self._cast_cache: dict = {}
        self._solver = None

    def __repr__(self) -> str:
        shapes = " ⊕ ".join(f"{n}x{n}" for n in self._ns)
        return f"KronSum({shapes}, shape={self.shape}, dtype={self.dtype})"

    # --- products --------------------------------------------------------------
    def _mats_as(self, dtype: np.dtype) -> tuple:
        f = self._cast_cache.get(dtype)
        if f is None:
            f = self._cast_cache[dtype] = tuple(_cast(A, dtype) for A in self.mats)
        return f

    def _tensor_sum(self, X: np.ndarray, offset: int, dtype: np.dtype) -> np.ndarray:
        """``Σ_k X ×_(offset+k) A_k`` for a C-contiguous ``X`` of ``dtype``."""
        mats = self._mats_as(dtype)
        out = _apply(X, [mats[0]], [offset], dtype)
        if len(mats) > 1:
            tmp = np.empty_like(out)
            for k in range(1, len(mats)):
                _apply(X, [mats[k]], [offset + k], dtype, out=tmp)
                out += tmp
        return out

    def _matmul_checked(self, x: np.ndarray) -> np.ndarray:
        dtype = np.result_type(self.dtype, x.dtype)
        x = np.ascontiguousarray(x, dtype=dtype)
        if x.ndim == 1:
            return self._tensor_sum(x.reshape(self._ns), 0, dtype).reshape(self.shape[0])
        batch = x.shape[:-2]
        k = x.shape[-1]
        X = x.reshape(batch + self._ns + (k,))
        Y = self._tensor_sum(X, len(batch), dtype)
        return Y.reshape(batch + (self.shape[0], k))

    def _terms(self) -> tuple[KronProduct, ...]:
        eyes = [np.eye(n, dtype=self.dtype) for n in self._ns]
        terms = []
        for k, A in enumerate(self.mats):
            f = list(eyes)
            f[k] = A
            terms.append(KronProduct(f))
        return tuple(terms)

    def _matmul_operator(self, other: _KronOperator):
        return KronProductSum(self._terms())._matmul_operator(other)

    # --- structure -------------------------------------------------------------
    @property
    def T(self) -> KronSum:
        """Transpose (lazy): ``A1.T ⊕ ... ⊕ Ad.T``."""
        return KronSum([A.T for A in self.mats])

    def conjugate(self) -> KronSum:
        """Complex conjugate (lazy)."""
        if self.dtype.kind != "c":
            return self
        return KronSum([A.conj() for A in self.mats])

    def __mul__(self, c: Any):
        if not _is_scalar(c):
            return NotImplemented
        # c (A1 ⊕ A2) = (c A1) ⊕ (c A2)
        return KronSum([A * c for A in self.mats])

    def __add__(self, other: Any):
        if isinstance(other, KronSum) and other._ns == self._ns:
            return KronSum([A + B for A, B in zip(self.mats, other.mats)])
        return super().__add__(other)

    def toarray(self, *, max_bytes: int | None = None) -> np.ndarray:
        """Dense matrix ``Σ_k I ⊗ ... ⊗ A_k ⊗ ... ⊗ I`` (``np.kron`` ordering).

        Refused with ``MemoryError`` above the dense-size limit (see
        :func:`set_dense_limit`) unless ``max_bytes`` raises it for this call.
        """
        _check_dense_size(self.shape, self.dtype, max_bytes)
        N = self.shape[0]
        out = np.zeros((N, N), dtype=self.dtype)
        for k, A in enumerate(self.mats):
            left = prod(self._ns[:k])
            right = prod(self._ns[k + 1:])
            n = self._ns[k]
            # kron(I_left, A, I_right) added block by block without forming it
            s0, s1, s2, s3, s4, s5 = out.reshape(left, n, right, left, n, right).strides
            blocks = as_strided(out, shape=(left, right, n, n),
                                strides=(s0 + s3, s2 + s5, s1, s4))
            blocks += np.asarray(_dense(A), dtype=self.dtype)
        return out

    def diagonal(self) -> np.ndarray:
        """Main diagonal, without forming the matrix."""
        diags = [np.asarray(_dense(A).diagonal(), dtype=self.dtype) for A in self.mats]
        out = diags[-1]
        for dk in reversed(diags[:-1]):
            out = np.add.outer(dk, out)
        return np.asarray(out, dtype=self.dtype).reshape(-1)

    def trace(self) -> Any:
        """Trace: ``Σ_k tr(A_k) · N / n_k``."""
        N = self.shape[0]
        t = np.zeros((), dtype=self.dtype)
        for A, n in zip(self.mats, self._ns):
            t = t + _dense(A).trace() * (N // n)
        return t[()]

    # --- solves ----------------------------------------------------------------
    def _get_solver(self):
        if self._solver is None:
            from ._solvers import KronSumSolver

            self._solver = KronSumSolver(self.mats)
        return self._solver

    def eigvals(self) -> np.ndarray:
        """All ``N`` eigenvalues, in ``np.kron`` order: ``λ1[i1] + ... + λd[id]``.

        Real (ascending within each factor) when every factor is symmetric or
        Hermitian.
        """
        from ._solvers import _sums

        lams = self._get_solver().eigenvalues
        return np.asarray(_sums(lams, 0)).reshape(-1)

    def solve(self, b: Any, *, shift: Any = 0.0) -> np.ndarray:
        """Solve ``(K + shift·I) @ x = b`` by the fast diagonalization method.

        Parameters
        ----------
        b : (N,) or (..., N, k) array_like
            Right-hand side(s), as for ``np.linalg.solve``.
        shift : scalar, optional
            Multiple of the identity added to ``K``.

        Returns
        -------
        x : ndarray
            Same shape as ``b``.

        Raises
        ------
        ValueError
            ``b`` of the wrong shape, non-finite values.
        numpy.linalg.LinAlgError
            A singular or nearly singular ``K + shift·I`` (the message names the
            multi-index of the eigenvalues whose sum vanishes).

        Examples
        --------
        >>> import numpy as np
        >>> from kronsolve import kronsum
        >>> T = np.array([[2.0, -1.0, 0.0], [-1.0, 2.0, -1.0], [0.0, -1.0, 2.0]])
        >>> K = kronsum(T, T)
        >>> b = np.arange(9.0)
        >>> np.allclose(K.solve(b), np.linalg.solve(K.toarray(), b))
        True
        """
        if type(b) is not np.ndarray and _is_foreign(b):  # PyTorch, CuPy, Dask...
            from ._generic import kronsum_solve

            return kronsum_solve(self, b, shift)
        b = _as_array(b, "b")
        _check_solve_rhs(self.shape, b)
        N = self.shape[0]
        solver = self._get_solver()
        if b.ndim == 1:
            return solver._solve(b.reshape(self._ns), shift, check_finite=True,
                                 overwrite_b=False, name="b").reshape(N)
        batch, k = b.shape[:-2], b.shape[-1]
        Bt = np.swapaxes(b, -1, -2).reshape(batch + (k,) + self._ns)
        X = solver._solve(Bt, shift, check_finite=True, overwrite_b=False, name="b")
        return np.swapaxes(X.reshape(batch + (k, N)), -1, -2)


def kronsum(*mats: Any) -> KronSum:
    """Lazy Kronecker sum ``A1 ⊕ A2 ⊕ ... ⊕ Ad`` of square matrices.

    ``kronsum(A1, A2, A3)`` behaves like the dense matrix
    ``np.kron(np.kron(A1, I), I) + np.kron(np.kron(I, A2), I) +
    np.kron(np.kron(I, I), A3)`` and, in the C-order convention,
    ``kronsum(A1, A2, A3) @ X.ravel()`` is the ravel of
    ``X ×₁ A1 + X ×₂ A2 + X ×₃ A3``.  It is the operator of the tensor Sylvester
    equation (the Poisson/Helmholtz operator on a tensor grid) and solves it with
    :meth:`KronSum.solve`.

    Parameters
    ----------
    *mats : square 2-D ndarrays, scipy.sparse matrices or KronSum
        The factors, in order; nested ``KronSum`` arguments are flattened
        (``⊕`` is associative).

    Returns
    -------
    KronSum

    Raises
    ------
    ValueError
        No factor, or a factor that is not a square matrix.
    TypeError
        A factor with a non-numeric dtype, or a ``KronProduct``.

    Examples
    --------
    >>> import numpy as np
    >>> from kronsolve import kronsum, multi_mode_product
    >>> rng = np.random.default_rng(0)
    >>> A1, A2, A3 = (rng.standard_normal((k, k)) for k in (2, 3, 4))
    >>> X = rng.standard_normal((2, 3, 4))
    >>> I2, I3, I4 = np.eye(2), np.eye(3), np.eye(4)
    >>> Y = (multi_mode_product(X, [A1, I3, I4]) + multi_mode_product(X, [I2, A2, I4])
    ...      + multi_mode_product(X, [I2, I3, A3]))
    >>> np.allclose(kronsum(A1, A2, A3) @ X.ravel(), Y.ravel())
    True
    >>> dense = (np.kron(np.kron(A1, I3), I4) + np.kron(np.kron(I2, A2), I4)
    ...          + np.kron(np.kron(I2, I3), A3))
    >>> np.allclose(kronsum(A1, A2, A3).toarray(), dense)
    True
    """
    if len(mats) == 1 and isinstance(mats[0], list | tuple):
        raise TypeError(
            "kronsum takes the factors as separate arguments: kronsum(A, B, C), not "
            "kronsum([A, B, C])"
        )
    if not mats:
        raise ValueError("kronsum needs at least one matrix, got none")
    flat: list[Any] = []
    for i, A in enumerate(mats):
        if isinstance(A, KronSum):
            flat.extend(A.mats)
            continue
        if isinstance(A, _KronOperator):
            raise TypeError(
                f"mats[{i}] is a {type(A).__name__}; kronsum takes matrices (or KronSum)"
            )
        if type(A) is not np.ndarray and _is_foreign(A):  # PyTorch, CuPy, Dask...
            from ._generic import kronsum as _generic_kronsum

            return _generic_kronsum(*mats)
        A = _as_matrix(A, f"mats[{i}]")
        if A.shape[0] != A.shape[1]:
            raise ValueError(f"mats[{i}] must be square, got shape {A.shape}")
        flat.append(A)
    return KronSum(flat)

