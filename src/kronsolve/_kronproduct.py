"""``KronProduct``: a lazy Kronecker product that behaves like its dense matrix."""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Sequence
from math import prod
from typing import Any

import numpy as np

from ._backend import _is_foreign
from ._modeprod import _apply, _cast, _result_dtype
from ._validation import _as_array, _as_matrix, _is_sparse

__all__ = ["kron", "KronProduct", "KronProductSum", "set_dense_limit"]

_DENSE_LIMIT = [1 << 30]


def _merge_limit(N: int) -> int:
    """Largest merged factor size: generous where per-call overhead dominates."""
    return 64 if N <= 1024 else 16 if N <= 16384 else 8


def set_dense_limit(nbytes: int) -> int:
    """Set the largest dense matrix (in bytes) that ``toarray``/``np.asarray`` build.

    Lazy Kronecker operators refuse to densify beyond this size (default 1 GiB),
    because ``n**d`` squared entries grow very fast.

    Parameters
    ----------
    nbytes : int
        New limit in bytes.

    Returns
    -------
    int
        The previous limit, so that it can be restored.

    Examples
    --------
    >>> from kronsolve import set_dense_limit
    >>> old = set_dense_limit(2 << 30)   # allow up to 2 GiB
    >>> _ = set_dense_limit(old)         # restore
    """
    nbytes = int(nbytes)
    if nbytes < 0:
        raise ValueError(f"nbytes must be non-negative, got {nbytes}")
    old, _DENSE_LIMIT[0] = _DENSE_LIMIT[0], nbytes
    return old


def _check_dense_size(shape: tuple[int, int], dtype: np.dtype, max_bytes: int | None) -> None:
    limit = _DENSE_LIMIT[0] if max_bytes is None else int(max_bytes)
    nbytes = shape[0] * shape[1] * dtype.itemsize
    if nbytes > limit:
        raise MemoryError(
            f"the dense {shape[0]} x {shape[1]} {dtype} matrix would take "
            f"{nbytes / 2**30:.3g} GiB, above the limit of {limit / 2**30:.3g} GiB; pass "
            "max_bytes=... to toarray() or raise the limit with kronsolve.set_dense_limit(nbytes)"
        )


def _check_rhs(shape: tuple[int, int], x: Any) -> None:
    """``x`` must be something ``@`` accepts on the right of a ``shape`` matrix."""
    N = shape[1]
    if x.ndim == 0:
        raise ValueError("matmul: x must have at least one dimension, got a 0-d array")
    if (x.shape[0] if x.ndim == 1 else x.shape[-2]) != N:
        axis = 0 if x.ndim == 1 else x.ndim - 2
        raise ValueError(
            f"matmul: operand of shape {shape} cannot multiply x of shape {tuple(x.shape)}: "
            f"expected x.shape[{axis}] == {N}"
        )


def _check_solve_rhs(shape: tuple[int, int], b: Any) -> None:
    """``b`` must be a right-hand side of a ``shape`` system, as for ``np.linalg.solve``."""
    N = shape[0]
    if b.ndim == 0 or (b.shape[0] if b.ndim == 1 else b.shape[-2]) != N:
        raise ValueError(
            f"b must have shape ({N},) or (..., {N}, k) to match the operator of shape "
            f"{shape}, got {tuple(b.shape)}"
        )


def _dense(A: Any) -> np.ndarray:
    return A.toarray() if _is_sparse(A) else A


def _is_scalar(c: Any) -> bool:
    if isinstance(c, numbers.Number):
        return True
    return isinstance(c, np.ndarray | np.generic) and np.ndim(c) == 0


