"""``KronProduct``: a lazy Kronecker product that behaves like its dense matrix."""

from __future__ import annotations

from collections.abc import Sequence
from math import prod
from typing import Any

import numpy as np

from . import _fused
from ._backends import NUMPY, backend_of, reference_of
from ._backends.numpy import _PACKED as _PACKED_FACTORS
from ._kronstack import KronStack
from ._layout import as_matrix, as_tensor
from ._shifted import ShiftedKronProduct
from ._spectral import KronEigh, eigh_factors
from ._validation import (
    _as_array,
    _check_nbytes,
    _check_rhs,
    _check_solve_rhs,
    _is_scalar,
    _is_sparse,
)

__all__ = ["kron", "kron_matvec", "KronProduct", "KronProductSum", "set_dense_limit"]

_DENSE_LIMIT = [1 << 30]
# keys in an operator's plans memo: the fused plan of one vector, its packed factors
_FLAT = "fused plan of one vector"
_PACKED = _PACKED_FACTORS


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
    nbytes = _check_nbytes(nbytes)
    old, _DENSE_LIMIT[0] = _DENSE_LIMIT[0], nbytes
    return old


def _check_dense_size(shape: tuple[int, int], itemsize: int, dtype: Any,
                      max_bytes: int | None) -> None:
    limit = _DENSE_LIMIT[0] if max_bytes is None else _check_nbytes(max_bytes, "max_bytes")
    nbytes = shape[0] * shape[1] * itemsize
    if nbytes > limit:
        raise MemoryError(
            f"the dense {shape[0]} x {shape[1]} {dtype} matrix would take "
            f"{nbytes / 2**30:.3g} GiB, above the limit of {limit / 2**30:.3g} GiB; pass "
            "max_bytes=... to toarray() or raise the limit with kronsolve.set_dense_limit(nbytes)"
        )


