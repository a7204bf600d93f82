"""Array-API implementations for arrays that are not NumPy's (PyTorch, CuPy, Dask...).

The public functions send a call here when one of its inputs comes from another
array library (see ``_backend`` for the check and the mixing rule).  Results are
of the input's kind: a PyTorch tensor keeps its device and its autograd graph,
a CuPy array stays on the GPU, a Dask array stays a lazy graph (``_dask``).

* Mode products are plain matrix products on reshaped tensors, as in NumPy's
  path: ``d`` large GEMMs that rotate the axes for a full Kronecker matvec, else
  one (batched) GEMM per mode.
* The fast diagonalization solve decomposes the factors with the library's own
  ``eigh`` (symmetric/Hermitian factors; differentiable in PyTorch for distinct
  eigenvalues) or ``eig`` (PyTorch; other libraries fall back to NumPy on the
  host), in double precision, then runs transform, division, transform.  NumPy
  factors with a foreign right-hand side are decomposed by NumPy and converted.
* Dask: the factors are small and decomposed eagerly with NumPy; the tensor
  work is a lazy graph (``_dask``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from math import prod, sqrt
from typing import Any

import numpy as np

from ._backend import _any_foreign, _device_of, _is_foreign, _kind_of, _namespace_of, _to_numpy
from ._kronproduct import (
    KronProduct,
    KronProductSum,
    _check_rhs,
    _check_solve_rhs,
    _flatten_factors,
    _is_scalar,
    _KronOperator,
)
from ._kronsum import KronSum
from ._modeprod import _order_modes, _resolve_modes
from ._solvers import (
    _ASSUME_A,
    _COND_WARN,
    KronSumSolver,
    _check_shift,
    _eps,
    _is_complex_scalar,
    _Mode,
    _real_of,
    _work_dtype,
)
from ._validation import _is_sparse

__all__: list[str] = []


# ------------------------------------------------------------------ kinds


class _Kind:
    """The array library of a call: namespace, device and conversion of NumPy inputs."""

    __slots__ = ("name", "xp", "device", "ref")

    def __init__(self, name: str, ref: Any):
        self.name = name
        self.ref = ref
        self.xp = _namespace_of(ref)
        self.device = None if name == "dask" else _device_of(ref)

    def convert(self, a: Any, what: str, *, small: bool = True) -> Any:
        """``a`` as this kind (NumPy arrays, sequences and scalars are converted)."""
        if a is None:
            return None
        if type(a) is not np.ndarray and _is_foreign(a):
            return a  # same kind: _kind_of has checked
        if _is_sparse(a):
            raise TypeError(
                f"{what} is a scipy.sparse matrix, which works only with NumPy inputs; "
                f"call .toarray() to use it with {self.name} arrays"
            )
        a = np.asarray(a)
        if a.dtype.kind not in "biufc":
            raise TypeError(
                f"{what} must have a numeric (bool, integer, floating or complex) dtype, "
                f"got dtype {a.dtype}"
            )
        if self.name == "dask":
            import dask.array as da

            return da.from_array(a, chunks=-1 if small else "auto")
        return self.xp.asarray(a, device=self.device)


def _kind(*arrays: Any) -> _Kind:
    name = _kind_of(*arrays)
    if name is None:  # pragma: no cover - callers check first
        raise TypeError("no array of another library than NumPy among the inputs")
    ref = next(a for a in arrays
               if a is not None and type(a) is not np.ndarray and _is_foreign(a))
    return _Kind(name, ref)


def _is_complex(xp: Any, dtype: Any) -> bool:
    return xp.isdtype(dtype, "complex floating")


def _float_dtype(xp: Any, dtype: Any) -> Any:
    """``dtype`` promoted to at least floating point (integers and bool: float64)."""
    if xp.isdtype(dtype, ("real floating", "complex floating")):
        return dtype
    return xp.float64


def _complex_of(xp: Any, dtype: Any) -> Any:
    if _is_complex(xp, dtype):
        return dtype
    return xp.complex64 if dtype == xp.float32 else xp.complex128


def _H(xp: Any, A: Any) -> Any:
    return xp.conj(A).T if _is_complex(xp, A.dtype) else A.T


# ---------------------------------------------------------- mode products


def _xp_apply(xp: Any, X: Any, mats: list, modes: list[int]) -> Any:
    """``X ×_modes[i] mats[i]`` for all i with plain (batched) matrix products."""
    shape = tuple(X.shape)
    d = len(mats)
    if d == 0:
        return xp.asarray(X, copy=True)
    sizes = [tuple(A.shape) for A in mats]
    if (d >= 2 and modes == list(range(d)) and len(shape) - d in (0, 1)
            and all(m == n for m, n in sizes)):
        # rotating scheme: d GEMMs (rest, n) @ (n, m), no batching
        cur = X
        for A in mats:
            cs = tuple(cur.shape)
            n = cs[0]
            rest = prod(cs[1:])
            cur = xp.reshape(xp.reshape(cur, (n, rest)).T @ A.T, cs[1:] + (A.shape[0],))
        if len(shape) > d:
            cur = xp.moveaxis(cur, 0, -1)
        return cur
    cur = X
    cs = list(shape)
    for i in _order_modes(shape, sizes, modes):
        A = mats[i]
        k = modes[i]
        m, n = sizes[i]
        p = prod(cs[:k])
        q = prod(cs[k + 1:])
        if q == 1:
            Y = xp.reshape(cur, (p, n)) @ A.T
        elif p == 1:
            Y = A @ xp.reshape(cur, (n, q))
        else:
            Y = A @ xp.reshape(cur, (p, n, q))
        cs[k] = m
        cur = xp.reshape(Y, tuple(cs))
    return cur


def _products(kind: _Kind, X: Any, mats: list, modes: list[int]) -> Any:
    """Mode products of validated inputs of one kind, in their common dtype."""
    if kind.name == "dask":
        from . import _dask

        return _dask.multi_mode_product(X, mats, modes)
    xp = kind.xp
    dtype = xp.result_type(X, *mats)
    X = X if X.dtype == dtype else xp.astype(X, dtype)
    mats = [A if A.dtype == dtype else xp.astype(A, dtype) for A in mats]
    return _xp_apply(xp, X, mats, modes)


def multi_mode_product(X: Any, mats: Sequence[Any], modes: Sequence[int] | None = None,
                       *, transpose: bool = False, name: str = "X") -> Any:
    """:func:`kronsolve.multi_mode_product` for inputs of another array library."""
    if not isinstance(mats, list | tuple):
        if getattr(mats, "ndim", None) == 2:
            raise TypeError("mats must be a sequence of matrices; wrap a single matrix in a list")
        mats = list(mats)
    kind = _kind(X, *mats)
    X = kind.convert(X, name, small=False)
    mats = [kind.convert(A, f"mats[{i}]") for i, A in enumerate(mats)]
    if X.ndim == 0:
        raise ValueError(f"{name} must have at least one dimension, got a 0-d array")
    for i, A in enumerate(mats):
        if A.ndim != 2:
            raise ValueError(f"mats[{i}] must be a 2-D matrix, got an array of shape "
                             f"{tuple(A.shape)}")
    mats, modes = _resolve_modes(tuple(X.shape), mats, modes, transpose, name)
    return _products(kind, X, mats, modes)


def mode_product(X: Any, A: Any, mode: int, *, transpose: bool = False) -> Any:
    """:func:`kronsolve.mode_product` for inputs of another array library."""
    return multi_mode_product(X, [A], [mode], transpose=transpose)


# --------------------------------------------------------- lazy operators


def _apply_op(op: _KronOperator, kind: _Kind, x: Any, terms: list[tuple[list, list[int]]],
              rows: tuple[int, ...], cols: tuple[int, ...]) -> Any:
    """Σ over ``terms`` (mats, mode offsets) of mode products of ``x`` seen as a tensor."""
    _check_rhs(op.shape, x)
    xp = kind.xp
    M = prod(rows)
    if x.ndim == 1:
        X = xp.reshape(x, cols)
        b = 0
        out_shape: tuple = (M,)
    else:
        batch = tuple(x.shape[:-2])
        k = x.shape[-1]
        X = xp.reshape(x, batch + cols + (k,))
        b = len(batch)
        out_shape = batch + (M, k)
    out = None
    for mats, offs in terms:
        Y = _products(kind, X, mats, [b + j for j in offs])
        out = Y if out is None else out + Y
    if out is None:  # pragma: no cover - operators have terms
        raise ValueError("empty operator")
    return xp.reshape(out, out_shape)


class _GenericLazy:
    """Transpose, conjugate and scalar multiple of the array-API lazy operators.

    A subclass gives its matrices (``_parts``) and their scaled copies
    (``_scaled``); the result is the same class over the new matrices.
    """

    _kind: _Kind
    dtype: Any

    def _parts(self) -> tuple:  # pragma: no cover - overridden
        raise NotImplementedError

    def _scaled(self, c: Any) -> tuple:  # pragma: no cover - overridden
        raise NotImplementedError

    @property
    def T(self) -> Any:
        """Transpose (lazy)."""
        return type(self)([A.T for A in self._parts()], self._kind)

    def conjugate(self) -> Any:
        """Complex conjugate (lazy)."""
        if not _is_complex(self._kind.xp, self.dtype):
            return self
        return type(self)([self._kind.xp.conj(A) for A in self._parts()], self._kind)

    def __mul__(self, c: Any) -> Any:
        if not _is_scalar(c):
            return NotImplemented
        return type(self)(self._scaled(c), self._kind)


class GenericKronProduct(_GenericLazy, KronProduct):
    """:class:`KronProduct` whose factors are arrays of another library (one kind).

    Products, ``.T``, ``.H``, scalar multiples, :meth:`toarray` and
    :meth:`solve` are supported; ``dtype`` is the library's dtype.
    """

    def __init__(self, factors: Sequence[Any], kind: _Kind):
        factors = tuple(factors)
        self.factors = factors
        self._rows = tuple(int(A.shape[0]) for A in factors)
        self._cols = tuple(int(A.shape[1]) for A in factors)
        self.shape = (prod(self._rows), prod(self._cols))
        self._kind = kind
        self.dtype = kind.xp.result_type(*factors)
        self._cast_cache: dict = {}
        self._dtype_cache: dict = {}
        self._lu_cache = None

    def _prep_rhs(self, x: Any, name: str = "x") -> Any:
        if type(x) is not np.ndarray and _is_foreign(x):
            _kind_of(self.factors[0], x)
            return x
        return self._kind.convert(x, name, small=False)

    def _matmul_checked(self, x: Any) -> Any:
        d = len(self.factors)
        return _apply_op(self, self._kind, x, [(list(self.factors), list(range(d)))],
                         self._rows, self._cols)

    def _matmul_operator(self, other: _KronOperator) -> Any:
        if (isinstance(other, GenericKronProduct)
                and tuple(A.shape[0] for A in other.factors) == self._cols):
            _kind_of(self.factors[0], other.factors[0])
            return GenericKronProduct([A @ B for A, B in zip(self.factors, other.factors)],
                                      self._kind)
        raise TypeError("products of lazy operators with non-NumPy factors need factors "
                        "whose shapes line up one to one")

    def __add__(self, other: Any) -> Any:
        if isinstance(other, _KronOperator):
            raise TypeError("sums of lazy Kronecker products support NumPy factors only")
        return NotImplemented

    def _parts(self) -> tuple:
        return self.factors

    def _scaled(self, c: Any) -> tuple:
        return (self.factors[0] * c,) + self.factors[1:]  # one factor carries the scalar

    def toarray(self, *, max_bytes: int | None = None) -> Any:
        """Dense matrix, as an array of the factors' kind."""
        from ._kronproduct import _check_dense_size

        dt = self.dtype if hasattr(self.dtype, "itemsize") else np.dtype(np.float64)
        _check_dense_size(self.shape, dt, max_bytes)
        xp = self._kind.xp
        out = self.factors[0]
        for A in self.factors[1:]:
            m1, n1 = out.shape
            m2, n2 = A.shape
            out = xp.reshape(out[:, None, :, None] * A[None, :, None, :], (m1 * m2, n1 * n2))
        return xp.astype(out, self.dtype)

    def solve(self, b: Any) -> Any:
        """Solve ``K @ x = b`` mode by mode (``linalg.solve`` with each factor)."""
        b = self._prep_rhs(b, "b")
        xp = self._kind.xp
        _check_solve_rhs(self.shape, b)
        for i, A in enumerate(self.factors):
            if A.shape[0] != A.shape[1]:
                raise ValueError(f"solve needs square factors, but factor {i} has shape "
                                 f"{tuple(A.shape)}")
        if self._kind.name == "dask":
            raise TypeError("KronProduct.solve does not support Dask arrays; use "
                            "multi_mode_product with the factor inverses")
        dtype = _float_dtype(xp, xp.result_type(b, *self.factors))
        if b.ndim == 1:
            X = xp.reshape(b, self._rows)
            off = 0
        else:
            X = xp.reshape(b, tuple(b.shape[:-2]) + self._rows + (b.shape[-1],))
            off = b.ndim - 2
        X = xp.astype(X, dtype)
        for k, A in enumerate(self.factors):
            Xk = xp.moveaxis(X, off + k, 0)
            shp = tuple(Xk.shape)
            Y = xp.linalg.solve(xp.astype(A, dtype), xp.reshape(Xk, (shp[0], -1)))
            X = xp.moveaxis(xp.reshape(Y, shp), 0, off + k)
        return xp.reshape(X, tuple(b.shape))

    def _unsupported(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(f"this method supports NumPy factors only, not {self._kind.name} ones")

    inv = slogdet = det = norm = eigvals = trace = diagonal = _unsupported


def kron(*factors: Any) -> GenericKronProduct:
    """:func:`kronsolve.kron` with factors of another array library."""
    flat = _flatten_factors(factors)
    kind = _kind(*flat)
    flat = [kind.convert(A, f"factors[{i}]") for i, A in enumerate(flat)]
    for i, A in enumerate(flat):
        if A.ndim != 2:
            raise ValueError(f"factors[{i}] must be a 2-D matrix, got an array of shape "
                             f"{tuple(A.shape)}")
    return GenericKronProduct(flat, kind)


def kron_matvec(factors: Sequence[Any], x: Any) -> Any:
    """:func:`kronsolve.kron_matvec` for inputs of another array library."""
    if len(factors) == 0:
        raise ValueError("factors must hold at least one matrix, got an empty sequence")
    if np.ndim(x) not in (1, 2) if not hasattr(x, "ndim") else x.ndim not in (1, 2):
        raise ValueError(f"x must have shape (N,) or (N, k), got shape {np.shape(x)}")
    if _any_foreign(*factors):
        return kron(*factors) @ x
    from ._kronproduct import kron as _np_kron

    return _np_kron(*factors) @ x


def _as_generic(op: _KronOperator, kind: _Kind) -> _KronOperator:
    """``op`` with its factors converted to ``kind`` (cached on NumPy operators)."""
    if isinstance(op, GenericKronProduct | GenericKronSum):
        return op
    cache = getattr(op, "_cast_cache", None)
    key = ("generic", kind.name, str(kind.device))
    if cache is not None and key in cache:
        return cache[key]
    if isinstance(op, KronSum):
        g: _KronOperator = GenericKronSum(
            [kind.convert(A.toarray() if _is_sparse(A) else A, f"mats[{i}]")
             for i, A in enumerate(op.mats)], kind)
    elif isinstance(op, KronProduct):
        g = GenericKronProduct(
            [kind.convert(A.toarray() if _is_sparse(A) else A, f"factors[{i}]")
             for i, A in enumerate(op.factors)], kind)
    elif isinstance(op, KronProductSum):
        return _GenericSum([_as_generic(t, kind) for t in op.terms])
    else:  # pragma: no cover
        raise TypeError(f"unsupported operator {type(op).__name__}")
    if cache is not None:
        cache[key] = g
    return g


class _GenericSum:
    """Terms of a converted :class:`KronProductSum` (products only)."""

    def __init__(self, terms: list):
        self.terms = terms

    def _matmul_array(self, x: Any) -> Any:
        out = None
        for t in self.terms:
            y = t._matmul_array(x)
            out = y if out is None else out + y
        return out

    @property
    def T(self) -> _GenericSum:
        return _GenericSum([t.T for t in self.terms])


def matmul(op: _KronOperator, x: Any) -> Any:
    """``op @ x`` for ``x`` of another array library."""
    kind = _kind(x, *_factors_of(op))
    return _as_generic(op, kind)._matmul_array(x)


def rmatmul(op: _KronOperator, x: Any) -> Any:
    """``x @ op`` for ``x`` of another array library."""
    kind = _kind(x, *_factors_of(op))
    g = _as_generic(op, kind).T
    if x.ndim == 0:
        raise ValueError("matmul: x must have at least one dimension, got a 0-d array")
    if x.ndim == 1:
        return g._matmul_array(x)
    xp = kind.xp
    return xp.moveaxis(g._matmul_array(xp.moveaxis(x, -1, -2)), -1, -2)


def _factors_of(op: _KronOperator) -> list:
    if isinstance(op, KronSum):
        return list(op.mats)
    if isinstance(op, KronProduct):
        return list(op.factors)
    if isinstance(op, KronProductSum):
        return [A for t in op.terms for A in t.factors]
    return []


class GenericKronSum(_GenericLazy, KronSum):
    """:class:`KronSum` whose factors are arrays of another library (one kind)."""

    def __init__(self, mats: Sequence[Any], kind: _Kind):
        mats = tuple(mats)
        for i, A in enumerate(mats):
            if A.ndim != 2 or A.shape[0] != A.shape[1]:
                raise ValueError(f"mats[{i}] must be a square matrix, got shape "
                                 f"{tuple(A.shape)}")
        self.mats = mats
        self._ns = tuple(int(A.shape[0]) for A in mats)
        N = prod(self._ns)
        self.shape = (N, N)
        self._kind = kind
        self.dtype = kind.xp.result_type(*mats)
        self._cast_cache: dict = {}
        self._solver = None

    def _prep_rhs(self, x: Any, name: str = "x") -> Any:
        if type(x) is not np.ndarray and _is_foreign(x):
            _kind_of(self.mats[0], x)
            return x
        return self._kind.convert(x, name, small=False)

    def _matmul_checked(self, x: Any) -> Any:
        terms = [([A], [k]) for k, A in enumerate(self.mats)]
        return _apply_op(self, self._kind, x, terms, self._ns, self._ns)

    def _terms(self) -> tuple:
        raise TypeError("sums and products of lazy operators support NumPy factors only")

    def _matmul_operator(self, other: _KronOperator) -> Any:
        return self._terms()

    def _parts(self) -> tuple:
        return self.mats

    def _scaled(self, c: Any) -> tuple:
        return tuple(A * c for A in self.mats)  # every term carries the scalar

    def __add__(self, other: Any) -> Any:
        if isinstance(other, GenericKronSum) and other._ns == self._ns:
            _kind_of(self.mats[0], other.mats[0])
            return GenericKronSum([A + B for A, B in zip(self.mats, other.mats)], self._kind)
        if isinstance(other, _KronOperator):
            raise TypeError("sums of lazy operators with non-NumPy factors: only KronSum + "
                            "KronSum of the same shapes")
        return NotImplemented

    def toarray(self, *, max_bytes: int | None = None) -> Any:
        """Dense matrix, as an array of the factors' kind."""
        xp = self._kind.xp
        out = None
        for k, A in enumerate(self.mats):
            f = [xp.eye(n, dtype=self.dtype, device=self._kind.device) if j != k
                 else xp.astype(A, self.dtype) for j, n in enumerate(self._ns)]
            t = GenericKronProduct(f, self._kind).toarray(max_bytes=max_bytes)
            out = t if out is None else out + t
        return out

    def _get_solver(self) -> Any:
        if self._solver is None:
            self._solver = KronSumSolver(list(self.mats))
        return self._solver

    def eigvals(self) -> Any:
        """All eigenvalues, ``λ1[i1] + ... + λd[id]`` in ``np.kron`` order."""
        xp = self._kind.xp
        lams = self._get_solver().eigenvalues
        d = len(lams)
        acc = None
        for k, lam in enumerate(lams):
            shape = [1] * d
            shape[k] = self._ns[k]
            t = xp.reshape(lam, tuple(shape))
            acc = t if acc is None else acc + t
        return xp.reshape(acc, (-1,))

    def solve(self, b: Any, *, shift: Any = 0.0) -> Any:
        """Solve ``(K + shift·I) @ x = b`` (fast diagonalization, in ``b``'s kind)."""
        return kronsum_solve(self, b, shift)

    def diagonal(self) -> Any:
        raise TypeError("diagonal supports NumPy factors only")

    def trace(self) -> Any:
        raise TypeError("trace supports NumPy factors only")


def kronsum(*mats: Any) -> GenericKronSum:
    """:func:`kronsolve.kronsum` with factors of another array library."""
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
    kind = _kind(*flat)
    flat = [kind.convert(A, f"mats[{i}]") for i, A in enumerate(flat)]
    for i, A in enumerate(flat):
        if A.ndim != 2 or A.shape[0] != A.shape[1]:
            raise ValueError(f"mats[{i}] must be square, got shape {tuple(A.shape)}")
    return GenericKronSum(flat, kind)


def kronsum_solve(op: KronSum, b: Any, shift: Any = 0.0) -> Any:
    """:meth:`KronSum.solve` for a right-hand side (or factors) of another library."""
    kind = _kind(b, *op.mats)
    b = kind.convert(b, "b", small=False)
    _check_solve_rhs(op.shape, b)
    N = op.shape[0]
    solver = op._get_solver()
    xp = kind.xp
    ns = op._ns
    if b.ndim == 1:
        return xp.reshape(solver._solve(xp.reshape(b, ns), shift, check_finite=True,
                                        overwrite_b=False, name="b"), (N,))
    batch, k = tuple(b.shape[:-2]), b.shape[-1]
    Bt = xp.reshape(xp.moveaxis(b, -1, -2), batch + (k,) + ns)
    X = solver._solve(Bt, shift, check_finite=True, overwrite_b=False, name="b")
    return xp.moveaxis(xp.reshape(X, batch + (k, N)), -1, -2)


# ----------------------------------------------------------------- solvers


class _XMode:
    """A factor's decomposition in a foreign library (``fwd``, ``bwd``, ``lam_x``),
    with host copies of the eigenvalues for the singularity check."""

    __slots__ = ("lam", "lam_x", "fwd", "bwd", "hermitian", "real", "n", "bounds", "_cast")

    def __init__(self, xp: Any, lam_x: Any, fwd: Any, bwd: Any, hermitian: bool):
        self.lam_x = lam_x
        self.fwd = fwd
        self.bwd = bwd
        self.hermitian = hermitian
        host = _Mode(_to_numpy(lam_x), np.zeros((0, 0)), np.zeros((0, 0)), hermitian)
        self.lam = host.lam
        self.n = host.n
        self.bounds = host.bounds
        self.real = not (_is_complex(xp, lam_x.dtype) or _is_complex(xp, fwd.dtype)
                         or _is_complex(xp, bwd.dtype))
        self._cast: dict = {}

    def mats(self, xp: Any, dtype: Any) -> tuple[Any, Any, Any]:
        key = str(dtype)
        m = self._cast.get(key)
        if m is None:
            m = self._cast[key] = (xp.astype(self.fwd, dtype), xp.astype(self.bwd, dtype),
                                   xp.astype(self.lam_x, dtype))
        return m


def _xp_norm(xp: Any, A: Any, ord: Any = "fro") -> float:
    return float(_to_numpy(xp.linalg.matrix_norm(A, ord=ord)))


def _xp_decompose(kind: _Kind, K: Any, M: Any, assume_a: str, kname: str,
                  mname: str) -> tuple[_XMode, str | None]:
    """``_solvers._decompose`` in the library of ``K`` (double precision)."""
    xp = kind.xp
    wd = xp.complex128 if _is_complex(xp, K.dtype) else xp.float64
    if M is not None and _is_complex(xp, M.dtype):
        wd = xp.complex128
    eps = float(xp.finfo(_float_dtype(xp, K.dtype)).eps)
    Kd = xp.astype(K, wd)
    Md = None if M is None else xp.astype(M, wd)
    n = K.shape[0]
    exact = False
    if assume_a == "sym":
        herm = True
    elif assume_a == "gen":
        herm = False
    else:
        exact = bool(xp.all(Kd == _H(xp, Kd)))
        herm = exact or n <= 1 or (
            _xp_norm(xp, Kd - _H(xp, Kd)) <= 8.0 * sqrt(n) * eps * _xp_norm(xp, Kd))
        if herm and Md is not None:
            meps = float(xp.finfo(_float_dtype(xp, M.dtype)).eps)
            herm = bool(xp.all(Md == _H(xp, Md))) or (
                _xp_norm(xp, Md - _H(xp, Md)) <= 8.0 * sqrt(n) * meps * _xp_norm(xp, Md))
    if herm:
        if assume_a != "auto":
            exact = bool(xp.all(Kd == _H(xp, Kd)))
        Ks = Kd if exact else (Kd + _H(xp, Kd)) * 0.5
        if Md is None:
            lam, Q = xp.linalg.eigh(Ks)
        else:
            Ms = (Md + _H(xp, Md)) * 0.5
            L = _cholesky(kind, Ms, M, mname)
            Y = xp.linalg.solve(L, Ks)
            C = xp.linalg.solve(L, _H(xp, Y))
            C = (C + _H(xp, C)) * 0.5
            lam, U = xp.linalg.eigh(C)
            Q = xp.linalg.solve(_H(xp, L), U)
        return _XMode(xp, lam, _H(xp, Q), Q, True), None
    if not hasattr(xp.linalg, "eig"):
        # no eig in this library (CuPy): decompose on the host
        from ._solvers import _decompose

        mode, msg = _decompose(_to_numpy(K), None if M is None else _to_numpy(M), "gen",
                               kname, mname)
        conv = [kind.convert(a, kname) for a in (mode.lam, mode.fwd, mode.bwd)]
        return _XMode(xp, conv[0], conv[1], conv[2], False), msg
    what = kname if Md is None else f"the pencil ({kname}, {mname})"
    lam, V = xp.linalg.eig(Kd if Md is None else xp.linalg.solve(Md, Kd))
    if not bool(xp.all(xp.isfinite(lam))):
        raise np.linalg.LinAlgError(f"{what} has non-finite eigenvalues")
    if (not _is_complex(xp, Kd.dtype) and not bool(xp.any(xp.imag(lam) != 0))
            and not bool(xp.any(xp.imag(V) != 0))):
        lam, V = xp.real(lam), xp.real(V)
    W = xp.linalg.inv(V if Md is None else xp.astype(Md, V.dtype) @ V)
    if not bool(xp.all(xp.isfinite(W))):
        raise np.linalg.LinAlgError(
            f"{what} (shape {tuple(K.shape)}) is not diagonalizable: its eigenvector matrix "
            "is singular (a defective matrix); the fast diagonalization method cannot be used")
    Wc = W if Md is None else xp.linalg.inv(V)
    cond = _xp_norm(xp, V, 1) * _xp_norm(xp, Wc, 1)
    msg = None
    if not np.isfinite(cond) or cond > _COND_WARN:
        msg = (f"{what} is not symmetric and its eigenvector basis is ill-conditioned "
               f"(condition number {cond:.2e} > {_COND_WARN:.0e}); the solution may be "
               "inaccurate")
    return _XMode(xp, lam, W, V, False), msg


def _cholesky(kind: _Kind, Ms: Any, M: Any, mname: str) -> Any:
    xp = kind.xp
    err = (f"{mname} (shape {tuple(M.shape)}) must be symmetric (Hermitian) positive "
           "definite, but its Cholesky factorization failed")
    try:
        L = xp.linalg.cholesky(Ms)
    except Exception:
        raise np.linalg.LinAlgError(err) from None
    if not bool(xp.all(xp.isfinite(L))):
        raise np.linalg.LinAlgError(err)
    return L


def _factor_list(mats: Any, name: str) -> list:
    if isinstance(mats, list | tuple):
        return list(mats)
    if getattr(mats, "ndim", None) == 3:
        return [mats[i] for i in range(mats.shape[0])]
    raise TypeError(
        f"{name} must be a sequence of square matrices (one per dimension), got "
        f"{type(mats).__name__}; wrap a single matrix in a list"
    )


class GenericKronSumSolver(KronSumSolver):
    """:class:`KronSumSolver` with factors of another array library.

    PyTorch and CuPy factors are decomposed with the library's ``eigh``/``eig``
    (results keep PyTorch's autograd); Dask factors, being small, are brought to
    NumPy (one ``compute`` of the factors, never of a right-hand side) and
    decomposed eagerly.  :meth:`solve` returns arrays of the factors' kind.
    """

    def __init__(self, mats: Sequence[Any], *, masses: Sequence[Any] | None = None,
                 assume_a: str = "auto", check_finite: bool = True, _stacklevel: int = 2):
        if assume_a not in _ASSUME_A:
            raise ValueError(f"assume_a must be one of {_ASSUME_A}, got {assume_a!r}")
        mats = _factor_list(mats, "mats")
        masses_l = None if masses is None else _factor_list(masses, "masses")
        kind = _kind(*mats, *(masses_l or []))
        self._kind = kind
        if kind.name == "dask":
            host = KronSumSolver([_to_numpy(A) for A in mats],
                                 masses=None if masses_l is None else
                                 [None if M is None else _to_numpy(M) for M in masses_l],
                                 assume_a=assume_a, check_finite=check_finite,
                                 _stacklevel=_stacklevel + 1)
            self.__dict__.update(vars(host))
            self._kind = kind
            import dask.array as da

            self.eigenvalues = [da.from_array(lam, chunks=-1) for lam in host.eigenvalues]
            return
        xp = kind.xp
        d = len(mats)
        if d == 0:
            raise ValueError("mats must hold at least one matrix, got an empty sequence")
        Ks = []
        for k, A in enumerate(mats):
            A = kind.convert(A, f"mats[{k}]")
            if A.ndim != 2 or A.shape[0] != A.shape[1]:
                raise ValueError(f"mats[{k}] must be square, got shape {tuple(A.shape)}")
            if check_finite and not bool(xp.all(xp.isfinite(A))):
                raise ValueError(f"mats[{k}] must contain only finite numbers, but it holds "
                                 "inf or NaN")
            Ks.append(A)
        Ms: list = [None] * d
        if masses_l is not None:
            if len(masses_l) != d:
                raise ValueError(
                    f"masses must hold one matrix per factor: got {len(masses_l)} masses for "
                    f"{d} factors"
                )
            for k, M in enumerate(masses_l):
                if M is None:
                    continue
                M = kind.convert(M, f"masses[{k}]")
                if tuple(M.shape) != tuple(Ks[k].shape):
                    raise ValueError(
                        f"masses[{k}] has shape {tuple(M.shape)}, but mats[{k}] has shape "
                        f"{tuple(Ks[k].shape)}; they must match"
                    )
                if check_finite and not bool(xp.all(xp.isfinite(M))):
                    raise ValueError(f"masses[{k}] must contain only finite numbers, but it "
                                     "holds inf or NaN")
                Ms[k] = M
        self.ndim = d
        self.shape = tuple(int(A.shape[0]) for A in Ks)
        self._in_dtype = _float_dtype(xp, xp.result_type(*Ks, *[M for M in Ms if M is not None]))
        self._masses = any(M is not None for M in Ms)
        modes: list[_XMode] = []
        done: dict = {}
        for k in range(d):
            key = (id(mats[k]), id(Ms[k]))
            if key in done:
                modes.append(modes[done[key]])
                continue
            mode, msg = _xp_decompose(kind, Ks[k], Ms[k], assume_a, f"mats[{k}]",
                                      f"masses[{k}]")
            if msg is not None:
                warnings.warn(msg, RuntimeWarning, stacklevel=_stacklevel)
            done[key] = k
            modes.append(mode)
        self._set_modes(modes, [m.lam_x for m in modes])

    def __repr__(self) -> str:
        return super().__repr__().replace("KronSumSolver(", f"KronSumSolver[{self._kind.name}](")

    def _solve(self, B: Any, shift: Any, *, check_finite: bool, overwrite_b: bool,
               name: str = "B") -> Any:
        if self._kind.name == "dask":
            _kind_of(B, self.eigenvalues[0])
            B = self._kind.convert(B, name, small=False)
            return solve_with(self, B, shift, check_finite=check_finite, name=name)
        kind = _kind(B, self.eigenvalues[0])
        xp = kind.xp
        B = kind.convert(B, name, small=False)
        d, ns = self.ndim, self.shape
        if B.ndim < d or tuple(B.shape[B.ndim - d:]) != ns:
            raise ValueError(
                f"{name} must have shape {ns} (optionally with leading batch dimensions) to "
                f"match the factors of shape {[(n, n) for n in ns]}, got shape "
                f"{tuple(B.shape)}"
            )
        shift = _check_shift(shift)
        if check_finite and not bool(xp.all(xp.isfinite(B))):
            raise ValueError(f"{name} must contain only finite numbers, but it holds inf or NaN")
        cshift = _is_complex_scalar(shift)
        out_dt = _float_dtype(xp, xp.result_type(B.dtype, self._in_dtype))
        if cshift:
            out_dt = _complex_of(xp, out_dt)
        wd = out_dt if self._real_modes else _complex_of(xp, out_dt)
        if prod(B.shape) == 0:
            return xp.zeros(tuple(B.shape), dtype=out_dt, device=kind.device)
        self._check_nonsingular(shift, float(xp.finfo(wd).eps))
        trio = [m.mats(xp, wd) for m in self._modes]
        return _xp_fdm(kind, B, [t[0] for t in trio], [t[1] for t in trio],
                       [t[2] for t in trio], shift, out_dt, wd)


def _xp_fdm(kind: _Kind, B: Any, fwd: list, bwd: list, lams: list, shift: Any, out_dt: Any,
            wd: Any) -> Any:
    """Transform, divide by the eigenvalue sums, transform back (in dtype ``wd``).

    ``B`` is never written to: the first transform makes a new array, and ``B`` is
    converted to ``wd`` only when its dtype differs (no copy of a large tensor).
    """
    xp = kind.xp
    if B.dtype != wd:
        B = xp.astype(B, wd)
    d = len(fwd)
    b = B.ndim - d
    modes = list(range(b, b + d))
    Y = _xp_apply(xp, B, fwd, modes)
    den = None
    for k, lam in enumerate(lams):
        shape = [1] * d
        shape[k] = lam.shape[0]
        t = xp.reshape(lam, tuple(shape))
        den = t if den is None else den + t
    if shift != 0:
        den = den + shift
    X = _xp_apply(xp, Y / den, bwd, modes)
    if wd != out_dt:
        X = xp.real(X)
    return X


def solve_with(solver: KronSumSolver, B: Any, shift: Any, *, check_finite: bool = True,
               name: str = "B") -> Any:
    """Solve a right-hand side of another library with a NumPy-decomposed solver."""
    kind = _kind(B)
    B = kind.convert(B, name, small=False)
    d, ns = solver.ndim, solver.shape
    if B.ndim < d or tuple(B.shape[B.ndim - d:]) != ns:
        raise ValueError(
            f"{name} must have shape {ns} (optionally with leading batch dimensions) to "
            f"match the factors of shape {[(n, n) for n in ns]}, got shape {tuple(B.shape)}"
        )
    shift = _check_shift(shift)
    cshift = _is_complex_scalar(shift)
    if kind.name == "dask":
        from . import _dask

        out_dt = _work_dtype(B.dtype, solver._in_dtype, np.complex64 if cshift else np.float16)
        wd = out_dt if solver._real_modes else np.result_type(out_dt, np.complex64)
        solver._check_nonsingular(shift, _eps(_real_of(wd)))
        mats = [m.mats(wd) for m in solver._modes]
        return _dask.fdm_solve(B, [t[0] for t in mats], [t[1] for t in mats],
                               [m.lam_as(wd) for m in solver._modes], shift, wd, out_dt,
                               check_finite, name)
    xp = kind.xp
    if check_finite and not bool(xp.all(xp.isfinite(B))):
        raise ValueError(f"{name} must contain only finite numbers, but it holds inf or NaN")
    # the NumPy decomposition, converted once per kind, device and dtype
    out_np = _work_dtype(solver._in_dtype, np.complex64 if cshift else np.float16)
    out_dt = _float_dtype(xp, xp.result_type(B.dtype, kind.convert(np.zeros(0, out_np), "")))
    wd = out_dt if solver._real_modes else _complex_of(xp, out_dt)
    if prod(B.shape) == 0:
        return xp.zeros(tuple(B.shape), dtype=out_dt, device=kind.device)
    solver._check_nonsingular(shift, float(xp.finfo(wd).eps))
    cache = solver.__dict__.setdefault("_foreign_cache", {})
    key = (kind.name, str(kind.device), str(wd))
    conv = cache.get(key)
    if conv is None:
        conv = []
        for m in solver._modes:
            f = kind.convert(m.fwd, "fwd")
            v = kind.convert(m.bwd, "bwd")
            lam = kind.convert(m.lam, "lam")
            conv.append((xp.astype(f, wd), xp.astype(v, wd), xp.astype(lam, wd)))
        cache[key] = conv
    return _xp_fdm(kind, B, [c[0] for c in conv], [c[1] for c in conv],
                   [c[2] for c in conv], shift, out_dt, wd)


def solve_kronsum(B: Any, mats: Sequence[Any], *, masses: Sequence[Any] | None = None,
                  shift: Any = 0.0, assume_a: str = "auto", check_finite: bool = True,
                  overwrite_b: bool = False) -> Any:
    """:func:`kronsolve.solve_kronsum` for inputs of another array library."""
    mats_l = _factor_list(mats, "mats")
    masses_l = None if masses is None else _factor_list(masses, "masses")
    _kind_of(B, *mats_l, *(masses_l or []))  # one foreign kind at most
    if _any_foreign(*mats_l, *(masses_l or [])):
        solver: KronSumSolver = GenericKronSumSolver(
            mats_l, masses=masses_l, assume_a=assume_a, check_finite=check_finite,
            _stacklevel=4)
        return solver._solve(B, shift, check_finite=check_finite, overwrite_b=overwrite_b)
    solver = KronSumSolver(mats_l, masses=masses_l, assume_a=assume_a,
                           check_finite=check_finite, _stacklevel=4)
    return solve_with(solver, B, shift, check_finite=check_finite)


def solve_sylvester3d(B: Any, A: Any, A2: Any = None, A3: Any = None, *, shift: Any = 0.0,
                      check_finite: bool = True, overwrite_b: bool = False) -> Any:
    """:func:`kronsolve.solve_sylvester3d` for inputs of another array library."""
    if getattr(B, "ndim", 0) < 3:
        raise ValueError(
            f"B must have at least three dimensions (n1, n2, n3), got shape "
            f"{tuple(getattr(B, 'shape', ()))}; use solve_kronsum for other dimensions"
        )
    mats = [A, A if A2 is None else A2, A if A3 is None else A3]
    return solve_kronsum(B, mats, shift=shift, check_finite=check_finite,
                         overwrite_b=overwrite_b)