class _KronOperator:
    """Behaviour shared by ``KronProduct`` and ``KronProductSum``."""

    # Make ``ndarray @ K`` and ``ndarray + K`` defer to our reflected methods
    # instead of densifying K through ``__array__``.
    __array_ufunc__ = None
    ndim = 2

    shape: tuple[int, int]
    dtype: np.dtype

    def __array__(self, dtype=None, copy=None):
        if copy is False:
            raise ValueError("a lazy Kronecker operator cannot be converted without a copy")
        A = self.toarray()
        return A if dtype is None else A.astype(dtype, copy=False)

    @property
    def size(self) -> int:
        return self.shape[0] * self.shape[1]

    # --- products --------------------------------------------------------------
    def _prep_rhs(self, x: Any, name: str = "x") -> np.ndarray:
        return _as_array(x, name)

    def __matmul__(self, x: Any):
        if type(x) is not np.ndarray:
            if isinstance(x, _KronOperator):
                return self._matmul_operator(x)
            if _is_foreign(x):  # PyTorch, CuPy, Dask...: the array-API path
                from ._generic import matmul

                return matmul(self, x)
            if _is_sparse(x):
                return self @ x.toarray()
        x = self._prep_rhs(x)
        return self._matmul_array(x)

    def __rmatmul__(self, x: Any):
        if type(x) is not np.ndarray and _is_foreign(x):
            from ._generic import rmatmul

            return rmatmul(self, x)
        if _is_sparse(x):
            x = x.toarray()
        x = self._prep_rhs(x)
        if x.ndim == 0:
            raise ValueError("matmul: x must have at least one dimension, got a 0-d array")
        if x.ndim == 1:
            return self.T._matmul_array(x)
        # x @ K == (K.T @ x^T)^T on the last two axes
        return np.swapaxes(self.T._matmul_array(np.swapaxes(x, -1, -2)), -1, -2)

    def _matmul_array(self, x: np.ndarray) -> np.ndarray:
        _check_rhs(self.shape, x)
        return self._matmul_checked(x)

    # scipy.sparse.linalg.aslinearoperator duck-typing
    def matvec(self, x: Any) -> np.ndarray:
        """``self @ x`` for a vector ``x`` (SciPy ``LinearOperator`` protocol)."""
        x = _as_array(x, "x")
        if x.ndim == 2 and x.shape[1] == 1:
            return (self @ x.reshape(-1)).reshape(-1, 1)
        return self @ x

    def rmatvec(self, x: Any) -> np.ndarray:
        """``self.H @ x`` (SciPy ``LinearOperator`` protocol)."""
        return self.H @ _as_array(x, "x")

    def matmat(self, X: Any) -> np.ndarray:
        """``self @ X`` for a 2-D block ``X`` (one contraction, not a loop)."""
        return self @ X

    def rmatmat(self, X: Any) -> np.ndarray:
        """``self.H @ X`` for a 2-D block ``X``."""
        return self.H @ X

    def aslinearoperator(self):
        """Return a ``scipy.sparse.linalg.LinearOperator`` for this operator.

        Its ``_matmat`` is one contraction (not a loop over columns), and its
        adjoint is lazy too, so it is usable in ``cg``, ``gmres``, ``eigsh``...
        """
        from ._linop import _KronLinearOperator

        return _KronLinearOperator(self)

    # --- arithmetic ------------------------------------------------------------
    def __add__(self, other: Any):
        if isinstance(other, _KronOperator):
            if other.shape != self.shape:
                raise ValueError(
                    f"cannot add operators of shapes {self.shape} and {other.shape}"
                )
            return KronProductSum(list(self._terms()) + list(other._terms()))
        return NotImplemented

    def __radd__(self, other: Any):
        return NotImplemented

    def __sub__(self, other: Any):
        if isinstance(other, _KronOperator):
            return self + (-other)
        return NotImplemented

    def __neg__(self):
        return self * -1

    def __rmul__(self, c: Any):
        return self * c

    def __truediv__(self, c: Any):
        if not _is_scalar(c):
            return NotImplemented
        return self * (1 / np.asarray(c)[()])

    def conj(self):
        """Complex conjugate (lazy)."""
        return self.conjugate()

    @property
    def H(self):
        """Conjugate transpose (lazy)."""
        return self.T.conjugate()


