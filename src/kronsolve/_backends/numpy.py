"""The NumPy backend: NumPy and SciPy with kronsolve's fast paths.

* Mode products run the shared plan (:mod:`._transform`) with ``np.matmul``
  writing into per-thread work buffers, so a call allocates only its result;
  scipy.sparse factors are served too.
* The fast diagonalization solve alternates between two arrays the size of
  the right-hand side (the result and one scratch array; ``B`` itself with
  ``overwrite_b=True``) and divides by the eigenvalue sums in cache-sized
  blocks, in two threads for large problems.
* Eigendecompositions: small symmetric ones call LAPACK directly or, once
  loaded, the compiled kernel of :mod:`kronsolve._smalleig`; distinct large
  factors decompose side by side in threads with one BLAS thread each.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import threading
import time
import warnings
import weakref
from math import prod
from typing import Any

import numpy as np

from .. import _fused, _smalleig
from .._eigsums import _BLOCK, _singular_tol, _sums
from .._validation import (
    _LAPACK_DTYPES,
    _as_array,
    _as_matrix,
    _check_dtype,
    _check_finite,
    _check_nbytes,
    _is_sparse,
    _not_finite,
)
from ._transform import _FRONT_MAX, plan, strategy, transform
from .base import Backend

__all__ = ["NUMPY", "NumpyBackend", "set_num_threads", "set_workspace_limit"]

# ------------------------------------------------------------------ buffers

_LOCAL = threading.local()
# Scratch arrays are kept between calls (per thread) only while all the threads'
# kept arrays together stay within this many bytes; beyond it they are allocated
# per call and freed when the call returns.
_DEFAULT_WORKSPACE_LIMIT = 64 << 20
_LIMIT: list = [None]  # resolved on first use (KRONSOLVE_WORKSPACE_LIMIT)
_HELD = [0]
_HELD_LOCK = threading.Lock()


def _workspace_limit() -> int:
    lim = _LIMIT[0]
    if lim is None:
        env = os.environ.get("KRONSOLVE_WORKSPACE_LIMIT", "").strip()
        try:
            lim = int(float(env)) if env else _DEFAULT_WORKSPACE_LIMIT
        except ValueError:
            warnings.warn(f"KRONSOLVE_WORKSPACE_LIMIT={env!r} is not a number of bytes; "
                          f"using {_DEFAULT_WORKSPACE_LIMIT}", RuntimeWarning, stacklevel=3)
            lim = _DEFAULT_WORKSPACE_LIMIT
        _LIMIT[0] = lim = max(0, lim)
    return lim


def _release(nbytes: int) -> None:
    with _HELD_LOCK:
        _HELD[0] -= nbytes


def set_workspace_limit(nbytes: int) -> int:
    """Bound the scratch memory that kronsolve keeps between calls; return the old bound.

    Mode products and solves reuse per-thread scratch arrays from one call to
    the next.  All threads' kept arrays together stay within ``nbytes``
    (default 64 MiB, or the environment variable ``KRONSOLVE_WORKSPACE_LIMIT``
    read at first use); a call that needs more allocates its scratch arrays
    itself and frees them on return.  ``0`` keeps nothing between calls.  The
    calling thread's kept arrays are released now.

    Parameters
    ----------
    nbytes : int
        The bound in bytes, ``>= 0``.

    Returns
    -------
    int
        The previous bound.

    Examples
    --------
    >>> import kronsolve as ks
    >>> old = ks.set_workspace_limit(0)      # keep nothing between calls
    >>> _ = ks.set_workspace_limit(old)      # back to the previous bound
    >>> old == ks.set_workspace_limit(old)
    True
    """
    nbytes = _check_nbytes(nbytes)
    old = _workspace_limit()
    _LIMIT[0] = int(nbytes)
    _LOCAL.bufs = [None, None, None]
    return old


# Calls whose new arrays take at least this many bytes check the available memory.
_MEMORY_CHECK_MIN = 1 << 28


def _available_memory() -> int | None:
    """Bytes of memory available to new allocations (Linux ``MemAvailable``), or None."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _check_memory(n: int, dtype: Any, what: str) -> None:
    """Raise MemoryError, before allocating, when ``n`` items of ``dtype`` cannot fit."""
    nbytes = n * np.dtype(dtype).itemsize
    if nbytes < _MEMORY_CHECK_MIN:
        return
    avail = _available_memory()
    if avail is not None and nbytes > avail:
        def size(b: int) -> str:
            return f"{b / (1 << 30):.2f} GiB" if b >= 1 << 30 else f"{b / (1 << 20):.1f} MiB"

        raise MemoryError(
            f"{what} needs {size(nbytes)} of new arrays ({n} items of "
            f"{np.dtype(dtype).name}: the result and one scratch array), but only "
            f"{size(avail)} of memory are available")


def _work_buffer(slot: int, size: int, dtype: np.dtype) -> np.ndarray | None:
    """A flat per-thread scratch array of ``size`` elements, reused across calls.

    None when keeping it would take the kept arrays of all threads past the
    workspace limit: the caller then allocates for this call only.
    """
    nbytes = size * dtype.itemsize
    bufs = getattr(_LOCAL, "bufs", None)
    if bufs is None:
        bufs = _LOCAL.bufs = [None, None, None]
    buf = bufs[slot]
    if buf is not None and buf.nbytes >= nbytes:
        return buf[:nbytes].view(dtype)
    want = max(nbytes, 4096)
    with _HELD_LOCK:
        old = 0 if buf is None else buf.nbytes
        if _HELD[0] - old + want > _workspace_limit():
            return None
        _HELD[0] += want  # released by the finalizer, when the array is freed
    bufs[slot] = None
    new = np.empty(want, dtype=np.uint8)
    weakref.finalize(new, _release, want)
    bufs[slot] = new
    return new[:nbytes].view(dtype)


# ------------------------------------------------------- transform primitives