class _KronOperator:
    """Behaviour shared by the lazy operators: products, arithmetic, SciPy protocol.

    A subclass sets ``shape``, ``dtype``, ``_backend`` (the backend of its
    matrices) and ``_ref`` (one of its matrices when they are not NumPy's, for
    the device; else None), and implements ``_apply(be, x, like)`` for a checked
    right-hand side ``x`` of backend ``be``.
    """

    # Make ``ndarray @ K`` and ``ndarray + K`` defer to our reflected methods
    # instead of densifying K through ``__array__``.
    __array_ufunc__ = None
    ndim = 2
    __slots__ = ()

    shape: tuple[int, int]
    dtype: Any
    _backend: Any
    _ref: Any

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        if copy is False:
            raise ValueError("a lazy Kronecker operator cannot be converted without a copy")
        A = np.asarray(self._backend.to_host(self.toarray()))
        return A if dtype is None else A.astype(dtype, copy=False)

    @property
    def size(self) -> int:
        return self.shape[0] * self.shape[1]

    @property
    def backend(self) -> str:
        """Name of the array library of the matrices (``"numpy"``, ``"torch"``...)."""
        return self._backend.name

    def _itemsize(self) -> int:
        return self._backend.numpy_dtype(self.dtype).itemsize

    # --- products --------------------------------------------------------------
    def _rhs(self, x: Any, name: str = "x") -> tuple[Any, Any, Any]:
        """``x`` in the backend of this call (the mixing rule), with that backend."""
        if type(x) is np.ndarray and self._backend is NUMPY:
            return x, NUMPY, None
        if _is_sparse(x):
            x = x.toarray()
        be = backend_of(x, self._ref)
        like = reference_of(x, self._ref)
        return be.tensor(x, name, like), be, like

    def __matmul__(self, x: Any) -> Any:
        if type(x) is np.ndarray and self._backend is NUMPY:  # the fast path
            _check_rhs(self.shape, _as_array(x, "x"))
            return self._apply(NUMPY, x, None)
        if isinstance(x, _KronOperator):
            return self._matmul_operator(x)
        x, be, like = self._rhs(x)
        _check_rhs(self.shape, x)
        return self._apply(be, x, like)

    def __rmatmul__(self, x: Any) -> Any:
        x, be, like = self._rhs(x)
        if x.ndim == 0:
            raise ValueError("matmul: x must have at least one dimension, got a 0-d array")
        T = self.T
        if x.ndim == 1:
            _check_rhs(T.shape, x)
            return T._apply(be, x, like)
        # x @ K == (K.T @ x^T)^T on the last two axes
        xt = be.swapaxes(x, -1, -2)
        _check_rhs(T.shape, xt)
        return be.swapaxes(T._apply(be, xt, like), -1, -2)

    def _apply(self, be: Any, x: Any, like: Any) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    def _matmul_operator(self, other: _KronOperator) -> Any:
        if self.shape[1] != other.shape[0]:
            raise ValueError(
                f"matmul: operand shapes {self.shape} and {other.shape} do not line up"
            )
        terms = []
        for t in self._terms():
            for u in other._terms():
                terms.append(t._product_of(u))
        return terms[0] if len(terms) == 1 else KronProductSum(terms)

    # scipy.sparse.linalg.aslinearoperator duck-typing
    def matvec(self, x: Any) -> Any:
        """``self @ x`` for a vector ``x`` (SciPy ``LinearOperator`` protocol)."""
        if getattr(x, "ndim", None) == 2 and x.shape[1] == 1:
            return (self @ x.reshape(-1)).reshape(-1, 1)
        return self @ x

    def rmatvec(self, x: Any) -> Any:
        """``self.H @ x`` (SciPy ``LinearOperator`` protocol)."""
        return self.H @ x

    def matmat(self, X: Any) -> Any:
        """``self @ X`` for a 2-D block ``X`` (one contraction, not a loop)."""
        return self @ X

    def rmatmat(self, X: Any) -> Any:
        """``self.H @ X`` for a 2-D block ``X``."""
        return self.H @ X

    def aslinearoperator(self) -> Any:
        """Return a ``scipy.sparse.linalg.LinearOperator`` for this operator (NumPy).

        Its ``_matmat`` is one contraction (not a loop over columns), and its
        adjoint is lazy too, so it is usable in ``cg``, ``gmres``, ``eigsh``...
        """
        from ._linop import _KronLinearOperator

        return _KronLinearOperator(self)

    # --- arithmetic ------------------------------------------------------------
    def _terms(self) -> tuple:  # pragma: no cover - overridden
        raise NotImplementedError

    def __add__(self, other: Any) -> Any:
        if isinstance(other, _KronOperator):
            if other.shape != self.shape:
                raise ValueError(
                    f"cannot add operators of shapes {self.shape} and {other.shape}"
                )
            return KronProductSum(list(self._terms()) + list(other._terms()))
        return NotImplemented

    def __radd__(self, other: Any) -> Any:
        return NotImplemented

    def __sub__(self, other: Any) -> Any:
        if isinstance(other, _KronOperator):
            return self + (-other)
        return NotImplemented

    def __neg__(self) -> Any:
        return self * -1

    def __rmul__(self, c: Any) -> Any:
        return self * c

    def __mul__(self, c: Any) -> Any:
        if not _is_scalar(c):
            return NotImplemented
        return self._map(lambda A, first: A * c if first else A)

    def __truediv__(self, c: Any) -> Any:
        if not _is_scalar(c):
            return NotImplemented
        # dividing the factor keeps NumPy's promotion (float32 / 2 stays float32)
        return self._map(lambda A, first: A / c if first else A)

    def _map(self, f: Any) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    @property
    def T(self) -> Any:
        """Transpose (lazy)."""
        return self._map(lambda A, first: A.T, all_terms=True)

    def conjugate(self) -> Any:
        """Complex conjugate (lazy)."""
        if not self._backend.is_complex(self.dtype):
            return self
        be = self._backend
        return self._map(lambda A, first: A.conj() if _is_sparse(A) else be.conj(A),
                         all_terms=True)

    def conj(self) -> Any:
        """Complex conjugate (lazy)."""
        return self.conjugate()

    @property
    def H(self) -> Any:
        """Conjugate transpose (lazy)."""
        return self.T.conjugate()

    # --- host algebra ------------------------------------------------------
    def _host(self, mats: Sequence[Any]) -> tuple[Any, list]:
        """The backend of the dense algebra of ``mats`` (Dask: the host) and the matrices."""
        be = self._backend
        if be.lazy:
            return be.host, [be.to_host(A) for A in mats]
        return be, list(mats)

    def _out(self, a: Any) -> Any:
        """An array result of the host algebra, back in this operator's library."""
        be = self._backend
        return be.from_host(a) if be.lazy else a


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
    dtype : dtype
        Result type of the factors (of their array library).

    Backends: the factors and the ``x`` of ``K @ x`` may be NumPy arrays (or
    scipy.sparse factors), PyTorch, CuPy or Dask arrays.  Every method serves
    NumPy, PyTorch and CuPy; with Dask, products are lazy graphs, the dense
    algebra of the factors (``trace``, ``slogdet``, ``norm``, ``inv``,
    ``eigvals``, ``diagonal``) runs on the host, and :meth:`solve` applies the
    factor inverses (LU factorizations on the host) lazily.

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

    __slots__ = ("factors", "shape", "dtype", "_rows", "_cols", "_backend", "_ref",
                 "_prepared", "_converted", "_lu_cache")

    def __init__(self, factors: Sequence[Any], *, _backend: Any = None):
        factors = tuple(factors)
        if not factors:
            raise ValueError("kron needs at least one factor, got none")
        be = backend_of(*factors) if _backend is None else _backend
        self._backend = be
        self._ref = reference_of(*factors)
        if be is not NUMPY:
            factors = tuple(be.matrix(A, f"factors[{i}]", self._ref)
                            for i, A in enumerate(factors))
        self.factors = factors
        self._rows = tuple(int(A.shape[0]) for A in factors)
        self._cols = tuple(int(A.shape[1]) for A in factors)
        self.shape = (prod(self._rows), prod(self._cols))
        self.dtype = be.result_type(*factors)
        self._prepared: dict = {}
        self._converted: dict = {}
        self._lu_cache = None

    def __repr__(self) -> str:
        shapes = " ⊗ ".join(f"{r}x{c}" for r, c in zip(self._rows, self._cols))
        lib = "" if self._backend is NUMPY else f", backend={self._backend.name}"
        return f"KronProduct({shapes}, shape={self.shape}, dtype={self.dtype}{lib})"

    def _terms(self) -> tuple:
        return (self,)

    def _map(self, f: Any, all_terms: bool = False) -> KronProduct:
        return KronProduct([f(A, i == 0) for i, A in enumerate(self.factors)],
                           _backend=self._backend)

    # --- products --------------------------------------------------------------
    def _factors_in(self, be: Any, like: Any) -> tuple:
        """The factors as arrays of ``be`` (converted once per library and device)."""
        if be is self._backend:
            return self.factors
        key = (be.name, str(getattr(like, "device", None)))
        conv = self._converted.get(key)
        if conv is None:
            src = self._backend
            conv = tuple(be.from_host(src.to_host(src.dense(A)), like) for A in self.factors)
            self._converted[key] = conv
        return conv

    def _apply(self, be: Any, x: Any, like: Any) -> Any:
        key = x.dtype if be is NUMPY else (be.name, str(getattr(like, "device", None)),
                                          str(x.dtype))
        prep = self._prepared.get(key)
        if prep is None:
            facs = self._factors_in(be, like)
            dtype = be.result_type(x, *facs)
            prep = self._prepared[key] = (dtype,) + be.prepare_factors(
                facs, dtype, self.shape[1]) + ({},)
        dtype, mats, cols, trans, plans = prep
        if be is NUMPY and x.ndim == 1 and x.dtype == dtype and x.flags.c_contiguous:
            fp = plans.get(_FLAT)
            if fp is not None:  # one vector on the fused kernel: straight there
                return _fused.run(x, plans[_PACKED], fp)
        X, b = as_tensor(x if x.dtype == dtype else be.astype(x, dtype), cols)
        d = len(mats)
        Y = be.modeprod(X, mats, range(b, b + d), trans=trans, plans=plans)
        if be is NUMPY and x.ndim == 1:
            fp = plans.get(X.shape)
            if type(fp) is _fused.FusedPlan and fp.tmp == 0 and _PACKED in plans:
                plans[_FLAT] = fp
        return as_matrix(Y, b, d, self.shape[0])

    def _product_of(self, other: KronProduct) -> KronProduct:
        be = backend_of(self._ref, other._ref)
        like = reference_of(self._ref, other._ref)
        left, right = _align(be, self._factors_in(be, like), list(self._cols),
                             other._factors_in(be, like), list(other._rows))
        return KronProduct([A @ B for A, B in zip(left, right)], _backend=be)

    def toarray(self, *, max_bytes: int | None = None) -> Any:
        """Dense matrix (``np.kron`` of the factors), in the factors' library.

        Refuses with ``MemoryError`` above the dense-size limit (1 GiB by default,
        see :func:`set_dense_limit`) unless ``max_bytes`` raises it for this call.
        """
        _check_dense_size(self.shape, self._itemsize(), self.dtype, max_bytes)
        be = self._backend
        out = be.dense(self.factors[0])
        for A in self.factors[1:]:
            out = be.kron(out, be.dense(A))
        return be.astype(out, self.dtype)

    # --- structured algebra ----------------------------------------------------
    def _square(self, what: str) -> tuple[Any, list]:
        for i, A in enumerate(self.factors):
            if A.shape[0] != A.shape[1]:
                raise ValueError(
                    f"{what} needs square factors, but factor {i} has shape {tuple(A.shape)}"
                )
        return self._host(self.factors)

    def _lu(self) -> list:
        if self._lu_cache is None:
            hb, facs = self._square("solve")
            lus = []
            for i, A in enumerate(facs):
                lu = hb.lu_factor(A)
                if lu is None:
                    raise np.linalg.LinAlgError(
                        f"factor {i} (shape {tuple(A.shape)}) is singular: its LU "
                        "factorization has a zero pivot"
                    )
                lus.append(lu)
            self._lu_cache = lus
        return self._lu_cache

    def solve(self, b: Any) -> Any:
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
        b, be, like = self._rhs(b, "b")
        if be.lazy:
            # a task graph: the factor inverses (LU on the host) applied mode by mode
            _check_solve_rhs(self.shape, b)
            return self.inv()._apply(be, b, like)
        lus = self._lu()
        if be is not self._backend:
            K = KronProduct(self._factors_in(be, like), _backend=be)
            return K.solve(b)
        _check_solve_rhs(self.shape, b)
        dtype = be.result_type(b.dtype, *[be.lu_dtype(lu) for lu in lus])
        X, off = as_tensor(be.astype(b, dtype), self._rows)
        xp = be.xp
        for k, lu in enumerate(lus):
            Xk = xp.moveaxis(X, off + k, 0)
            shp = tuple(Xk.shape)
            Y = be.lu_solve(lu, xp.reshape(Xk, (shp[0], -1)))
            X = xp.moveaxis(xp.reshape(Y, shp), 0, off + k)
        return xp.reshape(X, tuple(b.shape)) if be is not NUMPY else \
            np.ascontiguousarray(X).reshape(b.shape)

    def eigh(self) -> KronEigh:
        """Eigendecomposition of a Kronecker product of symmetric (Hermitian) factors.

        One ``eigh`` per distinct factor; the eigenvalues stay factored (products
        of the factors', a dense vector on request) and the eigenvectors form
        the lazy ``Q1 ⊗ ... ⊗ Qd``.  See :class:`KronEigh`.

        Raises
        ------
        ValueError
            A factor that is not square or not symmetric (Hermitian).
        """
        hb, facs = self._square("eigh")
        lams, Qs = eigh_factors(hb, facs, "eigh()")
        be = self._backend
        Qs = [self._out(Q) for Q in Qs] if be.lazy else Qs
        lams = [self._out(lam) for lam in lams] if be.lazy else lams
        return KronEigh(be, lams, Qs, "product", KronProduct(Qs, _backend=be))

    def shifted(self, shift: Any, diag: Any = None) -> ShiftedKronProduct:
        """The operator ``K + shift·I`` for symmetric (Hermitian) factors.

        Solves, log-determinants, quadratic forms and samples of a Gaussian
        process on a grid (covariance ``K``, noise variance ``shift``) through
        one ``eigh`` per distinct factor; see :class:`ShiftedKronProduct`.
        With ``diag=[d1, ..., dd]`` (positive vectors, one per factor) the
        operator is ``K + shift·(diag(d1) ⊗ ... ⊗ diag(dd))``, exactly
        (heteroscedastic noise of Kronecker form): the factors are scaled to
        ``diag(d_k)^(-1/2) A_k diag(d_k)^(-1/2)`` before their ``eigh``.

        Raises
        ------
        ValueError
            A factor that is not square or not symmetric (Hermitian).

        Examples
        --------
        >>> import numpy as np
        >>> from kronsolve import kron
        >>> C = np.array([[2.0, 1.0], [1.0, 2.0]])
        >>> S = kron(C, C).shifted(0.5)
        >>> np.allclose(S @ np.ones(4), (np.kron(C, C) + 0.5 * np.eye(4)) @ np.ones(4))
        True
        """
        return ShiftedKronProduct(self, shift, diag)

    def inv(self) -> KronProduct:
        """Inverse, as the lazy Kronecker product of the factor inverses."""
        hb, facs = self._square("inv")
        invs = []
        for i, A in enumerate(facs):
            W = hb.inv(hb.dense(A))
            if W is None:
                raise np.linalg.LinAlgError(f"factor {i} (shape {tuple(A.shape)}) is singular")
            invs.append(self._out(W))
        return KronProduct(invs, _backend=self._backend)

    def slogdet(self) -> tuple[Any, Any]:
        """Sign and log of the absolute determinant, as ``np.linalg.slogdet``.

        Uses ``det(A ⊗ B) = det(A)**m * det(B)**n`` for ``A`` n x n, ``B`` m x m.
        """
        hb, facs = self._square("slogdet")
        N = self.shape[0]
        if hb is NUMPY:
            sign: Any = np.ones((), dtype=np.result_type(self._backend.numpy_dtype(self.dtype),
                                                          np.float64))
            logdet: Any = 0.0
        else:
            sign, logdet = 1, 0.0
        for A in facs:
            s, ld = hb.slogdet(A)
            p = N // A.shape[0]
            sign = sign * s**p
            logdet = logdet + p * ld
        if hb is NUMPY:
            if sign == 0:
                return sign[()], np.float64(-np.inf)
            return sign[()], np.float64(logdet)
        return sign, logdet

    def det(self) -> Any:
        """Determinant (through :meth:`slogdet`; may overflow to inf as numbers do)."""
        sign, logdet = self.slogdet()
        if isinstance(logdet, np.generic):
            with np.errstate(over="ignore"):  # overflows to inf, as np.linalg.det does
                return sign * np.exp(logdet)
        return sign * self._backend.xp.exp(logdet)

    def trace(self) -> Any:
        """Trace: the product of the factor traces."""
        hb, facs = self._square("trace")
        t = hb.trace(facs[0])
        for A in facs[1:]:
            t = t * hb.trace(A)
        return t[()] if isinstance(t, np.ndarray) else t

    def diagonal(self) -> Any:
        """Main diagonal (``np.diagonal`` of the dense matrix), without forming it."""
        hb, facs = self._host(self.factors)
        if all(A.shape[0] == A.shape[1] for A in facs):
            out = hb.diagonal(facs[0])
            for A in facs[1:]:
                out = hb.kron(out, hb.diagonal(A))
            return self._out(hb.astype(out, hb.result_type(*facs)))
        n = min(self.shape)
        idx = np.arange(n)
        rows = np.unravel_index(idx, self._rows)
        cols = np.unravel_index(idx, self._cols)
        out = None
        for A, r, c in zip(facs, rows, cols):
            v = hb.take2(A, r, c)
            out = v if out is None else out * v
        return self._out(hb.astype(out, hb.result_type(*facs)))

    def norm(self, ord: Any = None) -> Any:
        """Matrix norm: ``'fro'`` (default), ``2`` or ``'nuc'``.

        All three factor over Kronecker products (the singular values of
        ``A ⊗ B`` are the products of theirs).
        """
        if ord not in (None, "fro", 2, "nuc"):
            raise ValueError(f"ord must be None, 'fro', 2 or 'nuc', got {ord!r}")
        hb, facs = self._host(self.factors)
        if any(prod(A.shape) == 0 for A in facs):
            return np.float64(0.0)
        out = None
        for A in facs:
            v = hb.matrix_norm(hb.dense(A), "fro" if ord is None else ord)
            out = v if out is None else out * v
        return np.float64(out) if hb is NUMPY else out

    def eigvals(self) -> Any:
        """Eigenvalues, ``np.kron`` of the factor eigenvalues (in that order).

        Real when every factor is symmetric or Hermitian (each such factor's
        eigenvalues in ascending order, from ``eigvalsh``).

        Examples
        --------
        >>> import numpy as np
        >>> from kronsolve import kron
        >>> S = np.array([[2.0, 1.0], [1.0, 2.0]])
        >>> kron(S, S).eigvals()
        array([1., 3., 3., 9.])
        """
        hb, facs = self._square("eigvals")

        def vals(A: Any) -> Any:
            eps = hb.eps(hb.work_dtype(A.dtype, name="factor"))
            return hb.eigvalsh(A) if hb.is_hermitian(A, eps) else hb.eigvals(A)

        out = vals(facs[0])
        for A in facs[1:]:
            out = hb.kron(out, vals(A))
        return self._out(out)