class KronProduct(_KronOperator):
    """Lazy Kronecker product ``A1 ⊗ A2 ⊗ ... ⊗ Ad`` (``np.kron`` ordering).

    Create it with :func:`kron`.  It behaves like the dense matrix
    ``np.kron(np.kron(A1, A2), ...)`` but never forms it: ``K @ x`` costs
    ``O(sum_k n_k * N)`` flops through mode products instead of ``O(N**2)``.

    Attributes
    ----------
    factors : tuple of arrays
        The Kronecker factors.
    shape : (int, int)
        ``(prod(m_k), prod(n_k))``.
    dtype : numpy.dtype
        Result type of the factors.

    Examples
    --------
    >>> import numpy as np
    >>> from kronsolve import kron
    >>> A, B = np.eye(2), np.array([[1.0, 2.0], [3.0, 4.0]])
    >>> K = kron(A, B)
    >>> K.shape
    (4, 4)
    >>> np.array_equal(np.asarray(K), np.kron(A, B))
    True
    >>> K @ np.ones(4)
    array([3., 7., 3., 7.])
    """

    __slots__ = ("factors", "shape", "dtype", "_rows", "_cols", "_cast_cache", "_dtype_cache",
                 "_lu_cache")

    def __init__(self, factors: Sequence[Any]):
        factors = tuple(factors)
        if not factors:
            raise ValueError("kron needs at least one factor, got none")
        self.factors = factors
        self._rows = tuple(A.shape[0] for A in factors)
        self._cols = tuple(A.shape[1] for A in factors)
        self.shape = (prod(self._rows), prod(self._cols))
        self.dtype = _result_dtype(*factors)
        self._cast_cache: dict = {}
        self._dtype_cache: dict = {}
        self._lu_cache = None

    def __repr__(self) -> str:
        shapes = " ⊗ ".join(f"{r}x{c}" for r, c in zip(self._rows, self._cols))
        return f"KronProduct({shapes}, shape={self.shape}, dtype={self.dtype})"

    def _terms(self):
        return (self,)

    # --- products --------------------------------------------------------------
    def _factors_as(self, dtype: np.dtype) -> tuple[tuple, tuple[int, ...]]:
        """Factors cast to ``dtype`` with small neighbours merged, and their column sizes.

        Adjacent dense factors whose merged size stays at most ``_MERGE_MAX``
        are replaced by their ``np.kron``: for small factors this costs few or
        no extra flops and saves whole passes (and BLAS calls) over the tensor.
        """
        f = self._cast_cache.get(dtype)
        if f is None:
            limit = _merge_limit(self.shape[1])
            merged: list[Any] = []
            for A in (_cast(A, dtype) for A in self.factors):
                prev = merged[-1] if merged else None
                if (prev is not None and not _is_sparse(A) and not _is_sparse(prev)
                        and prev.shape[0] * A.shape[0] <= limit
                        and prev.shape[1] * A.shape[1] <= limit):
                    merged[-1] = np.kron(prev, A)
                else:
                    merged.append(A)
            mats = tuple(A if _is_sparse(A) or A.flags.forc else np.ascontiguousarray(A)
                         for A in merged)
            f = self._cast_cache[dtype] = (mats, tuple(A.shape[1] for A in mats))
        return f

    def _matmul_checked(self, x: np.ndarray) -> np.ndarray:
        dtype = self._dtype_cache.get(x.dtype)  # result dtype for this x dtype
        if dtype is None:
            dtype = self._dtype_cache[x.dtype] = np.result_type(self.dtype, x.dtype)
        mats, cols = self._factors_as(dtype)
        if x.dtype != dtype:
            x = x.astype(dtype)
        d = len(mats)
        if x.ndim == 1:
            return _apply(x.reshape(cols), mats, list(range(d)), dtype).reshape(self.shape[0])
        batch = x.shape[:-2]
        k = x.shape[-1]
        X = x.reshape(batch + cols + (k,))
        b = len(batch)
        modes = list(range(b, b + d))
        return _apply(X, mats, modes, dtype).reshape(batch + (self.shape[0], k))

    def _matmul_operator(self, other: _KronOperator):
        if self.shape[1] != other.shape[0]:
            raise ValueError(
                f"matmul: operand shapes {self.shape} and {other.shape} do not line up"
            )
        if not isinstance(other, KronProduct):  # a sum of Kronecker products
            return KronProductSum([self @ t for t in other._terms()])
        left, right = _align(self.factors, [A.shape[1] for A in self.factors],
                             other.factors, [B.shape[0] for B in other.factors])
        return KronProduct([A @ B for A, B in zip(left, right)])

    # --- structure -------------------------------------------------------------
    @property
    def T(self) -> KronProduct:
        """Transpose (lazy): ``A1.T ⊗ ... ⊗ Ad.T``."""
        return KronProduct([A.T for A in self.factors])

    def conjugate(self) -> KronProduct:
        """Complex conjugate (lazy)."""
        if self.dtype.kind != "c":
            return self
        return KronProduct([A.conj() for A in self.factors])

    def __mul__(self, c: Any):
        if not _is_scalar(c):
            return NotImplemented
        first = self.factors[0] * c
        return KronProduct((first,) + self.factors[1:])

    def toarray(self, *, max_bytes: int | None = None) -> np.ndarray:
        """Dense matrix (``np.kron`` of the factors).

        Refuses with ``MemoryError`` above the dense-size limit (1 GiB by default,
        see :func:`set_dense_limit`) unless ``max_bytes`` raises it for this call.
        """
        _check_dense_size(self.shape, self.dtype, max_bytes)
        out = _dense(self.factors[0])
        for A in self.factors[1:]:
            out = np.kron(out, _dense(A))
        return np.asarray(out, dtype=self.dtype)

    # --- structured algebra ----------------------------------------------------
    def _square_factors(self, what: str) -> list[np.ndarray]:
        for i, A in enumerate(self.factors):
            if A.shape[0] != A.shape[1]:
                raise ValueError(
                    f"{what} needs square factors, but factor {i} has shape {A.shape}"
                )
        return [_dense(A) for A in self.factors]

    def _lu(self):
        if self._lu_cache is None:
            from scipy.linalg import lu_factor

            lus = []
            for i, A in enumerate(self._square_factors("solve")):
                if A.dtype.kind not in "fc":
                    A = A.astype(np.result_type(A.dtype, np.float64))
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # singularity is reported below
                    lu, piv = lu_factor(A, check_finite=False)
                diag = np.abs(np.diagonal(lu))
                if A.shape[0] and (diag.min() == 0 or not np.isfinite(diag).all()):
                    raise np.linalg.LinAlgError(
                        f"factor {i} (shape {A.shape}) is singular: "
                        f"pivot {int(diag.argmin())} of its LU factorization is zero"
                    )
                lus.append((lu, piv))
            self._lu_cache = lus
        return self._lu_cache

    def solve(self, b: Any) -> np.ndarray:
        """Solve ``K @ x = b`` through one LU factorization per factor.

        ``b`` has shape ``(N,)``, ``(N, k)`` or ``(..., N, k)`` as for
        ``np.linalg.solve``; the dense matrix is never formed.

        Raises
        ------
        ValueError
            A factor is not square, or ``b`` does not match.
        numpy.linalg.LinAlgError
            A factor is singular (the message names it).

        Examples
        --------
        >>> import numpy as np
        >>> from kronsolve import kron
        >>> A, B = np.array([[2.0, 1.0], [0.0, 3.0]]), np.array([[1.0, 0.0], [1.0, 1.0]])
        >>> b = np.arange(4.0)
        >>> np.allclose(kron(A, B).solve(b), np.linalg.solve(np.kron(A, B), b))
        True
        """
        from scipy.linalg import lu_solve

        lus = self._lu()
        b = _as_array(b, "b")
        _check_solve_rhs(self.shape, b)
        dtype = np.result_type(b.dtype, *[lu.dtype for lu, _ in lus])
        if b.ndim == 1:
            X = b.reshape(self._rows)
            offset = 0
        else:
            X = b.reshape(b.shape[:-2] + self._rows + (b.shape[-1],))
            offset = b.ndim - 2
        X = X.astype(dtype, copy=True)
        for k, (lu, piv) in enumerate(lus):
            ax = offset + k
            Xk = np.moveaxis(X, ax, 0)
            shp = Xk.shape
            Y = lu_solve((lu, piv), Xk.reshape(shp[0], -1), check_finite=False)
            X = np.moveaxis(Y.reshape(shp), 0, ax)
        return np.ascontiguousarray(X).reshape(b.shape)

    def inv(self) -> KronProduct:
        """Inverse, as the lazy Kronecker product of the factor inverses."""
        invs = []
        for i, A in enumerate(self._square_factors("inv")):
            try:
                invs.append(np.linalg.inv(A))
            except np.linalg.LinAlgError:
                raise np.linalg.LinAlgError(
                    f"factor {i} (shape {A.shape}) is singular"
                ) from None
        return KronProduct(invs)

    def slogdet(self) -> tuple[Any, Any]:
        """Sign and log of the absolute determinant, as ``np.linalg.slogdet``.

        Uses ``det(A ⊗ B) = det(A)**m * det(B)**n`` for ``A`` n x n, ``B`` m x m.
        """
        facs = self._square_factors("slogdet")
        N = self.shape[0]
        sign = np.ones((), dtype=np.result_type(self.dtype, np.float64))
        logdet = 0.0
        for A in facs:
            s, ld = np.linalg.slogdet(A)
            p = N // A.shape[0]
            sign = sign * s**p
            logdet = logdet + p * ld
        if sign == 0:
            return sign, np.float64(-np.inf)
        return sign[()], np.float64(logdet)

    def det(self) -> Any:
        """Determinant (through :meth:`slogdet`; may overflow to inf as numbers do)."""
        sign, logdet = self.slogdet()
        with np.errstate(over="ignore"):  # overflows to inf, as np.linalg.det does
            return sign * np.exp(logdet)

    def trace(self) -> Any:
        """Trace: the product of the factor traces."""
        facs = self._square_factors("trace")
        t = np.ones((), dtype=self.dtype)
        for A in facs:
            t = t * np.trace(A)
        return t[()]

    def diagonal(self) -> np.ndarray:
        """Main diagonal (``np.diagonal`` of the dense matrix), without forming it."""
        facs = [_dense(A) for A in self.factors]
        if all(A.shape[0] == A.shape[1] for A in facs):
            out = np.diagonal(facs[0])
            for A in facs[1:]:
                out = np.kron(out, np.diagonal(A))
            return np.asarray(out, dtype=self.dtype)
        n = min(self.shape)
        idx = np.arange(n)
        rows = np.unravel_index(idx, self._rows)
        cols = np.unravel_index(idx, self._cols)
        out = np.ones(n, dtype=self.dtype)
        for A, r, c in zip(facs, rows, cols):
            out = out * A[r, c]
        return out

    def norm(self, ord: Any = None) -> Any:
        """Matrix norm: ``'fro'`` (default), ``2`` or ``'nuc'``.

        All three factor over Kronecker products (the singular values of
        ``A ⊗ B`` are the products of theirs).
        """
        if ord not in (None, "fro", 2, "nuc"):
            raise ValueError(f"ord must be None, 'fro', 2 or 'nuc', got {ord!r}")
        out = 1.0
        for A in self.factors:
            A = _dense(A)
            if A.size == 0:
                return np.float64(0.0)
            out = out * np.linalg.norm(A, "fro" if ord is None else ord)
        return np.float64(out) if not isinstance(out, np.floating) else out

    def eigvals(self) -> np.ndarray:
        """Eigenvalues, ``np.kron`` of the factor eigenvalues (in that order)."""
        facs = self._square_factors("eigvals")
        out = np.linalg.eigvals(facs[0])
        for A in facs[1:]:
            out = np.kron(out, np.linalg.eigvals(A))
        return out


