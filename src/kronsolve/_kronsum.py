"""``KronSum``: a lazy Kronecker sum ``A1 ⊕ A2 ⊕ ... ⊕ Ad``."""

from __future__ import annotations

from collections.abc import Sequence
from math import prod
from typing import Any

import numpy as np

from ._backends import backend_of, reference_of
from ._kronproduct import KronProduct, _check_dense_size, _KronOperator
from ._layout import as_matrix, as_tensor, batch_as_columns, columns_as_batch
from ._solvers import KronSumSolver
from ._spectral import KronEigh, eigh_factors
from ._validation import _check_solve_rhs

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
    dtype : dtype
        Result type of the factors (of their array library).

    Backends: NumPy (dense or scipy.sparse factors), PyTorch, CuPy and Dask
    serve every method; with Dask, products and solves are lazy graphs and the
    dense algebra of the factors runs on the host.

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

    __slots__ = ("mats", "shape", "dtype", "_ns", "_backend", "_ref", "_cast_cache", "_solver")

    def __init__(self, mats: Sequence[Any], *, _backend: Any = None):
        mats = tuple(mats)
        if not mats:
            raise ValueError("kronsum needs at least one matrix, got none")
        be = backend_of(*mats) if _backend is None else _backend
        self._ref = reference_of(*mats)
        mats = tuple(be.matrix(A, f"mats[{i}]", self._ref) for i, A in enumerate(mats))
        for i, A in enumerate(mats):
            if A.shape[0] != A.shape[1]:
                raise ValueError(f"mats[{i}] must be square, got shape "
                                 f"{tuple(A.shape)}")
        self._backend = be
        self.mats = mats
        self._ns = tuple(int(A.shape[0]) for A in mats)
        N = prod(self._ns)
        self.shape = (N, N)
        self.dtype = be.result_type(*mats)
        self._cast_cache: dict = {}
        self._solver: KronSumSolver | None = None

    def __repr__(self) -> str:
        shapes = " ⊕ ".join(f"{n}x{n}" for n in self._ns)
        lib = "" if self._ref is None else f", backend={self._backend.name}"
        return f"KronSum({shapes}, shape={self.shape}, dtype={self.dtype}{lib})"

    # --- products --------------------------------------------------------------
    def _mats_in(self, be: Any, x: Any, like: Any) -> tuple[Any, tuple]:
        """The factors as ``be`` arrays of the result dtype with ``x`` (cached)."""
        key = x.dtype if like is None else (be.name, str(getattr(like, "device", None)),
                                             str(x.dtype))
        f = self._cast_cache.get(key)
        if f is None:
            src = self._backend
            mats = self.mats if be is src else tuple(
                be.from_host(src.to_host(src.dense(A)), like) for A in self.mats)
            dtype = be.result_type(x, *mats)
            f = self._cast_cache[key] = (dtype, tuple(be.astype(A, dtype) for A in mats))
        return f

    def _apply(self, be: Any, x: Any, like: Any) -> Any:
        dtype, mats = self._mats_in(be, x, like)
        X, b = as_tensor(be.astype(x, dtype), self._ns)
        Y = be.modesum(X, list(mats), list(range(b, b + len(mats))))
        return as_matrix(Y, b, len(mats), self.shape[0])

    def _terms(self) -> tuple[KronProduct, ...]:
        be = self._backend
        eyes = [be.eye(n, self.dtype, like=self._ref) for n in self._ns]
        terms = []
        for k, A in enumerate(self.mats):
            f = list(eyes)
            f[k] = A
            terms.append(KronProduct(f, _backend=be))
        return tuple(terms)

    # --- structure -------------------------------------------------------------
    def _map(self, f: Any, all_terms: bool = False) -> KronSum:
        # c (A1 ⊕ A2) = (c A1) ⊕ (c A2): every factor is a "first" one
        return KronSum([f(A, True) for A in self.mats], _backend=self._backend)

    def __add__(self, other: Any) -> Any:
        if isinstance(other, KronSum) and other._ns == self._ns:
            be = backend_of(self._ref, other._ref)
            if be is self._backend and be is other._backend:
                return KronSum([A + B for A, B in zip(self.mats, other.mats)], _backend=be)
        return super().__add__(other)

    def toarray(self, *, max_bytes: int | None = None) -> Any:
        """Dense matrix ``Σ_k I ⊗ ... ⊗ A_k ⊗ ... ⊗ I`` (``np.kron`` ordering).

        Refused with ``MemoryError`` above the dense-size limit (see
        :func:`set_dense_limit`) unless ``max_bytes`` raises it for this call.
        """
        _check_dense_size(self.shape, self._itemsize(), self.dtype, max_bytes)
        out = None
        for t in self._terms():
            D = t.toarray(max_bytes=max_bytes)
            out = D if out is None else out + D
        return out

    def _sum_over_modes(self, vecs: list) -> Any:
        """``v1[i1] + ... + vd[id]`` for all multi-indices, flat in C order."""
        be = self._backend
        d = len(vecs)
        acc = None
        for k, v in enumerate(vecs):
            shape = [1] * d
            shape[k] = self._ns[k]
            t = be.xp.reshape(v, tuple(shape))
            acc = t if acc is None else acc + t
        return be.xp.reshape(acc, (-1,))

    def diagonal(self) -> Any:
        """Main diagonal, without forming the matrix."""
        hb, mats = self._host(self.mats)
        diags = [hb.astype(hb.diagonal(A), hb.result_type(*mats)) for A in mats]
        return self._sum_over_modes([self._out(v) for v in diags])

    def trace(self) -> Any:
        """Trace: ``Σ_k tr(A_k) · N / n_k``."""
        hb, mats = self._host(self.mats)
        N = self.shape[0]
        t = None
        for A, n in zip(mats, self._ns):
            v = hb.trace(A) * (N // n)
            t = v if t is None else t + v
        return t[()] if isinstance(t, np.ndarray) else t

    # --- solves ----------------------------------------------------------------
    def _get_solver(self) -> KronSumSolver:
        if self._solver is None:
            self._solver = KronSumSolver(list(self.mats))
        return self._solver

    def eigvals(self) -> Any:
        """All ``N`` eigenvalues, in ``np.kron`` order: ``λ1[i1] + ... + λd[id]``.

        Real (ascending within each factor) when every factor is symmetric or
        Hermitian.
        """
        return self._sum_over_modes(self._get_solver().eigenvalues)

    def slogdet(self, *, shift: Any = 0.0) -> tuple[Any, Any]:
        """Sign and log of the absolute determinant of ``K + shift·I`` (as
        ``np.linalg.slogdet``), from the eigenvalue sums without forming them
        all at once; see :meth:`KronSumSolver.slogdet`.

        Examples
        --------
        >>> import numpy as np
        >>> from kronsolve import kronsum
        >>> T = np.array([[2.0, -1.0], [-1.0, 2.0]])
        >>> sign, logdet = kronsum(T, T).slogdet()
        >>> bool(np.isclose(sign * np.exp(logdet), np.linalg.det(kronsum(T, T).toarray())))
        True
        """
        return self._get_solver().slogdet(shift)

    def det(self, *, shift: Any = 0.0) -> Any:
        """Determinant of ``K + shift·I`` (may overflow: prefer :meth:`slogdet`)."""
        sign, logabs = self.slogdet(shift=shift)
        return sign * np.exp(logabs)

    def eigh(self) -> KronEigh:
        """Eigendecomposition of a Kronecker sum of symmetric (Hermitian) factors.

        The eigenvalues are the sums ``λ1[i1] + ... + λd[id]`` (kept factored; a
        dense vector on request), the eigenvectors the lazy ``Q1 ⊗ ... ⊗ Qd``.
        See :class:`KronEigh`.

        Examples
        --------
        >>> import numpy as np
        >>> from kronsolve import kronsum
        >>> T = np.array([[2.0, -1.0], [-1.0, 2.0]])
        >>> E = kronsum(T, T).eigh()
        >>> E.eigenvalues()
        array([2., 4., 4., 6.])
        """
        hb, mats = self._host(self.mats)
        lams, Qs = eigh_factors(hb, mats, "eigh()")
        be = self._backend
        if be.lazy:
            lams = [self._out(lam) for lam in lams]
            Qs = [self._out(Q) for Q in Qs]
        return KronEigh(be, lams, Qs, "sum", KronProduct(Qs, _backend=be))

    # --- matrix functions ---------------------------------------------------------
    def expm(self, t: Any = 1.0) -> KronProduct:
        """``exp(t·K)`` as the lazy Kronecker product ``expm(t·A1) ⊗ ... ⊗ expm(t·Ad)``.

        Exact for any factors: the terms ``I ⊗ … ⊗ A_k ⊗ … ⊗ I`` of a Kronecker
        sum commute.  The factor exponentials are dense ``n_k x n_k`` matrices
        (``scipy.linalg.expm``; ``matrix_exp`` of the factors' library where it
        has one, which keeps PyTorch's autograd).

        Examples
        --------
        >>> import numpy as np
        >>> import scipy.linalg
        >>> from kronsolve import kronsum
        >>> T = np.array([[-2.0, 1.0], [1.0, -2.0]])
        >>> K = kronsum(T, T)
        >>> np.allclose(K.expm(0.3).toarray(), scipy.linalg.expm(0.3 * K.toarray()))
        True
        """
        t = _check_time(t)
        be = self._backend
        hb, mats = self._host(self.mats)
        mexp = getattr(getattr(getattr(hb, "xp", None), "linalg", None), "matrix_exp", None)
        if hb.name == "torch" and mexp is None:
            import torch

            mexp = torch.linalg.matrix_exp
        factors = []
        for A in mats:
            A = hb.dense(A)
            if hb.name == "numpy" or mexp is None:
                from scipy.linalg import expm

                E = expm(t * np.asarray(hb.to_host(A)))
                factors.append(E if hb.name == "numpy" else hb.from_host(E, like=self._ref))
            else:
                factors.append(mexp(A * t))
        return KronProduct([self._out(F) for F in factors] if be.lazy else factors,
                           _backend=be)

    def _eigen_route(self, what: str) -> KronSumSolver:
        solver = self._get_solver()
        if not all(m.kind == "eigh" for m in solver._modes):
            raise ValueError(
                f"{what} needs symmetric (Hermitian) factors; for general factors use "
                "expm(t) (a Kronecker product of factor exponentials)")
        return solver

    def _function_apply(self, x: Any, values: Any) -> Any:
        """``Q · diag(values(S)) · Qᴴ @ x`` with ``S`` the tensor of eigenvalue sums.

        ``values(S)`` returns one tensor or a list of them (one result each).
        """
        solver = self._eigen_route("this function")
        b, be, like = self._rhs(x, "x")
        _check_solve_rhs(self.shape, b)
        Bt = columns_as_batch(b, self._ns, be.swapaxes)
        d = len(self._ns)
        off = Bt.ndim - d
        modes = list(range(off, off + d))
        lam_dt = be.real_of(be.result_type(*[m.lam for m in solver._modes]))
        S = None
        for k, m in enumerate(solver._modes):
            shape = [1] * d
            shape[k] = self._ns[k]
            t = be.xp.reshape(m.lam_as(be, lam_dt, like), tuple(shape))
            S = t if S is None else S + t
        vals = values(S)
        single = not isinstance(vals, list)
        vals = [vals] if single else vals
        fwd = [m.fwd if m.backend is be else be.from_host(m.backend.to_host(m.fwd), like)
               for m in solver._modes]
        wd = be.result_type(Bt, *vals, *fwd)
        mats = [m.mats(be, wd, like) for m in solver._modes]
        Y = be.modeprod(be.astype(Bt, wd), [m[0] for m in mats], modes)
        outs = []
        for v in vals:
            X = be.modeprod(Y * v, [m[1] for m in mats], modes)
            if not be.is_complex(be.result_type(b, *self.mats)) and be.is_complex(X.dtype):
                X = be.xp.real(X)
            outs.append(batch_as_columns(X, tuple(b.shape), be.swapaxes))
        return outs[0] if single else outs

    def expm_multiply(self, x: Any, t: Any = 1.0) -> Any:
        """``exp(t·K) @ x`` for symmetric factors, for one ``t`` or a 1-D array of them.

        The forward transform of ``x`` is done once; each ``t`` then costs one
        backward transform (two for the first): heat-equation steps at many
        times.  ``x`` has shape ``(N,)`` or ``(..., N, k)``; with an array of
        times the results are stacked on a new leading axis.

        Examples
        --------
        >>> import numpy as np
        >>> import scipy.linalg
        >>> from kronsolve import kronsum
        >>> T = np.array([[-2.0, 1.0, 0.0], [1.0, -2.0, 1.0], [0.0, 1.0, -2.0]])
        >>> K = kronsum(T, T)
        >>> u0 = np.arange(9.0)
        >>> U = K.expm_multiply(u0, [0.1, 0.2])
        >>> np.allclose(U[1], scipy.linalg.expm(0.2 * K.toarray()) @ u0)
        True
        """
        ts = np.asarray(t)
        if ts.ndim > 1 or ts.dtype.kind not in "iufc" or not np.all(np.isfinite(ts)):
            raise ValueError(f"t must be a finite scalar or a 1-D array of times, got {t!r}")
        if ts.ndim == 0:
            return self._function_apply(x, lambda S: self._backend.xp.exp(S * ts[()]))
        outs = self._function_apply(
            x, lambda S: [self._backend.xp.exp(S * tv) for tv in ts.tolist()])
        xp = self._backend.xp
        return xp.stack(outs, axis=0) if outs else xp.zeros((0,))

    def funm_multiply(self, f: Any, x: Any) -> Any:
        """``f(K) @ x`` for symmetric factors: ``f`` applied to the eigenvalue sums.

        ``f`` maps an array of eigenvalue sums (of the factors' library) to an
        array of the same shape elementwise, e.g. ``np.sqrt``, ``lambda s: 1 /
        np.sqrt(s)``, ``np.log``, ``lambda s: np.exp(-t * s)``.

        Examples
        --------
        >>> import numpy as np
        >>> from kronsolve import kronsum
        >>> T = np.array([[2.0, -1.0], [-1.0, 2.0]])
        >>> K = kronsum(T, T)
        >>> x = np.array([1.0, 2.0, 3.0, 4.0])
        >>> y = K.funm_multiply(np.sqrt, x)
        >>> np.allclose(K.funm_multiply(np.sqrt, y), K @ x)    # sqrt(K) sqrt(K) = K
        True
        """
        if not callable(f):
            raise TypeError(f"f must be a callable, got {type(f).__name__}")
        return self._function_apply(x, f)

    def solve(self, b: Any, *, shift: Any = 0.0) -> Any:
        """Solve ``(K + shift·I) @ x = b`` by the fast diagonalization method.

        Parameters
        ----------
        b : (N,) or (..., N, k) array_like
            Right-hand side(s), as for ``np.linalg.solve``.
        shift : scalar, optional
            Multiple of the identity added to ``K``.

        Returns
        -------
        x : array
            Same shape as ``b``, of ``b``'s array library (or the factors').

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
        b, be, like = self._rhs(b, "b")
        _check_solve_rhs(self.shape, b)
        Bt = columns_as_batch(b, self._ns, be.swapaxes)
        X = self._get_solver()._solve(Bt, shift, check_finite=True, overwrite_b=False,
                                      name="b")
        return batch_as_columns(X, tuple(b.shape), be.swapaxes)


def _check_time(t: Any) -> Any:
    if getattr(t, "ndim", 0) != 0 or isinstance(t, bool) or not np.isscalar(np.asarray(t)[()]):
        raise TypeError(f"t must be a real or complex scalar, got {type(t).__name__}")
    t = np.asarray(t)[()]
    if not np.isfinite(t):
        raise ValueError(f"t must be finite, got {t}")
    return t


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
        elif isinstance(A, _KronOperator):
            raise TypeError(
                f"mats[{i}] is a {type(A).__name__}; kronsum takes matrices (or KronSum)"
            )
        else:
            flat.append(A)
    return KronSum(flat)