_PACKED = "fused factors"  # the key of the packed factors in a plans memo
_PENDING = "pending"  # _fused_plan: the kernel would run, once compiled (GEMM meanwhile)
_FUSED_PLANS: dict[tuple, Any] = {}


def _fused_plan(X: np.ndarray, mats: list, modes: Any) -> Any:
    """The fused kernel's plan for this product, or None (GEMM schemes; see ``_fused``).

    Only for consecutive modes of dense factors in ``X``'s dtype, once the
    kernel is compiled for that dtype (until then the GEMM schemes run).
    """
    modes = tuple(modes)
    mode = strategy()
    key = (X.shape, tuple([A.shape for A in mats]), modes, X.dtype.char, mode)
    p = _FUSED_PLANS.get(key, False)
    if p is False:
        p = None
        b, g = modes[0], len(modes)
        if (mode in ("auto", "fused") and modes == tuple(range(b, b + g))
                and all(A.dtype == X.dtype for A in mats)):
            p = _fused.fused_plan(prod(X.shape[:b]), X.shape[b:b + g],
                                  tuple(A.shape[0] for A in mats), prod(X.shape[b + g:]),
                                  X.dtype.itemsize, force=mode == "fused")
            if p is not None:
                p = p._replace(shape_out=X.shape[:b] + tuple(A.shape[0] for A in mats)
                               + X.shape[b + g:])
        if len(_FUSED_PLANS) >= 512:
            _FUSED_PLANS.clear()
        _FUSED_PLANS[key] = p
    if p is not None and not _fused.ready(X.dtype, wait=mode == "fused"):
        return _PENDING
    return p


_PACKED_ITEMS: dict = {}  # id of the factors -> (weak references to them, packed factors)


def _packed_items(mats: list, wd: np.dtype) -> np.ndarray:
    """The solve's transforms packed for the per-item kernel, kept while the factors live.

    A solver's factors are the same arrays call after call: packing them once
    saves a copy of every factor per solve (a tenth of a small solve's time).
    """
    key = tuple(id(m[j]) for m in mats for j in (0, 1)) + (wd.char,)
    hit = _PACKED_ITEMS.get(key)
    if hit is not None and all(r() is m[j] for r, (m, j) in zip(
            hit[0], [(m, j) for m in mats for j in (0, 1)])):
        return hit[1]
    F = _fused.pack_items([m[0] for m in mats], [m[1] for m in mats], None, wd)
    if len(_PACKED_ITEMS) >= 32:
        _PACKED_ITEMS.clear()
    _PACKED_ITEMS[key] = ([weakref.ref(m[j]) for m in mats for j in (0, 1)], F)
    return F


def _fused_threads(flops: float) -> tuple[int, Any]:
    """Threads for a fused-kernel call of ``flops``, and the submit function for them."""
    if flops < _fused._THREADS_MIN_FLOPS:
        return 1, None
    n = _cores()
    return n, (_executor().submit if n > 1 else None)