def _align(left: Sequence[Any], lsizes: list[int], right: Sequence[Any], rsizes: list[int]):
    """Group adjacent factors so that both partitions of the shared dimension agree.

    ``lsizes`` are the column sizes of the left factors and ``rsizes`` the row
    sizes of the right ones; both multiply to the same total.  Returns lists of
    merged (``np.kron``-ed) factors of equal length that line up pairwise.
    """

    def cuts(sizes):
        out, c = set(), 1
        for s in sizes[:-1]:
            c *= s
            out.add(c)
        return out

    common = cuts(lsizes) & cuts(rsizes)
    if len(lsizes) == len(rsizes) and all(a == b for a, b in zip(lsizes, rsizes)):
        return list(left), list(right)

    def group(factors, sizes):
        groups, cur, c = [], None, 1
        for A, s in zip(factors, sizes):
            A = _dense(A)
            cur = A if cur is None else np.kron(cur, A)
            c *= s
            if c in common:
                groups.append(cur)
                cur = None
        groups.append(cur)
        return groups

    return group(left, lsizes), group(right, rsizes)


class KronProductSum(_KronOperator):
    """Lazy sum of Kronecker products ``K1 + K2 + ...`` of one shape.

    Made by adding :class:`KronProduct` objects (``kron(A, B) + kron(C, D)``); it
    supports ``@`` (one mode-product pass per term), ``.T``, ``.H``, scalar
    multiplication and :meth:`toarray`.

    Attributes
    ----------
    terms : tuple of KronProduct

    Examples
    --------
    >>> import numpy as np
    >>> from kronsolve import kron
    >>> A, B, C, D = (np.full((2, 2), float(k)) for k in range(1, 5))
    >>> S = kron(A, B) + kron(C, D)
    >>> np.array_equal(S.toarray(), np.kron(A, B) + np.kron(C, D))
    True
    >>> S @ np.ones(4)
    array([56., 56., 56., 56.])
    """

    __slots__ = ("terms", "shape", "dtype")

    def __init__(self, terms: Sequence[KronProduct]):
        terms = tuple(terms)
        if not terms:
            raise ValueError("KronProductSum needs at least one term, got none")
        for i, t in enumerate(terms):
            if not isinstance(t, KronProduct):
                raise TypeError(f"terms[{i}] must be a KronProduct, got {type(t).__name__}")
            if t.shape != terms[0].shape:
                raise ValueError(
                    f"terms[{i}] has shape {t.shape}, expected {terms[0].shape} as terms[0]"
                )
        self.terms = terms
        self.shape = terms[0].shape
        self.dtype = _result_dtype(*terms)

    def __repr__(self) -> str:
        return f"KronProductSum({len(self.terms)} terms, shape={self.shape}, dtype={self.dtype})"

    def _terms(self):
        return self.terms

    def _matmul_checked(self, x: np.ndarray) -> np.ndarray:
        out = self.terms[0]._matmul_checked(x)
        for t in self.terms[1:]:
            y = t._matmul_checked(x)
            out = out + y if np.result_type(out, y) != out.dtype else np.add(out, y, out=out)
        return out

    def _matmul_operator(self, other: _KronOperator):
        if self.shape[1] != other.shape[0]:
            raise ValueError(
                f"matmul: operand shapes {self.shape} and {other.shape} do not line up"
            )
        terms = []
        for t in self.terms:
            r = t @ other
            terms.extend(r._terms())
        return KronProductSum(terms)

    @property
    def T(self) -> KronProductSum:
        """Transpose (lazy)."""
        return KronProductSum([t.T for t in self.terms])

    def conjugate(self) -> KronProductSum:
        """Complex conjugate (lazy)."""
        return KronProductSum([t.conjugate() for t in self.terms])

    def __mul__(self, c: Any):
        if not _is_scalar(c):
            return NotImplemented
        return KronProductSum([t * c for t in self.terms])

    def toarray(self, *, max_bytes: int | None = None) -> np.ndarray:
        """Dense matrix (refused above the dense-size limit, see :func:`set_dense_limit`)."""
        _check_dense_size(self.shape, self.dtype, max_bytes)
        out = np.zeros(self.shape, dtype=self.dtype)
        for t in self.terms:
            out += t.toarray(max_bytes=max_bytes)
        return out

    def trace(self) -> Any:
        """Trace: the sum of the terms' traces."""
        return sum(t.trace() for t in self.terms[1:]) + self.terms[0].trace()