def _align(be: Any, left: Sequence[Any], lsizes: list[int], right: Sequence[Any],
           rsizes: list[int]) -> tuple[list, list]:
    """Group adjacent factors so that both partitions of the shared dimension agree.

    ``lsizes`` are the column sizes of the left factors and ``rsizes`` the row
    sizes of the right ones; both multiply to the same total.  Returns lists of
    merged (Kronecker-multiplied) factors of equal length that line up pairwise.
    Factors of size 1 join the group before them (or, leading, the next one).
    """
    if lsizes == rsizes:
        return list(left), list(right)

    def cuts(sizes: list[int]) -> set:
        out, c = set(), 1
        for s in sizes[:-1]:
            c *= s
            out.add(c)
        return out

    common = cuts(lsizes) & cuts(rsizes)

    def group(factors: Sequence[Any], sizes: list[int]) -> list:
        groups: list = []
        cur, c, done = None, 1, set()
        for A, s in zip(factors, sizes):
            A = be.dense(A)
            cur = A if cur is None else be.kron(cur, A)
            c *= s
            if c in common and c not in done:
                done.add(c)
                groups.append(cur)
                cur = None
        if cur is not None:
            groups.append(cur)
        return groups

    g1, g2 = group(left, lsizes), group(right, rsizes)
    if len(g1) != len(g2):  # trailing factors of size 1 on one side only
        g1 = g1[:-2] + [be.kron(g1[-2], g1[-1])] if len(g1) > len(g2) else g1
        g2 = g2[:-2] + [be.kron(g2[-2], g2[-1])] if len(g2) > len(g1) else g2
    return g1, g2


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

    __slots__ = ("terms", "shape", "dtype", "_backend", "_ref")

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
        self._backend = backend_of(*[t._ref for t in terms])
        self._ref = reference_of(*[t._ref for t in terms])
        if self._backend is NUMPY:
            self.dtype = np.result_type(*[t.dtype for t in terms])
        else:
            self.dtype = self._backend.result_type(
                *[A for t in terms for A in t._factors_in(self._backend, self._ref)])

    def __repr__(self) -> str:
        return f"KronProductSum({len(self.terms)} terms, shape={self.shape}, dtype={self.dtype})"

    def _terms(self) -> tuple:
        return self.terms

    def _map(self, f: Any, all_terms: bool = False) -> KronProductSum:
        return KronProductSum([t._map(f) for t in self.terms])

    def _apply(self, be: Any, x: Any, like: Any) -> Any:
        out = self.terms[0]._apply(be, x, like)
        for t in self.terms[1:]:
            y = t._apply(be, x, like)
            if be is NUMPY and np.result_type(out, y) == out.dtype:
                np.add(out, y, out=out)
            else:
                out = out + y
        return out

    def toarray(self, *, max_bytes: int | None = None) -> Any:
        """Dense matrix (refused above the dense-size limit, see :func:`set_dense_limit`)."""
        _check_dense_size(self.shape, self._itemsize(), self.dtype, max_bytes)
        out = None
        for t in self.terms:
            D = t.toarray(max_bytes=max_bytes)
            out = D if out is None else out + D
        return self._backend.astype(out, self.dtype)

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
        flattened: ``kron(kron(A, B), C)`` has three factors.  Stacks of
        matrices ``(..., m_k, n_k)`` (per-item factors, the leading dimensions
        broadcasting) give a :class:`KronStack`: one Kronecker product per
        item, applied as NumPy's stacked ``matmul`` applies a stack of matrices.

    Returns
    -------
    KronProduct or KronStack

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
    if any(getattr(A, "ndim", 2) > 2 and not isinstance(A, _KronOperator) for A in factors):
        return _kron_stack(factors)
    flat: list[Any] = []
    for i, A in enumerate(factors):
        if isinstance(A, KronProduct):
            flat.extend(A.factors)
        elif isinstance(A, _KronOperator):
            raise TypeError(f"factors[{i}] is a {type(A).__name__}, which has no Kronecker factors")
        else:
            flat.append(A)
    be = backend_of(*flat)
    like = reference_of(*flat)
    return KronProduct([be.matrix(A, f"factors[{i}]", like) for i, A in enumerate(flat)],
                       _backend=be)