def items_product(X: np.ndarray, mats: list, batch: tuple) -> np.ndarray | None:
    """``multi_mode_product`` with per-item factors by the fused kernel, or None.

    ``X`` is ``(..., n_1, …, n_d)``, ``mats[k]`` a stack ``(..., m_k, n_k)``, all
    in the working dtype, their batch dimensions broadcasting to ``batch``.
    None where the kernel does not apply (sparse or large factors, an item
    that is not one block, the kernel not compiled yet): stacked ``matmul`` then.
    """
    d = len(mats)
    ns = tuple(X.shape[X.ndim - d:])
    ms = tuple(A.shape[-2] for A in mats)
    E = prod(batch)
    if E == 0 or strategy() not in ("auto", "fused") or \
            not all(type(A) is np.ndarray and A.dtype == X.dtype for A in mats):
        return None
    p = _fused.fused_plan(E, ns, ms, 1, X.dtype.itemsize, force=True)
    if p is None or len(p.passes) != 1 or not _fused.ready(
            X.dtype, wait=strategy() == "fused"):
        return None
    F = _fused.pack(mats, X.dtype, batch)
    # broadcast_to gives a read-only view, which the kernel would copy again
    Xb = np.ascontiguousarray(X if X.shape == batch + ns else np.broadcast_to(X, batch + ns))
    threads, submit = _fused_threads(p.flops)
    return _fused.run(Xb, F, p, None, None, threads, submit,
                      fstride=F.size // E).reshape(batch + ms)


def _matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    return np.matmul(a, b, out=out)


def _product(cur: np.ndarray, A: Any, p: int, n: int, q: int, m: int,
             out: np.ndarray | None) -> np.ndarray:
    """``(p, n, q) -> (p, m, q)`` with ``A`` (shape (m, n)), one BLAS call; sparse too."""
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
    return np.matmul(A, cur.reshape(p, n, q), out=out)


def _apply_slabs(X: np.ndarray, mats: list, inner: tuple, shape_out: tuple,
                 dtype: np.dtype, out: np.ndarray | None) -> np.ndarray:
    """Products along the leading axes of ``X`` (trailing batch axis) in two passes.

    Pass one runs the products along axes ``1 .. d-1`` slab by slab (``X[i]``),
    each slab staying in cache between its products; pass two is the product
    along axis 0, one GEMM over everything: two trips through memory instead
    of ``d``.
    """
    n0 = X.shape[0]
    T = _work_buffer(2, X.size, dtype)
    T = np.empty(X.shape, dtype=dtype) if T is None else T.reshape(X.shape)
    last = len(inner) - 1
    for i in range(n0):
        cur = X[i]
        for s, (j, p, n, q, m) in enumerate(inner):
            dst = T[i] if s == last else _work_buffer(s & 1, p * m * q, dtype)
            cur = _product(cur, mats[j + 1], p, n, q, m,
                           None if dst is None else dst.reshape(p, m, q))
    if out is None:
        out = np.empty(shape_out, dtype=dtype)
    _product(T, mats[0], 1, n0, T.size // n0, mats[0].shape[0],
             out.reshape(1, mats[0].shape[0], -1))
    return out


# ------------------------------------------------------------------ dtypes


@functools.lru_cache(maxsize=256)
def _work_dtype_cached(dtypes: tuple) -> np.dtype:
    dt = np.result_type(*dtypes)
    if dt.kind in "biu":
        return np.dtype(np.float64)
    if dt == np.float16:
        return np.dtype(np.float32)
    if dt not in _LAPACK_DTYPES:
        raise TypeError(
            f"dtype {dt} is not supported: use float32, float64, complex64 or complex128"
        )
    return dt


@functools.lru_cache(maxsize=64)
def _complex_of(dt: np.dtype) -> np.dtype:
    return np.result_type(dt, np.complex64)


@functools.lru_cache(maxsize=64)
def _real_of(dt: np.dtype) -> np.dtype:
    return np.empty(0, dtype=dt).real.dtype


@functools.lru_cache(maxsize=64)
def _eps(dt: np.dtype) -> float:
    return float(np.finfo(dt).eps)


# ------------------------------------------------------ eigendecompositions

# Factor sizes whose eigendecompositions run with one BLAS thread.  LAPACK's
# eig/eigh on small matrices is a long chain of small level-2 BLAS calls; with a
# multi-threaded BLAS every call is a barrier, which waits for a time slice
# whenever another process holds a core.
_SMALL_LAPACK = (32, 512)
_BLAS_LIMITER: list = []
# The division by the eigenvalue sums uses two threads from this many entries.
_PARALLEL_DIVIDE = 1 << 18
# Distinct factors at least this large are decomposed in parallel threads.
_PARALLEL_MIN = 48
_EXECUTOR: list = []
_EXECUTOR_LOCK = threading.Lock()


def _executor() -> Any:
    """A small thread pool for independent eigendecompositions (created on first use)."""
    if not _EXECUTOR:
        with _EXECUTOR_LOCK:
            if not _EXECUTOR:
                from concurrent.futures import ThreadPoolExecutor

                workers = max(1, min(4, os.cpu_count() or 1))
                _EXECUTOR.append(ThreadPoolExecutor(workers, thread_name_prefix="kronsolve"))
    return _EXECUTOR[0]


def _blas_limit(n: int) -> Any:
    """Context manager that runs BLAS with at most ``n`` threads (threadpoolctl, if installed)."""
    if not _BLAS_LIMITER:
        try:
            import scipy.linalg  # noqa: F401  (load SciPy's BLAS so that it is covered too)
            from threadpoolctl import ThreadpoolController

            ctrl = ThreadpoolController().select(user_api="blas")
            _BLAS_LIMITER.append(lambda k: ctrl.limit(limits=k))
        except Exception:  # pragma: no cover - threadpoolctl missing or failing
            _BLAS_LIMITER.append(None)
    return contextlib.nullcontext() if _BLAS_LIMITER[0] is None else _BLAS_LIMITER[0](n)


def _single_blas_thread() -> Any:
    """Context manager that runs BLAS with one thread (via threadpoolctl, if installed)."""
    return _blas_limit(1)


# ---------------------------------------------------------------- thread policy
#
# Calls of at least _POLICY_MIN_FLOPS use as many threads (BLAS and kronsolve's
# own) as there are cores that other processes leave free: OpenBLAS partitions
# its work statically, so a thread that shares a core with a busy process makes
# the whole call wait (a solve took 6.3 ms with two threads against 3.75 ms with
# one, with one of two cores busy).  The other processes that are runnable are
# counted in /proc, at most every _POLICY_INTERVAL seconds.

_POLICY_MIN_FLOPS = 1e7
_POLICY_INTERVAL = 0.2
_POLICY: dict = {"user": None, "env": False, "free": None, "checked": -1.0, "sample": None,
                 "interval": _POLICY_INTERVAL}


def _ncpu() -> int:
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def _running_elsewhere() -> int | None:
    """Other processes running or runnable now (Linux ``/proc``), or None.

    This process is left out: its own threads (BLAS workers waiting for work
    among them) change state too often to be told apart from others' in a
    system-wide count.
    """
    me = os.getpid()
    n = 0
    try:
        names = os.listdir("/proc")
    except OSError:
        return None
    for name in names:
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                st = f.read()
        except OSError:
            continue
        i = st.rfind(b")")
        if st[i + 2:i + 3] == b"R":
            n += 1
    return n


def _user_threads() -> int | None:
    if not _POLICY["env"]:
        _POLICY["env"] = True
        env = os.environ.get("KRONSOLVE_NUM_THREADS", "").strip()
        if env and _POLICY["user"] is None:
            try:
                _POLICY["user"] = max(1, int(env))
            except ValueError:
                warnings.warn(f"KRONSOLVE_NUM_THREADS={env!r} is not a whole number; "
                              "ignored", RuntimeWarning, stacklevel=4)
    return _POLICY["user"]


def _free_cores() -> int:
    """The cores that other processes leave free (looked at most every _POLICY_INTERVAL).

    A core counts as taken when another process's thread was runnable at this
    look and at the one before (a thread that passes does not count).
    """
    now = time.monotonic()
    free = _POLICY["free"]
    if free is not None and now - _POLICY["checked"] <= _POLICY["interval"]:
        return free
    ncpu = _ncpu()
    t0 = time.monotonic()
    others = _running_elsewhere()
    # a machine with many processes is looked at less often (at most 2% of the time)
    _POLICY["interval"] = max(_POLICY_INTERVAL, 50 * (time.monotonic() - t0))
    last = _POLICY["sample"]
    _POLICY["sample"] = others
    if others is None or last is None:
        free = ncpu
    else:
        free = max(1, ncpu - min(others, last))
    _POLICY["free"], _POLICY["checked"] = free, now
    return free


def _cores() -> int:
    """How many threads kronsolve's own parallel sections may use now."""
    user = _user_threads()
    return user if user is not None else _free_cores()


def _call_threads(flops: float) -> Any:
    """The thread limit of a call of ``flops`` floating-point operations (a context)."""
    if flops < _POLICY_MIN_FLOPS:
        return contextlib.nullcontext()
    n = _cores()
    if n >= _ncpu() and _user_threads() is None:
        return contextlib.nullcontext()  # all cores free: BLAS as configured
    return _blas_limit(n)


def set_num_threads(n: int | None) -> int | None:
    """Set how many threads kronsolve's calls use; return the previous setting.

    ``None`` (the default) chooses per call: calls of at least about 1e7
    floating-point operations use as many threads (BLAS's and kronsolve's own)
    as there are cores that other processes leave free at that moment, so that
    a busy core does not hold the whole call back; smaller calls run as BLAS
    decides.  An integer ``n >= 1`` caps every such call at ``n`` threads (as
    ``threadpoolctl.threadpool_limits`` would, but only inside kronsolve).  The
    environment variable ``KRONSOLVE_NUM_THREADS``, read at first use, sets the
    initial value.

    Examples
    --------
    >>> import kronsolve as ks
    >>> old = ks.set_num_threads(1)     # one thread inside kronsolve's calls
    >>> ks.set_num_threads(old)         # back to the previous setting
    1
    """
    if n is not None:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
            raise TypeError(f"n must be a positive int or None, got {type(n).__name__}")
        if n < 1:
            raise ValueError(f"n must be >= 1 or None, got {n}")
        n = int(n)
    old = _user_threads()
    _POLICY["user"] = n
    return old


def _eigh(A: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """``eigh`` of a float64/complex128 matrix, by the fastest tier for its size.

    Real matrices of at most 32 rows go to the compiled kernel of
    :mod:`kronsolve._smalleig` once it is loaded, other small ones to SciPy's
    LAPACK wrapper directly (NumPy's costs more than the call itself there);
    larger ones go through NumPy, whose wrapper releases the GIL so that
    independent factors decompose side by side in threads.
    """
    if A.shape[0] > _FRONT_MAX:
        try:
            return np.linalg.eigh(A, UPLO="L")
        except np.linalg.LinAlgError:
            raise np.linalg.LinAlgError(
                f"the eigendecomposition of {name} (shape {A.shape}) did not converge"
            ) from None
    if A.dtype == np.float64 and A.shape[0] <= _smalleig._MAX_N:
        res = _smalleig.small_eigh(A)  # the compiled tier, once loaded
        if res is not None:
            return res
        from scipy.linalg import lapack  # noqa: F401  (loaded outside the timing)

        t0 = time.perf_counter()
        res = _lapack_eigh(A, name)
        _smalleig.note_lapack(time.perf_counter() - t0)
        return res
    return _lapack_eigh(A, name)


def _lapack_eigh(A: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """LAPACK ``syevd``/``heevd`` through SciPy's wrapper (small matrices)."""
    from scipy.linalg import lapack

    if A.dtype == np.float64 and A.flags.c_contiguous:
        # the same matrix in Fortran order without the wrapper's copy: the upper
        # triangle of Aᵀ is the lower triangle of A
        lam, Q, info = lapack.dsyevd(A.T, compute_v=1, lower=0)
    else:
        fn = lapack.dsyevd if A.dtype == np.float64 else lapack.zheevd
        lam, Q, info = fn(A, compute_v=1, lower=1)
    if info != 0:
        raise np.linalg.LinAlgError(
            f"the eigendecomposition of {name} (shape {A.shape}) did not converge "
            f"(LAPACK info {info})"
        )
    return lam, Q


# ----------------------------------------------------------------- backend

_F64 = np.dtype(np.float64)


class NumpyBackend(Backend):
    """NumPy and SciPy (the default backend; scipy.sparse factors, fast paths)."""

    name = "numpy"
    xp = np
    lazy = False

    def __init__(self) -> None:
        self.host = self

    # --- arrays ------------------------------------------------------------
    def asarray(self, a: Any, name: str, like: Any = None) -> np.ndarray:
        return _as_array(a, name)

    def matrix(self, a: Any, name: str, like: Any = None) -> Any:
        return _as_matrix(a, name)

    def to_host(self, a: Any) -> np.ndarray:
        return np.asarray(a)

    def from_host(self, a: Any, like: Any = None) -> np.ndarray:
        return a

    def dense(self, A: Any) -> np.ndarray:
        """A dense copy of a scipy.sparse factor (dense ones as they are)."""
        return np.asarray(A.toarray()) if _is_sparse(A) else A

    def all_finite(self, a: Any) -> bool:
        data = a.data if _is_sparse(a) else a
        if data.dtype.kind not in "fc":
            return True
        if data.size and data.flags.c_contiguous:
            # one BLAS dot product: finite whenever every entry is (the exact test
            # decides on inf, NaN or overflow)
            v = data.reshape(-1)
            if np.isfinite(np.vdot(v, v)):
                return True
        return bool(np.isfinite(data).all())

    def check_finite(self, a: Any, name: str) -> Any:
        if not self.all_finite(a):
            raise _not_finite(name)
        return a

    def result_type(self, *arrays: Any) -> np.dtype:
        return np.result_type(*[a.dtype if hasattr(a, "dtype") else a for a in arrays])

    def work_dtype(self, *dtypes: Any, name: str = "input") -> np.dtype:
        try:
            return _work_dtype_cached(dtypes)
        except TypeError as exc:
            raise TypeError(f"{name}: {exc}") from None

    def is_complex(self, dtype: Any) -> bool:
        return np.dtype(dtype).kind == "c"

    def complex_of(self, dtype: Any) -> np.dtype:
        return _complex_of(np.dtype(dtype))

    def real_of(self, dtype: Any) -> np.dtype:
        return _real_of(np.dtype(dtype))

    def eps(self, dtype: Any) -> float:
        return _eps(np.dtype(dtype))

    def double(self, complex_: bool) -> np.dtype:
        return np.dtype(np.complex128 if complex_ else np.float64)

    def numpy_dtype(self, dtype: Any) -> np.dtype:
        return np.dtype(dtype)

    def from_numpy_dtype(self, dtype: np.dtype) -> np.dtype:
        return dtype

    def astype(self, a: Any, dtype: Any) -> Any:
        return a if a.dtype == dtype else a.astype(dtype)

    def zeros(self, shape: tuple, dtype: Any, like: Any = None) -> np.ndarray:
        return np.zeros(shape, dtype=dtype)

    def eye(self, n: int, dtype: Any, like: Any = None) -> np.ndarray:
        return np.eye(n, dtype=dtype)

    def swapaxes(self, a: Any, i: int, j: int) -> np.ndarray:
        return np.swapaxes(a, i, j)

    # --- tensors -----------------------------------------------------------
    def modeprod(self, X: np.ndarray, mats: list, modes: list[int], out: Any = None,
                 trans: Any = None, plans: dict | None = None) -> np.ndarray:
        if plans is not None:  # the caller's memo of plans per tensor shape (fixed factors)
            p = plans.get(X.shape)
            if p is not None:
                if type(p) is _fused.FusedPlan:
                    return self._run_fused(X, mats, p, out, plans)
                return self.run(X, mats, p, out, trans)
        if not mats:
            return X.copy()
        dense = True
        for A in mats:
            if type(A) is not np.ndarray:
                dense = False
        p = _fused_plan(X, mats, modes) if dense else None
        pending = p is _PENDING
        if p is None or pending:
            p = plan(X.shape, tuple([A.shape for A in mats]), tuple(modes), dense=dense,
                     slabs_ok=True, itemsize=X.dtype.itemsize)
        if plans is not None and not pending:  # asked again once the kernel is compiled
            if len(plans) > 16:
                plans.clear()
            plans[X.shape] = p
        if type(p) is _fused.FusedPlan:
            return self._run_fused(X, mats, p, out, plans)
        return self.run(X, mats, p, out, trans)

    def _run_fused(self, X: np.ndarray, mats: list, p: Any, out: Any,
                   plans: dict | None) -> np.ndarray:
        """Run the fused kernel's plan ``p`` (the packed factors memoized in ``plans``)."""
        F = None if plans is None else plans.get(_PACKED)
        if F is None or F.dtype is not X.dtype:
            F = _fused.pack(mats, X.dtype)
            if plans is not None:
                plans[_PACKED] = F
        cur = X if X.flags.c_contiguous else np.ascontiguousarray(X)
        direct = out is not None and out.flags.c_contiguous and not np.may_share_memory(out, cur)
        if not direct and (p.size_out + p.tmp) * X.dtype.itemsize >= _MEMORY_CHECK_MIN:
            _check_memory(p.size_out + p.tmp, X.dtype,
                          f"the product of a tensor of shape {X.shape}")
        tmp = _work_buffer(0, p.tmp, X.dtype) if p.tmp else None
        threads, submit = _fused_threads(p.flops)
        Y = _fused.run(cur, F, p, out if direct else None, tmp, threads,
                       submit).reshape(p.shape_out)
        if out is not None and not direct:
            out[...] = Y
            return out
        return Y

    def run(self, X: np.ndarray, mats: list, p: Any, out: Any = None,
            trans: Any = None) -> np.ndarray:
        """Run the plan ``p`` (from :func:`._transform.plan`) on ``X``."""
        flops = 2.0 * X.size * sum(A.shape[0] for A in mats)
        if flops < _POLICY_MIN_FLOPS:
            return self._run(X, mats, p, out, trans)
        with _call_threads(flops):
            return self._run(X, mats, p, out, trans)

    def _run(self, X: np.ndarray, mats: list, p: Any, out: Any = None,
             trans: Any = None) -> np.ndarray:
        dtype = X.dtype
        if X.size == 0 or 0 in p.shape_out:
            if out is None:
                return np.zeros(p.shape_out, dtype=dtype)
            out[...] = 0
            return out
        cur = X if X.flags.c_contiguous else np.ascontiguousarray(X)
        if p.scheme == "slabs":
            return _apply_slabs(cur, mats, p.slabs, p.shape_out, dtype, out)
        if p.scheme == "front" and trans is None:
            trans = [np.ascontiguousarray(A.T) for A in mats]
        last = len(mats) - 1
        # The steps alternate between the result and one scratch array, ending in
        # the result: the peak is the result plus one scratch array (a second only
        # for an intermediate larger than the result).
        if out is None or np.may_share_memory(out, cur):
            _check_memory(prod(p.shape_out) * (2 if last else 1), dtype,
                          f"the product of a tensor of shape {X.shape}")
            res = np.empty(p.shape_out, dtype=dtype) if last else None
        else:
            res = out
        res_flat = None if res is None else res.reshape(-1)
        size_out = prod(p.shape_out)

        def dest(s: int, shape: tuple) -> np.ndarray | None:
            n = prod(shape)
            if (last - s) % 2 == 0:
                if s == last:
                    if res_flat is not None:
                        return res_flat.reshape(shape)
                    return None if out is None else out.reshape(shape)
                if res_flat is not None and n <= size_out:
                    return res_flat[:n].reshape(shape)
                slot = 1
            else:
                slot = 0
            buf = _work_buffer(slot, n, dtype)
            return None if buf is None else buf.reshape(shape)

        Y = transform(cur, mats, p, _matmul, _product, dest, trans)
        if out is not None and Y is not out and not np.may_share_memory(Y, out):
            out[...] = Y.reshape(out.shape)
            return out
        return Y

    def modesum(self, X: np.ndarray, mats: list, modes: list[int]) -> np.ndarray:
        X = X if X.flags.c_contiguous else np.ascontiguousarray(X)
        out = self.modeprod(X, [mats[0]], [modes[0]])
        if len(mats) > 1:
            tmp = np.empty_like(out)
            for A, k in zip(mats[1:], modes[1:]):
                out += self.modeprod(X, [A], [k], out=tmp)
        return out

    def prepare_factors(self, factors: tuple, dtype: np.dtype, N: int) -> tuple:
        """Factors of a product in ``dtype`` with small neighbours merged.

        Adjacent dense factors whose merged size stays small are replaced by
        their ``np.kron``: few or no extra flops, and whole passes (BLAS calls)
        over the tensor saved.  Returns ``(mats, column sizes, transposes)``.
        """
        limit = 64 if N <= 1024 else 16 if N <= 16384 else 8
        if strategy() == "fused" or (
                strategy() == "auto"
                and max(max(A.shape) for A in factors) <= _fused._MAX_ORDER
                and _fused.ready(dtype)):
            limit = 0  # the fused kernel makes one or two passes whatever d: no merging
        merged: list[Any] = []
        for A in factors:
            A = A if A.dtype == dtype else A.astype(dtype)
            prev = merged[-1] if merged else None
            if (prev is not None and not _is_sparse(A) and not _is_sparse(prev)
                    and prev.shape[0] * A.shape[0] <= limit
                    and prev.shape[1] * A.shape[1] <= limit):
                merged[-1] = np.kron(prev, A)
            else:
                merged.append(A)
        mats = tuple(A if _is_sparse(A) or A.flags.forc else np.ascontiguousarray(A)
                     for A in merged)
        trans = None
        if not any(_is_sparse(A) for A in mats):
            trans = tuple(np.ascontiguousarray(A.T) for A in mats)
        return mats, tuple(A.shape[1] for A in mats), trans

    def transposes(self, A: np.ndarray) -> np.ndarray | None:
        """The contiguous ``Aᵀ`` that the front scheme multiplies by (small factors)."""
        return np.ascontiguousarray(A.T) if A.shape[0] <= _FRONT_MAX else None

    # --- the fast diagonalization solve ------------------------------------
    def fdm(self, B: np.ndarray, mats: list, lams: list, shift: Any, wd: np.dtype,
            out_dt: np.dtype, overwrite_b: bool, d: int, middle: Any = None) -> np.ndarray:
        """Transform, divide by the eigenvalue sums, transform back.

        ``mats[k]`` is ``(fwd, bwd, fwdᵀ, bwdᵀ)`` of mode ``k`` in ``wd``, ``lams``
        the eigenvalues in the dtype of the division.  The ``2d`` steps alternate
        between ``R`` (returned) and one scratch array ``S``.  ``middle(Y, b)``,
        when given, replaces the division: it solves in place for the
        transformed tensor ``Y`` (C-contiguous, ``b`` leading batch axes).
        """
        ns = B.shape[B.ndim - d:]
        in_place = (overwrite_b and B.dtype == wd and B.flags.c_contiguous
                    and B.flags.writeable)
        core = prod(ns)
        nb = B.size // core
        # the result and one scratch array (a problem at a time or all together)
        _check_memory((0 if in_place else B.size) + (core if nb == 1 or core >= _ROTATE_MIN
                                                      else B.size),
                      wd, f"the solve of a right-hand side of shape {B.shape}")
        if in_place:
            R = src = B
        else:
            R = np.empty(B.shape, dtype=wd)
            if B.dtype == wd and B.flags.c_contiguous:
                src = B
            else:
                R[...] = B
                src = R
        sizes = tuple((n, n) for n in ns)
        if middle is None and self._fdm_fused(src, R, mats, lams, shift, wd, ns, nb):
            pass
        elif nb == 1 or core >= _ROTATE_MIN:
            # one problem at a time, by the plan of a full transform
            p = plan(ns, sizes, tuple(range(d)), itemsize=wd.itemsize)
            S = _work_buffer(0, core, wd)
            S = np.empty(core, dtype=wd) if S is None else S
            src_f = src.reshape(nb, core)
            R_f = R.reshape(nb, core)
            for i in range(nb):
                self._fdm_one(src_f[i], (S, R_f[i]), p, mats, lams, shift, 0, middle)
        else:
            # many small problems together, one batched product per mode
            shape = (nb,) + ns
            p = plan(shape, sizes, tuple(range(1, d + 1)), itemsize=wd.itemsize)
            S = _work_buffer(0, B.size, wd)
            S = np.empty(B.size, dtype=wd) if S is None else S
            self._fdm_one(src.reshape(shape), (S, R.reshape(-1)), p, mats, lams, shift, 1,
                          middle)
        if wd != out_dt:  # complex arithmetic for a real problem
            if overwrite_b and B.dtype == out_dt and B.flags.c_contiguous and B.flags.writeable:
                np.copyto(B, R.real)
                return B
            return np.ascontiguousarray(R.real)
        return R

    def _fdm_fused(self, src: np.ndarray, R: np.ndarray, mats: list, lams: list, shift: Any,
                   wd: np.dtype, ns: tuple, nb: int) -> bool:
        """The solve by the fused kernel, each problem in cache (False: not applicable).

        Problems that fit in a block go through the per-item kernel (transform,
        divide, transform back while in cache), the factors shared by all.
        """
        if strategy() not in ("auto", "fused") or not all(
                type(m[0]) is np.ndarray for m in mats):
            return False
        forced = strategy() == "fused"
        ip = _fused.items_plan(ns, wd.itemsize)
        if ip is None or not (forced or _fused.items_win(ns, nb)) or not _fused.ready(
                wd, kind=1, wait=forced):
            return False
        F = _packed_items(mats, wd)
        lam = np.concatenate([lam.astype(wd, copy=False) for lam in lams])
        lam[:ns[0]] += shift
        threads, submit = _fused_threads(4.0 * nb * ip.N * sum(ns))
        _fused.run_items(src.reshape(nb, -1), F, lam[None], ip, threads, submit,
                         out=R.reshape(nb, -1), shared=True)
        return True

    def _fdm_one(self, src: np.ndarray, bufs: tuple, p: Any, mats: list, lams: list,
                 shift: Any, b: int, middle: Any = None) -> None:
        """Both transforms and the division of one tensor, ending in ``bufs[1]``."""

        def dest(s: int, shape: tuple) -> np.ndarray:
            return bufs[s & 1].reshape(shape)  # square factors: every step fills a buffer

        d = len(mats)
        front = p.scheme == "front"
        fwd = [m[0] for m in mats]
        cur = transform(src, fwd, p, _matmul, _product, dest,
                        [m[2] for m in mats] if front else None, 0)
        if middle is None:
            self.divide(cur, lams, shift, b, bufs[d & 1])
        else:
            middle(cur, b)
        transform(cur, [m[1] for m in mats], p, _matmul, _product, dest,
                  [m[3] for m in mats] if front else None, d)

    def divide(self, Y: np.ndarray, lams: list, shift: Any, b: int, free: Any) -> np.ndarray:
        """``Y /= λ1[i1] + ... + λd[id] + shift`` in blocks, with workspace ``free``."""
        d = len(lams)
        dd = lams[0].dtype
        ns = tuple(lam.shape[0] for lam in lams)
        if d == 1:
            np.divide(Y, lams[0] + shift, out=Y)
            return Y
        flat = free.reshape(-1)
        work = flat if flat.dtype == dd else flat.view(np.uint8).view(dd)
        cap = work.shape[0]
        N = prod(ns)
        if N <= _BLOCK:
            # a single block holds every sum
            den = _sums(lams, shift, out=work[:N].reshape(ns))
            np.divide(Y, den, out=Y)
            return Y
        n1 = ns[0]
        m = prod(ns[1:])
        rest = work[:m].reshape(ns[1:])
        _sums(lams[1:], shift, out=rest)
        lead = (slice(None),) * b
        if n1 == 1:
            rest += lams[0][0]
            Yi = Y[lead + (0,)]
            np.divide(Yi, rest, out=Yi)
            return Y
        lam1 = lams[0]
        # large problems: two threads (NumPy releases the GIL), each with its own
        # block of sums in the idle buffer
        nthreads = 2 if (Y.size >= _PARALLEL_DIVIDE and n1 >= 4 and cap >= 5 * m
                         and _cores() > 1) else 1
        c = max(1, min(n1, _BLOCK // max(m, 1), (cap // max(m, 1) - 1) // nthreads))

        def run(t: int, lo: int, hi: int) -> None:
            base = m + t * c * m
            for i0 in range(lo, hi, c):
                i1 = min(hi, i0 + c)
                den = work[base: base + (i1 - i0) * m].reshape((i1 - i0,) + ns[1:])
                for j in range(i1 - i0):  # scalar + contiguous: no iterator buffers
                    np.add(rest, lam1[i0 + j], out=den[j])
                Yi = Y[lead + (slice(i0, i1),)]
                np.divide(Yi, den, out=Yi)

        if nthreads == 1:
            run(0, 0, n1)
        else:
            half = n1 // 2
            other = _executor().submit(run, 1, half, n1)
            run(0, 0, half)
            other.result()
        return Y

    def solve_small(self, B: Any, mats: list, shift: Any, check_finite: bool) -> Any:
        """The one-shot solve of a small, real, symmetric, definite problem, or None.

        The common case of the one-shot solvers at sizes where Python overhead
        rivals the arithmetic: float64 C-contiguous ``B`` with no batch
        dimensions, exactly symmetric float64 factors of at most ``_FRONT_MAX``
        rows, a real ``shift`` and a definite sum.  The same operations as the
        general path (the same ``eigh``, plan and sums), so the same result;
        anything else, and any input that would raise, returns None and goes the
        general way, which gives the errors and warnings.
        """
        if (type(B) is not np.ndarray or B.dtype != _F64 or not B.flags.c_contiguous
                or B.size > _SMALL_N or B.ndim != len(mats) or not B.size
                or (type(shift) is not float and type(shift) is not int)
                or not math.isfinite(shift)):
            return None
        shape = B.shape
        lams: list = []
        trans: list = []  # (Qᵀ, Q) contiguous: the right operands of the two transforms
        lo = hi = float(shift)
        scale = abs(shift)
        for k, A in enumerate(mats):
            for j in range(k):
                if mats[j] is A:
                    if shape[j] != shape[k]:
                        return None  # B does not match: the general path explains
                    lams.append(lams[j])
                    trans.append(trans[j])
                    break
            else:
                if (type(A) is not np.ndarray or A.dtype != _F64 or A.ndim != 2
                        or A.shape[0] != shape[k] or A.shape[1] != shape[k]
                        or shape[k] > _FRONT_MAX):
                    return None
                # exact symmetry, bit for bit; NaN entries that pass give NaN
                # eigenvalues or a failed eigh, caught below
                if A.tobytes() != A.T.tobytes():
                    return None
                try:
                    lam, Q = _eigh(A, f"mats[{k}]")
                except np.linalg.LinAlgError:
                    return None
                lams.append(lam)
                Q = np.ascontiguousarray(Q)
                trans.append((Q, np.ascontiguousarray(Q.T)))
            lam = lams[k]
            lo += float(lam[0])
            hi += float(lam[-1])
            scale += max(abs(float(lam[0])), abs(float(lam[-1])))
        tol = _singular_tol(_eps(_F64), len(mats), scale)
        if not (lo > tol or hi < -tol):
            return None  # maybe singular (or not finite): the general path explains
        if check_finite:
            v = B.reshape(-1)
            if not math.isfinite(np.vdot(v, v)):
                return None
        # fwd = Qᵀ (its transpose, the front operand, is Q), bwd = Q (operand Qᵀ)
        modes = [(t[1], t[0], t[0], t[1]) for t in trans]
        p = plan(shape, tuple((n, n) for n in shape), tuple(range(len(shape))))
        N = B.size
        S, R = np.empty(N), np.empty(N)
        if not self._fdm_fused(B, R, modes, lams, shift, _F64, shape, 1):
            self._fdm_one(B, (S, R), p, modes, lams, shift, 0)
        # an inf in a symmetric factor gives NaN eigenvalues or a failed eigh; should
        # one slip through, it shows in the result (and an overflow from finite
        # input is recomputed by the general path)
        if check_finite and not math.isfinite(np.vdot(R, R)):
            return None
        return R.reshape(shape)

    # --- decompositions ------------------------------------------------------
    def eigh(self, A: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
        return _eigh(A, name)

    def eigh_pencil(self, K: np.ndarray, M: np.ndarray, mname: str,
                    mshape: tuple) -> tuple[np.ndarray, np.ndarray]:
        from scipy.linalg import eigh

        try:
            return eigh(K, M, check_finite=False)
        except np.linalg.LinAlgError:
            raise np.linalg.LinAlgError(
                f"{mname} (shape {mshape}) must be symmetric (Hermitian) positive "
                "definite, but its Cholesky factorization failed"
            ) from None

    def eig(self, K: np.ndarray, M: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        if M is None:
            return np.linalg.eig(K)
        from scipy.linalg import eig

        return eig(K, M, check_finite=False)

    def inv(self, A: np.ndarray) -> np.ndarray | None:
        """Inverse, or None when ``A`` is singular."""
        try:
            return np.linalg.inv(A)
        except np.linalg.LinAlgError:
            return None

    def is_hermitian(self, A: np.ndarray, eps: float) -> bool:
        """``A`` equals its conjugate transpose up to a few rounding errors."""
        n = A.shape[0]
        if n <= 1:
            return A.dtype.kind != "c" or n == 0 or A[0, 0].imag == 0
        if np.array_equal(A, A.conj().T):  # exactly (the common case): no norms
            return True
        # scaled to a largest entry of 1 first: the norms neither overflow nor underflow
        big = float(np.max(np.abs(A)))
        if not big > 0 or not np.isfinite(big):
            return False
        As = A / big
        nrm = np.linalg.norm(As)
        return bool(np.linalg.norm(As - As.conj().T) <= 8.0 * np.sqrt(n) * eps * nrm)

    def equal(self, A: Any, B: Any) -> bool:
        return bool(np.array_equal(A, B))

    def norm(self, A: Any, ord: Any = None) -> float:
        return float(np.linalg.norm(A, ord))

    def decompose_all(self, jobs: list, decompose: Any) -> tuple[list, int]:
        """``decompose(*job)`` for every job; side by side in threads where it pays."""
        nmax = max(job[0].shape[0] for job in jobs)
        limit = _SMALL_LAPACK[0] <= nmax <= _SMALL_LAPACK[1]
        flops = 0
        with _single_blas_thread() if limit else contextlib.nullcontext():
            if limit and len(jobs) > 1 and nmax >= _PARALLEL_MIN and _BLAS_LIMITER[0]:
                # one BLAS thread each, the factors side by side (LAPACK drops the GIL)
                results = list(_executor().map(lambda job: decompose(*job), jobs))
                flops = sum(9 * job[0].shape[0] ** 3 for job in jobs)
            else:
                results = [decompose(*job) for job in jobs]
        return results, flops

    def one_thread(self) -> Any:
        """Context manager: BLAS with one thread (for solves after parallel decompositions)."""
        return _single_blas_thread()

    def threads(self, flops: float) -> Any:
        """Context manager: the thread policy of a call of ``flops`` operations."""
        return _call_threads(flops)

    # --- dense algebra of factors ------------------------------------------
    def kron(self, a: Any, b: Any) -> np.ndarray:
        return np.kron(self.dense(a), self.dense(b))

    def trace(self, A: Any) -> Any:
        return self.dense(A).trace()

    def diagonal(self, A: Any) -> np.ndarray:
        return np.diagonal(self.dense(A))

    def slogdet(self, A: Any) -> tuple[Any, Any]:
        return np.linalg.slogdet(self.dense(A))

    def eigvals(self, A: Any) -> np.ndarray:
        return np.linalg.eigvals(self.dense(A))

    def eigvalsh(self, A: Any) -> np.ndarray:
        return np.linalg.eigvalsh(self.dense(A))

    def matrix_norm(self, A: Any, ord: Any) -> Any:
        return np.linalg.norm(self.dense(A), ord)

    def take2(self, A: Any, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        return self.dense(A)[rows, cols]

    def lu_factor(self, A: Any) -> Any:
        """LU factors of a square factor, or None when it is singular."""
        from scipy.linalg import lu_factor

        A = self.dense(A)
        if A.dtype.kind not in "fc":
            A = A.astype(np.result_type(A.dtype, np.float64))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # singularity is reported by the caller
            lu, piv = lu_factor(A, check_finite=False)
        diag = np.abs(np.diagonal(lu))
        if A.shape[0] and (diag.min() == 0 or not np.isfinite(diag).all()):
            return None
        return lu, piv

    def lu_solve(self, lu: Any, B: np.ndarray) -> np.ndarray:
        from scipy.linalg import lu_solve

        return lu_solve(lu, B, check_finite=False)

    def lu_dtype(self, lu: Any) -> np.dtype:
        return lu[0].dtype

    def check_numeric(self, A: Any, name: str) -> None:
        _check_dtype(A.dtype, name)

    def finite_or_raise(self, A: Any, name: str) -> None:
        _check_finite(A, name)


# one-shot solves of at most this many unknowns take ``solve_small``
_SMALL_N = 1 << 15
# batched right-hand sides at least this large per problem are solved one by one
_ROTATE_MIN = 1 << 12

NUMPY = NumpyBackend()
