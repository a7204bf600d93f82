"""Mode-n products: the kernel under every Kronecker-structured operation.

``mode_product(X, A, k)`` multiplies the tensor ``X`` by the matrix ``A`` along axis
``k``: ``Y[..., i, ...] = sum_j A[i, j] X[..., j, ...]``.  A product with every axis
is a Kronecker matvec in C order::

    kron(A1, ..., Ad) @ X.ravel() == multi_mode_product(X, [A1, ..., Ad]).ravel()

Each product is one BLAS call on a reshaped view of a C-contiguous tensor: the
first axis is ``A @ X.reshape(n, -1)``, the last axis ``X.reshape(-1, n) @ A.T``
and a middle axis a batched ``A @ X.reshape(p, n, q)``; nothing is transposed or
copied in between.  Plans (the order of the products and the intermediate
shapes) are cached per shape and dtype, and intermediates live in per-thread
work buffers, so a call allocates only its result.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from math import prod
from typing import Any

import numpy as np

from ._backend import _foreign_seq, _is_foreign
from ._validation import _as_array, _as_matrix, _is_sparse, _normalize_axis

__all__ = ["mode_product", "multi_mode_product", "kron_matvec"]

# --------------------------------------------------------------------------- plans

_PLAN_CACHE: dict[tuple, tuple] = {}
_PLAN_CACHE_MAX = 512


def _order_modes(shape: tuple[int, ...], sizes: list[tuple[int, int]], modes: list[int]):
    """Order in which to apply the products (indices into ``modes``).

    Products that shrink the tensor most go first, which minimizes the flops for
    rectangular factors; ties apply the last axis first (the GEMM with the
    largest row count), then the others from the right.
    """
    order = list(range(len(modes)))
    order.sort(key=lambda i: (sizes[i][0] / sizes[i][1], -modes[i]))
    return order


def _plan_steps(shape: tuple[int, ...], sizes: list[tuple[int, int]], modes: list[int]):
    """The ``(index, p, n, q, m)`` steps of :func:`_make_plan` and the final shape."""
    cur = list(shape)
    steps = []
    for i in _order_modes(shape, sizes, modes):
        k = modes[i]
        m, n = sizes[i]
        p = prod(cur[:k])
        q = prod(cur[k + 1 :])
        steps.append((i, p, n, q, m))
        cur[k] = m
    return steps, cur


def _make_plan(shape: tuple[int, ...], mats: list, modes: list[int]):
    """``(steps, shape_out, rotate, slabs)`` for successive mode products, cached.

    ``steps`` are ``(index, p, n, q, m)``: product ``index`` maps the tensor seen
    as ``(p, n, q)`` to ``(p, m, q)``.  ``rotate`` selects the cyclic scheme,
    ``slabs`` (the steps within one slab) the two-pass one.
    """
    sparse = tuple(type(A) is not np.ndarray for A in mats)
    sizes = [A.shape for A in mats]
    key = (shape, tuple(sizes), tuple(modes), sparse, _STRATEGY[0])
    plan = _PLAN_CACHE.get(key)
    if plan is not None:
        return plan
    steps, cur = _plan_steps(shape, sizes, modes)
    rotate = _use_rotation(shape, sizes, modes, any(sparse))
    slabs = None if rotate else _slab_steps(shape, sizes, modes, any(sparse))
    plan = (tuple(steps), tuple(cur), rotate, slabs)
    if len(_PLAN_CACHE) >= _PLAN_CACHE_MAX:
        _PLAN_CACHE.clear()
    _PLAN_CACHE[key] = plan
    return plan


# ------------------------------------------------------------------ work buffers

_LOCAL = threading.local()
# intermediates larger than this are allocated per call rather than kept
_WORKSPACE_MAX_BYTES = 1 << 28


def _work_buffer(slot: int, size: int, dtype: np.dtype) -> np.ndarray | None:
    """A flat per-thread scratch array of ``size`` elements (reused across calls)."""
    nbytes = size * dtype.itemsize
    if nbytes > _WORKSPACE_MAX_BYTES:
        return None
    bufs = getattr(_LOCAL, "bufs", None)
    if bufs is None:
        bufs = _LOCAL.bufs = [None, None, None]
    buf = bufs[slot]
    if buf is None or buf.nbytes < nbytes:
        buf = bufs[slot] = np.empty(max(nbytes, 4096), dtype=np.uint8)
    return buf[:nbytes].view(dtype)


# --------------------------------------------------------------------- execution


def _one_product(cur: np.ndarray, A: Any, p: int, n: int, q: int, m: int, out) -> np.ndarray:
    """``(p, n, q) -> (p, m, q)`` product with ``A`` (shape (m, n)); C-contiguous result."""
    if type(A) is not np.ndarray:  # scipy.sparse
        if q == 1:
            res = (A @ cur.reshape(p, n).T).T
        elif p == 1:
            res = A @ cur.reshape(n, q)
        else:
            t = cur.reshape(p, n, q).transpose(1, 0, 2).reshape(n, p * q)
            res = (A @ t).reshape(m, p, q).transpose(1, 0, 2)
        res = np.asarray(res)
        if out is None:
            return np.ascontiguousarray(res)
        out = out.reshape(res.shape)
        out[...] = res
        return out
    if q == 1:
        return np.matmul(cur.reshape(p, n), A.T, out=None if out is None else out.reshape(p, m))
    if p == 1:
        return np.matmul(A, cur.reshape(n, q), out=None if out is None else out.reshape(m, q))
    return np.matmul(A, cur.reshape(p, n, q), out=None if out is None else out.reshape(p, m, q))


# "auto" picks per case; "std", "front", "back" and "slabs" force one scheme (for measurements)
_STRATEGY = ["auto"]


def _use_rotation(shape: tuple[int, ...], sizes: list, modes: list[int],
                  sparse: bool) -> str | None:
    """Which rotating scheme applies and is expected to be faster, if any.

    Both need every axis to be multiplied by a square dense factor (a plain
    Kronecker matvec).  Measured on a 2-core AVX-512 machine with OpenBLAS
    (medians of 11 interleaved runs, time against the standard scheme):

    * front rotation: 0.60-0.80x for d >= 5 with N < 2**16 (d = 5, n = 8: 0.64x;
      d = 6, n = 6: 0.61x; d = 10, n = 3: 0.63x) but 1.06-1.13x at d = 5, n = 10
      (N = 1e5); 0.86-0.93x for d = 3 with n = 20-25, 1.05-1.11x with n = 16 or 32;
    * back rotation: from N = 2**17 on, 0.79-0.93x for d = 3 (n = 52: 0.90x,
      n = 64: 0.84-0.93x, n = 72: 0.79x) and 0.81-0.95x for d = 4 (n = 20-28), but
      1.05-1.07x at d = 3 with n = 40-48 and 0.91-1.13x at d = 5, n = 10, below
      2**17;
    * for d = 2 the schemes are equal.

    Returns ``"front"``, ``"back"`` or None.
    """
    strategy = _STRATEGY[0]
    d = len(sizes)
    if strategy in ("std", "slabs") or sparse or d < 2 or len(shape) != d:
        return None
    if list(modes) != list(range(d)) or any(m != n for m, n in sizes):
        return None
    if strategy in ("front", "back"):
        return strategy
    N = prod(shape)
    nmax = max(shape)
    if (d >= 4 and N < _FRONT_MAX_SIZE and nmax <= 12
            or d == 3 and _FRONT_D3[0] <= nmax <= _FRONT_D3[1]):
        return "front"
    return "back" if d >= 3 and N >= _ROTATE_MIN_SIZE else None


_ROTATE_MIN_SIZE = 1 << 17
# Where the front rotation (see :func:`_apply_rotating`) is used: d >= 4 below this
# size with factors of at most 12 rows, and d = 3 with the largest factor in this range.
_FRONT_MAX_SIZE = 1 << 16
_FRONT_D3 = (17, 28)


def _apply_rotating(X: np.ndarray, mats: list, dtype: np.dtype, front: bool) -> np.ndarray:
    """Products along every axis as ``d`` plain GEMMs, rotating the axes.

    Back (``front=False``): step ``i`` multiplies the *last* axis and moves it
    to the front, ``(rest, n) -> (m, rest)`` through ``A @ cur.reshape(rest, n).T``,
    the GEMM form with the small factor on the left (the fastest in OpenBLAS
    here for large tensors), from the last factor to the first.

    Front (``front=True``): step ``k`` multiplies the *first* axis and moves it
    to the back, ``(n, rest) -> (rest, m)`` through ``cur.reshape(n, rest).T @ Aᵀ``
    with a contiguous copy of ``Aᵀ`` on the right, the fastest layout for small
    factors here (d = 3: 18 against 27 µs at n = 16, 46 against 64 µs at n = 25),
    from the first factor to the last.

    Either way each step is one BLAS call with no batching and no transposition
    copy, and after ``d`` steps the axes are back in order.
    """
    d = len(mats)
    cur = X if X.flags.c_contiguous else np.ascontiguousarray(X)
    for step, i in enumerate(range(d) if front else range(d - 1, -1, -1)):
        A = mats[i]
        m, n = A.shape
        rest = cur.size // n
        shape = (rest, m) if front else (m, rest)
        if step == d - 1:
            dst = np.empty(shape, dtype=dtype)
        else:
            dst = _work_buffer(step & 1, rest * m, dtype)
            dst = None if dst is None else dst.reshape(shape)
        if front:
            dst = np.matmul(cur.reshape(n, rest).T, np.ascontiguousarray(A.T), out=dst)
            cur = dst.reshape(cur.shape[1:] + (m,))
        else:
            dst = np.matmul(A, cur.reshape(rest, n).T, out=dst)
            cur = dst.reshape((m,) + cur.shape[:-1])
    return cur


# The two-pass scheme for many right-hand sides (see :func:`_apply_slabs`): slabs
# of at most this many bytes, tensors of at least this many.
_SLAB_MAX_BYTES = 1 << 20
_SLAB_MIN_BYTES = 1 << 23


def _slab_steps(shape: tuple[int, ...], sizes: list, modes: list[int],
                sparse: bool) -> tuple | None:
    """Steps of the products within one slab for :func:`_apply_slabs`, or None.

    The scheme applies to square dense factors on the leading ``d >= 3`` axes of
    a tensor with one trailing batch axis (``K @ X`` for a block ``X`` of right-hand
    sides), with slabs that stay in a core's cache and a tensor that does not.
    Measured on a 2-core AVX-512 machine with OpenBLAS (medians of 15-25
    interleaved runs, time against the standard scheme): 0.91-0.93x at d = 3,
    n = 32 with 64 and 128 right-hand sides (16 and 32 MiB), 0.97x at d = 3,
    n = 48 with 32 and at d = 4, n = 16 with 16; 1.02-1.03x (noise level) at
    d = 3 with n = 32 and 32, n = 64 and 8, n = 16 and 512.  The gain is small
    because the GEMMs themselves, with inner dimension n, run well below the
    machine's peak (a K = 32 GEMM reaches 92 GFLOP/s in cache, 70 from memory).
    """
    strategy = _STRATEGY[0]
    d = len(sizes)
    if strategy not in ("auto", "slabs") or sparse or d < 3 or len(shape) != d + 1:
        return None
    if list(modes) != list(range(d)) or any(m != n for m, n in sizes):
        return None
    slab = prod(shape[1:]) * 8  # bytes, for 8-byte items
    if strategy == "auto" and not (slab <= _SLAB_MAX_BYTES and slab * shape[0] >= _SLAB_MIN_BYTES):
        return None
    return tuple(_plan_steps(shape[1:], sizes[1:], list(range(d - 1)))[0])


def _apply_slabs(X: np.ndarray, mats: list, inner: tuple, shape_out: tuple,
                 dtype: np.dtype, out) -> np.ndarray:
    """Products along the leading axes of ``X`` (trailing batch axis) in two passes.

    Pass one runs the products along axes ``1 .. d-1`` slab by slab (``X[i]``),
    each slab staying in cache between its products; pass two is the product
    along axis 0, one GEMM over everything.  The standard scheme streams the
    whole tensor through memory once per axis, ``d`` times; this does it twice.
    """
    n0 = X.shape[0]
    T = _work_buffer(2, X.size, dtype)
    T = np.empty(X.shape, dtype=dtype) if T is None else T.reshape(X.shape)
    last = len(inner) - 1
    for i in range(n0):
        cur = X[i]
        for s, (j, p, n, q, m) in enumerate(inner):
            dst = T[i] if s == last else _work_buffer(s & 1, p * m * q, dtype)
            cur = _one_product(cur, mats[j + 1], p, n, q, m, dst)
    if out is None:
        out = np.empty(shape_out, dtype=dtype)
    rest = T.size // n0
    _one_product(T, mats[0], 1, n0, rest, mats[0].shape[0], out)
    return out


def _apply(X: np.ndarray, mats: list, modes: list[int], dtype: np.dtype, out=None) -> np.ndarray:
    """Apply ``mats[i]`` along ``modes[i]`` for all i; ``X`` and dense ``mats`` have ``dtype``."""
    if not mats:
        return X.copy()
    steps, shape_out, rotate, slabs = _make_plan(X.shape, mats, modes)
    if rotate and out is None:
        return _apply_rotating(X, mats, dtype, rotate == "front")
    cur = X if X.flags.c_contiguous else np.ascontiguousarray(X)
    if slabs:
        return _apply_slabs(cur, mats, slabs, shape_out, dtype, out)
    last = len(steps) - 1
    if out is None:
        out = np.empty(shape_out, dtype=dtype)
    for s, (i, p, n, q, m) in enumerate(steps):
        dst = out if s == last else _work_buffer(s & 1, p * m * q, dtype)
        cur = _one_product(cur, mats[i], p, n, q, m, dst)
    return out


# ---------------------------------------------------------------------- dtypes


def _result_dtype(*arrays: Any) -> np.dtype:
    return np.result_type(*[a.dtype for a in arrays])


def _cast(A: Any, dtype: np.dtype) -> Any:
    """Factor in ``dtype`` (dense: C- or F-contiguous so BLAS takes it without a copy)."""
    if _is_sparse(A):
        return A if A.dtype == dtype else A.astype(dtype)
    if A.dtype != dtype:
        return A.astype(dtype)
    return A


# ------------------------------------------------------------------- public API


def mode_product(X: Any, A: Any, mode: int, *, transpose: bool = False) -> np.ndarray:
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


def _resolve_modes(shape: tuple[int, ...], mats: list, modes, transpose: bool,
                   name: str = "X") -> tuple[list, list[int]]:
    """Check ``modes`` against ``shape`` and the matrices (any array library).

    Returns the matrices (transposed if asked) and the modes as 0-based axes.
    """
    ndim = len(shape)
    d = len(mats)
    if modes is None:
        if d > ndim:
            raise ValueError(
                f"got {d} matrices but {name} has only {ndim} dimension(s) (shape {shape})"
            )
        modes = list(range(ndim - d, ndim))
    else:
        modes = [_normalize_axis(k, ndim, f"modes[{i}]") for i, k in enumerate(modes)]
        if len(modes) != d:
            raise ValueError(f"got {d} matrices but {len(modes)} modes")
        if len(set(modes)) != d:
            raise ValueError(f"modes must be distinct, got {modes}")
    if transpose:
        mats = [A.T for A in mats]
    for i, (A, k) in enumerate(zip(mats, modes)):
        if A.shape[1] != shape[k]:
            what = f"mats[{i}].T" if transpose else f"mats[{i}]"
            raise ValueError(
                f"{what} has shape {tuple(A.shape)}, which does not match axis {k} of "
                f"{name} (shape {shape}): expected {A.shape[1]} == {shape[k]}"
            )
    return mats, modes


def _prepare(X: Any, mats: Sequence[Any], modes, transpose: bool, name: str = "X"):
    X = _as_array(X, name)
    if X.ndim == 0:
        raise ValueError(f"{name} must have at least one dimension, got a 0-d array")
    if isinstance(mats, np.ndarray) and mats.ndim == 2:
        raise TypeError("mats must be a sequence of matrices; wrap a single matrix in a list")
    mats = [_as_matrix(A, f"mats[{i}]") for i, A in enumerate(mats)]
    mats, modes = _resolve_modes(X.shape, mats, modes, transpose, name)
    return X, mats, modes


def multi_mode_product(
    X: Any,
    mats: Sequence[Any],
    modes: Sequence[int] | None = None,
    *,
    transpose: bool = False,
) -> np.ndarray:
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
    if type(X) is not np.ndarray and _is_foreign(X):  # PyTorch, CuPy, Dask...
        from ._generic import multi_mode_product as _mmp

        return _mmp(X, mats, modes, transpose=transpose)
    try:
        X, mats, modes = _prepare(X, mats, modes, transpose)
    except TypeError:
        if _foreign_seq(mats):  # NumPy X with factors of another library
            from ._generic import multi_mode_product as _mmp

            return _mmp(X, mats, modes, transpose=transpose)
        raise
    dtype = _result_dtype(X, *mats)
    mats = [_cast(A, dtype) for A in mats]
    return _apply(X.astype(dtype, copy=False), mats, modes, dtype)


def kron_matvec(factors: Sequence[Any], x: Any) -> np.ndarray:
    """Compute ``np.kron(A1, ..., Ad) @ x`` without forming the Kronecker product.

    PyTorch, CuPy and Dask inputs give a result of their kind (see :func:`kron`).

    Parameters
    ----------
    factors : sequence of (m_k, n_k) ndarrays or scipy.sparse matrices
        The Kronecker factors, in ``np.kron`` order.
    x : (N,) or (N, k) ndarray
        Vector or block of ``k`` column vectors, ``N = n_1 * ... * n_d``.

    Returns
    -------
    y : (M,) or (M, k) ndarray
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
    if type(x) is not np.ndarray and _is_foreign(x):  # PyTorch, CuPy, Dask...
        from ._generic import kron_matvec as _kmv

        return _kmv(factors, x)
    from ._kronproduct import kron

    x = _as_array(x, "x")
    if x.ndim not in (1, 2):
        raise ValueError(f"x must have shape (N,) or (N, k), got shape {x.shape}")
    if len(factors) == 0:
        raise ValueError("factors must hold at least one matrix, got an empty sequence")
    return kron(*factors) @ x