def _kron_stack(factors: tuple) -> KronStack:
    """``kron`` of per-item factors (stacks): a :class:`KronStack`."""
    be = backend_of(*factors)
    like = reference_of(*factors)
    mats = []
    for i, A in enumerate(factors):
        if isinstance(A, _KronOperator):
            raise TypeError(f"factors[{i}] is a {type(A).__name__}; stacks of factors "
                            "combine with arrays only")
        A = be.tensor(A, f"factors[{i}]", like) if be is not NUMPY else _as_array(
            A, f"factors[{i}]")
        if A.ndim < 2:
            raise ValueError(f"factors[{i}] must be a matrix or a stack of matrices, got "
                             f"shape {tuple(A.shape)}")
        mats.append(A)
    return KronStack(mats, be)


def kron_matvec(factors: Sequence[Any], x: Any) -> Any:
    """Compute ``np.kron(A1, ..., Ad) @ x`` without forming the Kronecker product.

    PyTorch, CuPy and Dask inputs give a result of their kind (see :func:`kron`).

    Parameters
    ----------
    factors : sequence of (m_k, n_k) arrays or scipy.sparse matrices
        The Kronecker factors, in ``np.kron`` order.
    x : (N,) or (N, k) array
        Vector or block of ``k`` column vectors, ``N = n_1 * ... * n_d``.

    Returns
    -------
    y : (M,) or (M, k) array
        ``M = m_1 * ... * m_d``.

    Examples
    --------
    >>> import numpy as np
    >>> from kronsolve import kron_matvec
    >>> A, B = np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[0.0, 1.0], [1.0, 0.0]])
    >>> x = np.arange(4.0)
    >>> kron_matvec([A, B], x)
    array([ 7.,  4., 15.,  8.])
    >>> np.kron(A, B) @ x
    array([ 7.,  4., 15.,  8.])
    """
    if len(factors) == 0:
        raise ValueError("factors must hold at least one matrix, got an empty sequence")
    K = kron(*factors)
    if isinstance(K, KronStack):  # per-item factors: stacked matmul's conventions
        return K @ x
    x, be, like = K._rhs(x)
    if x.ndim not in (1, 2):
        raise ValueError(f"x must have shape (N,) or (N, k), got shape {tuple(x.shape)}")
    return K @ x