def kron(*factors: Any) -> KronProduct:
    """Lazy Kronecker product of one or more matrices, in ``np.kron`` order.

    ``kron(A1, A2, ..., Ad)`` behaves like ``np.kron(np.kron(A1, A2), ...)`` but
    stores only the factors: products with vectors and blocks of vectors go
    through mode products (see :func:`multi_mode_product`) at a cost of
    ``O(N * sum(n_k))`` instead of ``O(N**2)`` flops and no extra memory.

    Factors (or the ``x`` of ``K @ x``) may be PyTorch, CuPy or Dask arrays: the
    product is then of that kind, with autograd for PyTorch and a lazy graph for
    Dask.  NumPy arrays mixed with one such library are converted to it; two
    different libraries raise ``TypeError``.

    Parameters
    ----------
    *factors : 2-D ndarrays, scipy.sparse matrices or KronProduct
        Any shapes, rectangular included.  Nested ``KronProduct`` arguments are
        flattened: ``kron(kron(A, B), C)`` has three factors.

    Returns
    -------
    KronProduct

    Raises
    ------
    ValueError
        No factor, or a factor that is not 2-D.
    TypeError
        A factor with a non-numeric dtype (object, strings...).

    Examples
    --------
    >>> import numpy as np
    >>> from kronsolve import kron
    >>> rng = np.random.default_rng(0)
    >>> A1, A2, A3 = (rng.standard_normal((4, 4)) for _ in range(3))
    >>> x = rng.standard_normal(64)
    >>> K = kron(A1, A2, A3)
    >>> np.allclose(K @ x, np.kron(np.kron(A1, A2), A3) @ x)
    True
    >>> len(kron(kron(A1, A2), A3).factors)
    3
    """
    if len(factors) == 1 and isinstance(factors[0], list | tuple):
        raise TypeError(
            "kron takes the factors as separate arguments: kron(A, B, C), not kron([A, B, C])"
        )
    if not factors:
        raise ValueError("kron needs at least one factor, got none")
    flat = _flatten_factors(factors)
    if any(type(A) is not np.ndarray and _is_foreign(A) for A in flat):  # PyTorch, CuPy...
        from ._generic import kron as _generic_kron

        return _generic_kron(*flat)
    return KronProduct([_as_matrix(A, f"factors[{i}]") for i, A in enumerate(flat)])


def _flatten_factors(factors: Sequence[Any]) -> list[Any]:
    """Factors with nested ``KronProduct`` arguments expanded (``kron(kron(A, B), C)``)."""
    flat: list[Any] = []
    for i, A in enumerate(factors):
        if isinstance(A, KronProduct):
            flat.extend(A.factors)
        elif isinstance(A, _KronOperator):
            raise TypeError(f"factors[{i}] is a {type(A).__name__}, which has no Kronecker factors")
        else:
            flat.append(A)
    return flat

