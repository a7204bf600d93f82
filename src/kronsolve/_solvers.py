"""Kronecker-sum (tensor Sylvester) solvers: the fast diagonalization method.

The equation ``X ×₁ A1 + X ×₂ A2 + ... + X ×_d Ad + shift·X = B`` is the linear
system ``(A1 ⊕ A2 ⊕ ... ⊕ Ad + shift·I) vec(X) = vec(B)`` (C order, ``np.kron``
ordering).  With ``A_k = V_k Λ_k V_k⁻¹`` it is solved by

1. the forward transform ``Y = B ×₁ V1⁻¹ ×₂ V2⁻¹ ... ×_d Vd⁻¹`` (``V⁻¹ = Vᵀ``
   or ``Vᴴ`` for symmetric or Hermitian factors),
2. the division ``Y[i1, ..., id] /= λ1[i1] + ... + λd[id] + shift``,
3. the backward transform ``X = Y ×₁ V1 ... ×_d Vd``,

at ``O(N · Σ n_k)`` flops for ``N = Π n_k`` unknowns instead of ``O(N³)``.  The
two transforms are ``2d`` single-mode products (plain GEMMs that rotate the
axes) that alternate between two buffers the size of ``B``: the result and one
scratch array (``B`` itself with ``overwrite_b=True``).  The division runs in
cache-sized blocks of at most 65536 eigenvalue sums, written into whichever
buffer is idle at that moment: for larger problems the tensor of all ``N``
sums is never formed, and no other array of ``B``'s size is ever allocated.
"""

from __future__ import annotations

import contextlib
import functools
import math
import numbers
import os
import threading
import time
import warnings
from collections.abc import Sequence
from math import prod
from typing import Any

import numpy as np

from . import _smalleig
from ._backend import _foreign_seq, _is_foreign
from ._modeprod import _apply, _work_buffer
from ._validation import _as_array, _as_matrix, _check_finite, _is_sparse

__all__ = ["KronSumSolver", "solve_kronsum", "solve_sylvester", "solve_sylvester3d"]

# A factor whose eigenvector basis has a (1-norm) condition number above this is
# reported with a RuntimeWarning.
_COND_WARN = 1e8
# Eigenvalue sums are formed and divided by in blocks of about this many entries.
_BLOCK = 1 << 16
# Batched right-hand sides at least this large per problem are solved one by one
# with the rotating GEMM scheme; smaller ones together with batched products.
_ROTATE_MIN = 1 << 12
# Factors up to this size are applied as ``cur.reshape(n, rest).T @ Aᵀ`` (front
# rotation, the transposed factor contiguous on the right): the fastest layout of
# OpenBLAS for small inner dimensions (n = 16: 3.4 against 5.6 µs for the
# back-rotating ``A @ cur.reshape(rest, n).T``); larger ones rotate from the back.
_FRONT_MAX = 32
_ASSUME_A = ("auto", "sym", "gen")
_LAPACK_DTYPES = tuple(np.dtype(t) for t in (np.float32, np.float64, np.complex64, np.complex128))


# ------------------------------------------------------------------ dtypes


def _work_dtype(*dtypes: Any) -> np.dtype:
    """Floating dtype that LAPACK handles for the given input dtypes."""
    return _work_dtype_cached(dtypes)  # dtypes and scalar types are hashable


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


def _is_complex_scalar(x: Any) -> bool:
    return isinstance(x, complex | np.complexfloating)


def _check_shift(shift: Any) -> Any:
    if type(shift) is float or type(shift) is int:  # the common case, quickly
        if math.isfinite(shift):
            return shift
        raise ValueError(f"shift must be finite, got {shift}")
    if isinstance(shift, np.ndarray) and shift.ndim == 0:
        shift = shift[()]
    if not isinstance(shift, numbers.Number) or isinstance(shift, bool):
        raise TypeError(f"shift must be a real or complex scalar, got {type(shift).__name__}")
    if not np.isfinite(shift):
        raise ValueError(f"shift must be finite, got {shift}")
    return shift


def _check_finite_fast(x: np.ndarray, name: str) -> None:
    """``_check_finite`` through one BLAS dot product when ``x`` is contiguous.

    ``x·x`` is finite whenever every entry is (and is inf or NaN otherwise, or
    on overflow, in which case the exact check decides).
    """
    if x.dtype.kind in "fc" and x.size and x.flags.c_contiguous:
        v = x.reshape(-1)
        if np.isfinite(np.vdot(v, v)):
            return
    _check_finite(x, name)


# ------------------------------------------------------------ decomposition

# Factor sizes whose eigendecompositions run with one BLAS thread.  LAPACK's
# eig/eigh on small matrices is a long chain of small level-2 BLAS calls; with a
# multi-threaded BLAS every call is a barrier, and when another process holds a
# core each barrier waits for a time slice: a 96 x 96 eigh was measured at 130 ms
# instead of 1.3 ms on a busy 2-core machine.  One thread is also as fast on an
# idle machine at these sizes.
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


def _single_blas_thread() -> Any:
    """Context manager that runs BLAS with one thread (via threadpoolctl, if installed)."""
    if not _BLAS_LIMITER:
        try:
            import scipy.linalg  # noqa: F401  (load SciPy's BLAS so that it is covered too)
            from threadpoolctl import ThreadpoolController

            ctrl = ThreadpoolController().select(user_api="blas")
            _BLAS_LIMITER.append(lambda: ctrl.limit(limits=1))
        except Exception:  # pragma: no cover - threadpoolctl missing or failing
            _BLAS_LIMITER.append(None)
    return contextlib.nullcontext() if _BLAS_LIMITER[0] is None else _BLAS_LIMITER[0]()



def _dense_matrix(A: Any) -> np.ndarray:
    return np.asarray(A.toarray()) if _is_sparse(A) else A


def _is_hermitian(A: np.ndarray, eps: float) -> bool:
    """``A`` equals its conjugate transpose up to a few rounding errors."""
    n = A.shape[0]
    if n <= 1:
        return A.dtype.kind != "c" or n == 0 or A[0, 0].imag == 0
    if np.array_equal(A, A.conj().T):  # exactly (the common case): no norms
        return True
    nrm = np.linalg.norm(A)
    return bool(np.linalg.norm(A - A.conj().T) <= 8.0 * np.sqrt(n) * eps * nrm)


def _cond_message(V: np.ndarray, W: np.ndarray, name: str) -> str | None:
    """Warning text when the eigenvector basis ``V`` (inverse ``W``) is ill-conditioned."""
    cond = np.linalg.norm(V, 1) * np.linalg.norm(W, 1)
    if not np.isfinite(cond) or cond > _COND_WARN:
        return (f"{name} is not symmetric and its eigenvector basis is ill-conditioned "
                f"(condition number {cond:.2e} > {_COND_WARN:.0e}); the solution may be "
                "inaccurate")
    return None


class _Mode:
    """Eigendecomposition of one factor (or factor pair ``K, M``).

    ``lam`` holds the eigenvalues (float64 or complex128), ``fwd`` the matrix of
    the forward transform (``V⁻¹``; ``Vᴴ`` for Hermitian problems) and ``bwd``
    that of the backward one (``V``).
    """

    __slots__ = ("lam", "fwd", "bwd", "hermitian", "real", "n", "bounds", "_cast")

    def __init__(self, lam: np.ndarray, fwd: np.ndarray, bwd: np.ndarray, hermitian: bool):
        self.lam = lam
        self.fwd = fwd
        self.bwd = bwd
        self.hermitian = hermitian
        # real eigenvalues and real transforms: real problems stay in real arithmetic
        self.real = lam.dtype.kind != "c" and fwd.dtype.kind != "c" and bwd.dtype.kind != "c"
        self.n = lam.shape[0]
        # (min, max) of the real eigenvalues (nan when complex), max modulus
        if not self.n:
            self.bounds = (np.nan, np.nan, 0.0)
        elif lam.dtype.kind == "c":
            self.bounds = (np.nan, np.nan, float(np.abs(lam).max()))
        else:
            lo, hi = (float(lam[0]), float(lam[-1])) if hermitian else (
                float(lam.min()), float(lam.max()))  # eigh sorts ascending
            self.bounds = (lo, hi, max(abs(lo), abs(hi)))
        self._cast: dict = {}

    def lam_as(self, dtype: np.dtype) -> np.ndarray:
        """Eigenvalues in ``dtype`` (cached)."""
        lam = self._cast.get(("lam", dtype))
        if lam is None:
            lam = self._cast[("lam", dtype)] = self.lam.astype(dtype, copy=False)
        return lam

    def mats(self, dtype: np.dtype) -> tuple[np.ndarray, ...]:
        """``(fwd, bwd, fwdᵀ, bwdᵀ)`` in ``dtype`` (cached).

        The transposes are C-contiguous copies, made for small factors only
        (``n <= _FRONT_MAX``, the right operands of the front-rotating scheme),
        else None.
        """
        m = self._cast.get(dtype)
        if m is None:
            fwd = self.fwd.astype(dtype, copy=False)
            bwd = self.bwd.astype(dtype, copy=False)
            if self.n <= _FRONT_MAX:
                m = (fwd, bwd, np.ascontiguousarray(fwd.T), np.ascontiguousarray(bwd.T))
            else:
                m = (fwd, bwd, None, None)
            self._cast[dtype] = m
        return m


def _eigh(A: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """``np.linalg.eigh`` of a float64/complex128 matrix (LAPACK syevd/heevd).

    Real matrices of at most 32 rows go to the Numba-compiled solver of
    :mod:`._smalleig` once it is loaded (when small LAPACK decompositions have
    taken about as long in the process as loading it takes).  Other small
    matrices call SciPy's LAPACK wrapper directly (NumPy's costs more than the
    LAPACK call itself there); larger ones go through NumPy, whose wrapper
    releases the GIL, so that independent factors decompose side by side in
    threads (SciPy's ``dsyevd`` wrapper holds it: two 256 x 256 calls in two
    threads took 11.9 ms against 5.9 ms through NumPy).
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
        # the same matrix in Fortran order, without the wrapper's copy: the upper
        # triangle of Aᵀ is the lower triangle of A (1.5 µs of 26 at n = 16)
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


def _decompose(K: np.ndarray, M: np.ndarray | None, assume_a: str, kname: str,
               mname: str) -> tuple[_Mode, str | None]:
    """Diagonalize ``K`` (or the pencil ``K - λM``) in double precision.

    Returns the decomposition and the text of a warning to issue (ill-conditioned
    eigenvector basis) or None; the caller warns, from the caller's thread.
    """
    eps = _eps(_work_dtype(K.dtype))
    Kd = K.astype(_work_dtype(K.dtype, np.float64), copy=False)
    Md = None if M is None else M.astype(_work_dtype(M.dtype, np.float64), copy=False)
    if assume_a == "sym":
        herm = True
    elif assume_a == "gen":
        herm = False
    else:
        herm = (exact := bool(np.array_equal(Kd, Kd.conj().T))) or _is_hermitian(Kd, eps)
        herm = herm and (Md is None or _is_hermitian(Md, _eps(_work_dtype(M.dtype))))
    n = Kd.shape[0]
    if n == 0:
        e = np.zeros((0, 0), dtype=Kd.dtype)
        return _Mode(np.zeros(0), e, e, True), None
    if herm:
        if assume_a != "auto":
            exact = bool(np.array_equal(Kd, Kd.conj().T))
        Ks = Kd if exact else (Kd + Kd.conj().T) * 0.5
        if Md is None:
            lam, Q = _eigh(Ks, kname)
        else:
            from scipy.linalg import eigh

            Ms = (Md + Md.conj().T) * 0.5
            try:
                lam, Q = eigh(Ks, Ms, check_finite=False)
            except np.linalg.LinAlgError:
                raise np.linalg.LinAlgError(
                    f"{mname} (shape {M.shape}) must be symmetric (Hermitian) positive "
                    "definite, but its Cholesky factorization failed"
                ) from None
        fwd = Q.T if Q.dtype.kind != "c" else Q.conj().T
        return _Mode(np.asarray(lam, dtype=np.float64), fwd, Q, True), None
    # general (non-symmetric) factor: V^-1 K V = diag(lam)
    if Md is None:
        lam, V = np.linalg.eig(Kd)
        what = kname
    else:
        from scipy.linalg import eig

        lam, V = eig(Kd, Md, check_finite=False)
        what = f"the pencil ({kname}, {mname})"
        if not np.isfinite(lam).all():
            raise np.linalg.LinAlgError(
                f"{what} has infinite eigenvalues: {mname} (shape {M.shape}) is singular"
            )
    if np.iscomplexobj(lam) and not lam.imag.any() and not np.iscomplexobj(V):
        lam = lam.real
    try:
        W = np.linalg.inv(V if Md is None else Md @ V)
    except np.linalg.LinAlgError:
        raise np.linalg.LinAlgError(
            f"{what} (shape {K.shape}) is not diagonalizable: its eigenvector matrix is "
            "singular (a defective matrix); the fast diagonalization method cannot be used"
        ) from None
    msg = _cond_message(V, W if Md is None else np.linalg.inv(V), what)
    return _Mode(lam, W, V, False), msg


# ------------------------------------------------------------- singularity


def _sums(lams: Sequence[np.ndarray], shift: Any, out: np.ndarray | None = None) -> np.ndarray:
    """All sums ``lams[0][i0] + ... + lams[-1][i_last] + shift`` in C order."""
    acc = lams[-1] + shift
    for k in range(len(lams) - 2, -1, -1):
        lam = lams[k]
        if k == 0 and out is not None:
            np.add(lam.reshape((-1,) + (1,) * acc.ndim), acc, out=out)
            return out
        acc = np.add.outer(lam, acc)
    if out is not None:
        out[...] = acc
        return out
    return acc


def _nearest_zero_sum(lams: list[np.ndarray], shift: Any) -> tuple[tuple[int, ...], Any]:
    """Multi-index and value of the eigenvalue sum (plus shift) smallest in modulus.

    Real eigenvalues: the sums over all modes but the largest one are matched to
    the sorted eigenvalues of that mode by binary search (``O(N / n_max · log)``).
    Complex eigenvalues: a blocked exhaustive search.
    """
    d = len(lams)
    ns = [lam.shape[0] for lam in lams]
    if d == 1:
        s = lams[0] + shift
        i = int(np.argmin(np.abs(s)))
        return (i,), s[i]
    k = int(np.argmax(ns))
    others = [lams[j] for j in range(d) if j != k]
    S1 = _sums(others, shift).ravel()
    lk = lams[k]
    if S1.dtype.kind != "c" and lk.dtype.kind != "c":
        order = np.argsort(lk, kind="stable")
        sk = lk[order]
        hi = np.searchsorted(sk, -S1)
        np.minimum(hi, ns[k] - 1, out=hi)
        lo = np.maximum(hi - 1, 0)
        vlo = np.abs(S1 + sk[lo])
        vhi = np.abs(S1 + sk[hi])
        i_lo, i_hi = int(np.argmin(vlo)), int(np.argmin(vhi))
        if vlo[i_lo] <= vhi[i_hi]:
            i1, ik = i_lo, int(order[lo[i_lo]])
        else:
            i1, ik = i_hi, int(order[hi[i_hi]])
    else:
        best, i1, ik = np.inf, 0, 0
        rows = max(1, _BLOCK // max(ns[k], 1))
        for r0 in range(0, S1.shape[0], rows):
            a = np.abs(S1[r0:r0 + rows, None] + lk[None, :])
            j = int(np.argmin(a))
            if a.flat[j] < best:
                best = a.flat[j]
                i1, ik = r0 + j // ns[k], j % ns[k]
    rest = np.unravel_index(i1, [ns[j] for j in range(d) if j != k])
    idx = [int(r) for r in rest]
    idx.insert(k, ik)
    value = sum(lams[j][idx[j]] for j in range(d)) + shift
    return tuple(idx), value


# ------------------------------------------------------------------ solver


def _as_factor_list(mats: Any, name: str) -> list:
    if isinstance(mats, np.ndarray) or _is_sparse(mats) or not isinstance(mats, Sequence):
        if isinstance(mats, np.ndarray) and mats.ndim == 3:
            return [mats[i] for i in range(mats.shape[0])]
        raise TypeError(
            f"{name} must be a sequence of square matrices (one per dimension), got "
            f"{type(mats).__name__}" + (f" of shape {mats.shape}" if hasattr(mats, "shape") else "")
            + "; wrap a single matrix in a list"
        )
    return list(mats)


class KronSumSolver:
    """Factor a Kronecker sum once, then solve with it many times.

    Solves ``X ×₁ A1 + ... + X ×_d Ad + shift·X = B``, that is
    ``(A1 ⊕ ... ⊕ Ad + shift·I) vec(X) = vec(B)`` in C order, by the fast
    diagonalization method: each factor is eigendecomposed once here, and every
    :meth:`solve` costs two tensor transforms (``2d`` mode products) and one
    division.  With ``masses`` it solves the generalized (finite-element) form
    ``Σ_k X ×_k K_k ×_{j≠k} M_j + shift·(X ×₁ M1 ... ×_d Md) = B`` through the
    generalized eigenproblems ``K_k v = λ M_k v``.

    Parameters
    ----------
    mats : sequence of (n_k, n_k) arrays or scipy.sparse matrices
        The factors ``A1, ..., Ad`` (``K_k`` with masses), ``d >= 1``.  Factors
        that are the same object, or equal arrays, are decomposed only once.
    masses : sequence of (n_k, n_k) arrays, optional
        Mass matrices ``M_k``, symmetric (Hermitian) positive definite for the
        symmetric path; an entry ``None`` stands for the identity.
    assume_a : {"auto", "sym", "gen"}, optional
        ``"sym"``: the factors (and masses) are symmetric or Hermitian and are
        diagonalized with ``eigh`` (their Hermitian parts ``(A + Aᴴ)/2`` are
        used, unchecked).  ``"gen"``: use ``eig`` (complex arithmetic inside,
        real results for real data).  ``"auto"`` (default): ``"sym"`` for each
        factor that equals its conjugate transpose up to a few rounding errors
        (``‖A - Aᴴ‖_F <= 8 √n eps ‖A‖_F``), else ``"gen"``.
    check_finite : bool, optional
        Check the factors and masses for inf and NaN (default True).

    Attributes
    ----------
    shape : tuple of int
        ``(n_1, ..., n_d)``, the trailing shape of the right-hand sides.
    ndim : int
        ``d``.
    eigenvalues : list of ndarray
        Eigenvalues of each factor (real for the symmetric path).

    Raises
    ------
    ValueError
        A factor or mass that is not square, a mass whose shape does not match
        its factor, non-finite entries, an unknown ``assume_a``.
    TypeError
        ``mats`` that is not a sequence of matrices, non-numeric dtypes.
    numpy.linalg.LinAlgError
        A mass matrix that is not positive definite, or a defective factor.

    Warns
    -----
    RuntimeWarning
        A non-symmetric factor whose eigenvector basis has a condition number
        above about 1e8 (the result may be inaccurate).

    Examples
    --------
    One-dimensional Laplacians with Dirichlet conditions, a Poisson and then a
    Helmholtz-like solve reusing the factorization:

    >>> import numpy as np
    >>> from kronsolve import KronSumSolver, kronsum
    >>> n = 8
    >>> T = 2 * np.eye(n) - np.eye(n, k=1) - np.eye(n, k=-1)
    >>> solver = KronSumSolver([T, T, T])
    >>> B = np.ones((n, n, n))
    >>> X = solver.solve(B)
    >>> np.allclose(kronsum(T, T, T) @ X.ravel(), B.ravel())
    True
    >>> X2 = solver.solve(B, shift=0.5)
    >>> np.allclose(kronsum(T, T, T) @ X2.ravel() + 0.5 * X2.ravel(), B.ravel())
    True
    """

    def __init__(self, mats: Sequence[Any], *, masses: Sequence[Any] | None = None,
                 assume_a: str = "auto", check_finite: bool = True, _stacklevel: int = 2):
        if assume_a not in _ASSUME_A:
            raise ValueError(f"assume_a must be one of {_ASSUME_A}, got {assume_a!r}")
        if _foreign_seq(mats) or masses is not None and _foreign_seq(masses):
            from ._generic import GenericKronSumSolver  # PyTorch, CuPy, Dask factors

            self.__class__ = GenericKronSumSolver
            GenericKronSumSolver.__init__(self, mats, masses=masses, assume_a=assume_a,
                                          check_finite=check_finite, _stacklevel=_stacklevel + 1)
            return
        mats = _as_factor_list(mats, "mats")
        d = len(mats)
        if d == 0:
            raise ValueError("mats must hold at least one matrix, got an empty sequence")
        Ks: list = []
        alias = list(range(d))  # alias[k] = j < k when mats[k] is mats[j]
        for k, A in enumerate(mats):
            for j in range(k):
                if mats[j] is A:  # the same object again: already validated
                    alias[k] = j
                    break
            if alias[k] != k:
                Ks.append(Ks[alias[k]])
                continue
            A = _as_matrix(A, f"mats[{k}]")
            if A.shape[0] != A.shape[1]:
                raise ValueError(f"mats[{k}] must be square, got shape {A.shape}")
            A = _dense_matrix(A)
            _work_dtype(A.dtype)
            if check_finite:
                _check_finite(A, f"mats[{k}]")
            Ks.append(A)
        if masses is None:
            Ms: list = [None] * d
        else:
            masses = _as_factor_list(masses, "masses")
            if len(masses) != d:
                raise ValueError(
                    f"masses must hold one matrix per factor: got {len(masses)} masses for "
                    f"{d} factors"
                )
            Ms = []
            for k, M in enumerate(masses):
                if M is None:
                    Ms.append(None)
                    continue
                M = _as_matrix(M, f"masses[{k}]")
                if M.shape != Ks[k].shape:
                    raise ValueError(
                        f"masses[{k}] has shape {M.shape}, but mats[{k}] has shape "
                        f"{Ks[k].shape}; they must match"
                    )
                M = _dense_matrix(M)
                _work_dtype(M.dtype)
                if check_finite:
                    _check_finite(M, f"masses[{k}]")
                Ms.append(M)
        self.ndim = d
        self.shape = tuple(A.shape[0] for A in Ks)
        self._in_dtype = _work_dtype(*[A.dtype for A in Ks],
                                     *[M.dtype for M in Ms if M is not None])
        self._masses = any(M is not None for M in Ms)
        # decompose, sharing identical factors
        owner = list(range(d))  # owner[k]: first mode with the same factor (and mass)
        for k in range(1, d):
            if not self._masses and alias[k] != k:  # the same object: no comparison
                owner[k] = owner[alias[k]]
                continue
            for j in range(k):
                if owner[j] == j and _same(Ks[j], Ks[k]) and _same(Ms[j], Ms[k]):
                    owner[k] = j
                    break
        jobs = [(Ks[k], Ms[k], assume_a, f"mats[{k}]", f"masses[{k}]")
                for k in range(d) if owner[k] == k]
        nmax = max(self.shape)
        limit = _SMALL_LAPACK[0] <= nmax <= _SMALL_LAPACK[1]
        # flops of the eigendecompositions that ran side by side (0: none did)
        self._parallel_flops = 0
        with _single_blas_thread() if limit else contextlib.nullcontext():
            if limit and len(jobs) > 1 and nmax >= _PARALLEL_MIN and _BLAS_LIMITER[0]:
                # one BLAS thread each, the factors side by side (LAPACK drops the GIL)
                results = list(_executor().map(lambda job: _decompose(*job), jobs))
                self._parallel_flops = sum(9 * job[0].shape[0] ** 3 for job in jobs)
            else:
                results = [_decompose(*job) for job in jobs]
        for _, msg in results:
            if msg is not None:
                warnings.warn(msg, RuntimeWarning, stacklevel=_stacklevel)
        unique = iter(r[0] for r in results)
        modes: list[_Mode] = []
        for k in range(d):
            modes.append(next(unique) if owner[k] == k else modes[owner[k]])
        self._set_modes(modes, [m.lam for m in modes])

    def _set_modes(self, modes: list, eigenvalues: list) -> None:
        """Record the decompositions of the modes (shared ones appear repeatedly)."""
        self._modes = modes
        self._real_modes = all(m.real for m in modes)
        self._lam_complex = any(m.lam.dtype.kind == "c" for m in modes)
        self._n_decomposed = len({id(m) for m in modes})
        self._checked: dict = {}
        self.eigenvalues = eigenvalues

    def __repr__(self) -> str:
        return (f"KronSumSolver(shape={self.shape}, "
                f"{'generalized, ' if self._masses else ''}"
                f"{'symmetric' if all(m.hermitian for m in self._modes) else 'general'})")

    # ---------------------------------------------------------------- helpers
    def _check_nonsingular(self, shift: Any, eps: float) -> None:
        key = (shift, eps)
        if key in self._checked:
            return
        lams = [m.lam for m in self._modes]
        scale = sum(m.bounds[2] for m in self._modes) + abs(shift)
        tol = eps * max(self.shape) * self.ndim * scale
        if not self._lam_complex and not _is_complex_scalar(shift):
            # definite sums (the Poisson case): no search needed
            lo = sum(m.bounds[0] for m in self._modes) + shift
            hi = sum(m.bounds[1] for m in self._modes) + shift
            if lo > tol or hi < -tol:
                self._remember(key)
                return
        idx, value = _nearest_zero_sum(lams, shift)
        if not abs(value) > tol:
            terms = " + ".join(f"λ{k + 1}[{i}]" for k, i in enumerate(idx))
            raise np.linalg.LinAlgError(
                f"the Kronecker sum{' plus shift' if shift != 0 else ''} is singular to "
                f"working precision: at multi-index {idx}, {terms}"
                f"{' + shift' if shift != 0 else ''} = {value:.3g}, which is zero relative "
                f"to the eigenvalue scale {scale:.3g} (tolerance {tol:.3g})"
            )
        self._remember(key)

    def _remember(self, key: tuple) -> None:
        if len(self._checked) > 16:
            self._checked.clear()
        self._checked[key] = True

    # ------------------------------------------------------------------ solve
    def solve(self, B: Any, shift: Any = 0.0, *, check_finite: bool = True,
              overwrite_b: bool = False) -> np.ndarray:
        """Solve ``X ×₁ A1 + ... + X ×_d Ad + shift·X = B`` (generalized with masses).

        Parameters
        ----------
        B : (..., n_1, ..., n_d) array_like
            Right-hand side; leading dimensions are independent problems solved
            together.
        shift : scalar, optional
            Multiple of the identity (of the mass Kronecker product) added to the
            operator; may be complex.
        check_finite : bool, optional
            Check that ``B`` holds only finite numbers (default True).
        overwrite_b : bool, optional
            Allow the solver to use ``B`` as workspace and to return the solution
            in it (when ``B`` is C-contiguous, writeable and of the working dtype).
            The peak extra memory is then one array the size of ``B`` instead of two
            (the result and one scratch array).  Non-symmetric factors with complex
            eigenvalues work in complex arithmetic and need twice that.

        Returns
        -------
        X : ndarray
            Same shape as ``B``; real when ``B``, the factors and ``shift`` are.

        Raises
        ------
        ValueError
            ``B`` whose trailing shape is not :attr:`shape`, non-finite entries.
        numpy.linalg.LinAlgError
            Some eigenvalue sum plus ``shift`` is zero relative to the scale of the
            eigenvalues; the message names the multi-index and the value.
        """
        return self._solve(B, shift, check_finite=check_finite, overwrite_b=overwrite_b)

    def _solve(self, B: Any, shift: Any, *, check_finite: bool, overwrite_b: bool,
               name: str = "B") -> np.ndarray:
        if type(B) is not np.ndarray and _is_foreign(B):  # PyTorch, CuPy, Dask...
            from ._generic import solve_with

            return solve_with(self, B, shift, check_finite=check_finite, name=name)
        B = _as_array(B, name)
        d, ns = self.ndim, self.shape
        if B.ndim < d or B.shape[B.ndim - d:] != ns:
            raise ValueError(
                f"{name} must have shape {ns} (optionally with leading batch dimensions) to "
                f"match the factors of shape {[(n, n) for n in ns]}, got shape {B.shape}"
            )
        shift = _check_shift(shift)
        if check_finite:
            _check_finite_fast(B, name)
        cshift = _is_complex_scalar(shift)
        out_dt = _work_dtype(B.dtype, self._in_dtype, np.complex64 if cshift else np.float16)
        wd = out_dt if self._real_modes else _complex_of(out_dt)
        if B.size == 0:
            return np.zeros(B.shape, dtype=out_dt)
        self._check_nonsingular(shift, _eps(_real_of(wd)))

        b = B.ndim - d
        mats = [m.mats(wd) for m in self._modes]
        # --- buffers: R (returned) and S (scratch); the 2d transform steps
        # alternate between them (source -> S -> R -> S ...) and end in R
        in_place = (overwrite_b and B.dtype == wd and B.flags.c_contiguous
                    and B.flags.writeable)
        if in_place:
            R = src = B
        else:
            R = np.empty(B.shape, dtype=wd)
            if B.dtype == wd and B.flags.c_contiguous:
                src = B
            else:
                R[...] = B
                src = R
        core = prod(ns)
        nb = B.size // core
        if nb == 1 or core >= _ROTATE_MIN:
            # one problem at a time, each transform as d plain GEMMs
            S = _work_buffer(0, core, wd)
            S = np.empty(ns, dtype=wd) if S is None else S.reshape(ns)
            src_f = src.reshape((nb,) + ns)
            R_f = R.reshape((nb,) + ns)
            for i in range(nb):
                self._fdm_rotating(src_f[i], S, R_f[i], mats, shift, wd)
        else:
            # many small problems together, one batched mode product per step
            S = _work_buffer(0, B.size, wd)
            S = np.empty(B.shape, dtype=wd) if S is None else S.reshape(B.shape)
            self._fdm_modes(src, S, R, b, mats, shift, wd)
        cur = R
        if wd != out_dt:  # complex arithmetic for a real problem
            if overwrite_b and B.dtype == out_dt and B.flags.c_contiguous and B.flags.writeable:
                np.copyto(B, cur.real)
                return B
            return np.ascontiguousarray(cur.real)
        return cur

    def _fdm_rotating(self, src: np.ndarray, S: np.ndarray, R: np.ndarray, mats: list,
                      shift: Any, wd: np.dtype) -> None:
        """Transform, divide, transform back one C-contiguous tensor ``src`` into ``R``.

        Each mode product multiplies the last axis and moves it to the front,
        ``(rest, n) -> (n, rest)`` through ``A @ cur.reshape(rest, n).T``: one
        GEMM with the small factor on the left, no batching (as
        ``_modeprod._apply_rotating``).  After ``d`` steps, from the last factor
        to the first, the axes are back in order.
        """
        N = src.size
        bufs = (S.reshape(N), R.reshape(N))
        cur = src.reshape(N)
        step = 0
        front = all(A[2] is not None for A in mats)  # all factors small
        for which in (0, 1):
            if which == 1:
                self._divide(cur.reshape(self.shape), bufs[step & 1], 0, shift, wd)
            if front:
                # first axis first: (n, rest) -> (rest, n), the transposed factor right
                for A in mats:
                    G = A[2 + which]
                    n = G.shape[0]
                    dst = bufs[step & 1]
                    np.matmul(cur.reshape(n, N // n).T, G, out=dst.reshape(N // n, n))
                    cur = dst
                    step += 1
                continue
            for A in reversed(mats):
                F = A[which]  # the factor, the left operand
                n = F.shape[0]
                dst = bufs[step & 1]
                np.matmul(F, cur.reshape(N // n, n).T, out=dst.reshape(n, N // n))
                cur = dst
                step += 1

    def _fdm_modes(self, src: np.ndarray, S: np.ndarray, R: np.ndarray, b: int, mats: list,
                   shift: Any, wd: np.dtype) -> None:
        """Same as :meth:`_fdm_rotating` for a batch, one mode product per step."""
        d = self.ndim
        bufs = (S, R)
        cur = src
        step = 0
        for which in (0, 1):
            if which == 1:
                self._divide(cur, bufs[step & 1], b, shift, wd)
            # last axis first, the first mode last
            for k in range(d - 1, -1, -1):
                dst = bufs[step & 1]
                _apply(cur, [mats[k][which]], [b + k], wd, out=dst)
                cur = dst
                step += 1

    def _divide(self, Y: np.ndarray, free: np.ndarray, b: int, shift: Any, wd: np.dtype) -> None:
        """``Y /= λ1[i1] + ... + λd[id] + shift`` in blocks, with workspace ``free``."""
        complex_den = self._lam_complex or _is_complex_scalar(shift)
        dd = wd if complex_den else _real_of(wd)
        lams = [m.lam_as(dd) for m in self._modes]
        d = self.ndim
        ns = self.shape
        if d == 1:
            np.divide(Y, lams[0] + shift, out=Y)
            return
        if free.dtype == dd:
            work = free.reshape(-1)
        else:  # real sums in a complex buffer: twice as many slots
            work = free.reshape(-1).view(np.uint8).view(dd)
        cap = work.shape[0]
        N = prod(ns)
        if N <= _BLOCK:
            # small problem: a single block holds every sum
            den = _sums(lams, shift, out=work[:N].reshape(ns))
            np.divide(Y, den, out=Y)
            return
        n1 = ns[0]
        m = prod(ns[1:])
        rest = work[:m].reshape(ns[1:])
        _sums(lams[1:], shift, out=rest)
        lead = (slice(None),) * b
        if n1 == 1:
            rest += lams[0][0]
            Yi = Y[lead + (0,)]
            np.divide(Yi, rest, out=Yi)
            return
        lam1 = lams[0]
        # large problems: two threads (NumPy releases the GIL), each with its own
        # block of sums in the idle buffer
        nthreads = 2 if (Y.size >= _PARALLEL_DIVIDE and n1 >= 4 and cap >= 5 * m
                         and (os.cpu_count() or 1) > 1) else 1
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


def _same(A: Any, B: Any) -> bool:
    if A is B:
        return True
    if A is None or B is None:
        return False
    return A.shape == B.shape and A.dtype == B.dtype and bool(np.array_equal(A, B))


# ------------------------------------------------------------- small problems

# One-shot solves of at most this many unknowns take :func:`_solve_small`.
_SMALL_N = 1 << 15
_F64 = np.dtype(np.float64)


def _solve_small(B: Any, mats: Sequence[Any], shift: Any, check_finite: bool) -> Any:
    """The one-shot solve of a small, real, symmetric, definite problem, or None.

    The common case of :func:`solve_kronsum` and :func:`solve_sylvester3d` at sizes
    where Python overhead rivals the arithmetic (d = 3, n = 16 is 4096 unknowns
    and about 40 µs of LAPACK and BLAS): float64 C-contiguous ``B`` with no batch
    dimensions, exactly symmetric float64 factors of at most ``_FRONT_MAX`` rows,
    a real ``shift`` and a sum that is definite.  It performs the same operations
    as :class:`KronSumSolver` (the same ``syevd``, the same front-rotating GEMMs,
    the same sums), so the results are identical.  Anything else, and any input
    that would raise, returns None and goes the general way, which gives the
    errors and warnings.
    """
    if (type(B) is not np.ndarray or B.dtype != _F64 or not B.flags.c_contiguous
            or B.size > _SMALL_N or B.ndim != len(mats) or not B.size
            or (type(shift) is not float and type(shift) is not int)
            or not math.isfinite(shift)):
        return None
    shape = B.shape
    lams: list = []
    trans: list = []  # (Q, Qᵀ) contiguous: the right operands of the two transforms
    lo = hi = float(shift)
    scale = abs(shift)
    for k, A in enumerate(mats):
        for j in range(k):
            if mats[j] is A:
                lams.append(lams[j])
                trans.append(trans[j])
                break
        else:
            if (type(A) is not np.ndarray or A.dtype != _F64 or A.ndim != 2
                    or A.shape[0] != shape[k] or A.shape[1] != shape[k]
                    or shape[k] > _FRONT_MAX):
                return None
            # Exact symmetry, bit for bit (0.6 against 2.2 µs for ``(A == A.T).all()``
            # at n = 16).  NaN entries that pass (on the diagonal, or a pair with
            # the same bits) give NaN eigenvalues or a failed eigh, caught below.
            if A.tobytes() != A.T.tobytes():
                return None
            try:
                lam, Q = _eigh(A, f"mats[{k}]")
            except np.linalg.LinAlgError:
                return None
            lams.append(lam)
            trans.append((np.ascontiguousarray(Q), np.ascontiguousarray(Q.T)))
        lam = lams[k]
        lo += float(lam[0])
        hi += float(lam[-1])
        scale += max(abs(float(lam[0])), abs(float(lam[-1])))
    tol = _eps(_F64) * max(shape) * len(mats) * scale
    if not (lo > tol or hi < -tol):
        return None  # maybe singular (or not finite): the general path explains
    if check_finite:
        v = B.reshape(-1)
        if not math.isfinite(np.vdot(v, v)):
            return None
    N = B.size
    bufs = (np.empty(N), np.empty(N))
    cur = B.reshape(N)
    step = 0
    for which in (0, 1):
        if which == 1:
            Y = cur.reshape(shape)
            np.divide(Y, _sums(lams, shift), out=Y)
        for k, n in enumerate(shape):
            dst = bufs[step & 1]
            np.matmul(cur.reshape(n, N // n).T, trans[k][which], out=dst.reshape(N // n, n))
            cur = dst
            step += 1
    # An inf in a factor (symmetric, so not caught above) gives NaN eigenvalues or
    # a failed eigh; should one ever slip through, it shows in the result, checked
    # once rather than every factor.  A result that overflowed from finite input
    # is recomputed by the general path.
    if check_finite and not math.isfinite(np.vdot(cur, cur)):
        return None
    return cur.reshape(shape)


def _solve_once(solver: KronSumSolver, B: Any, shift: Any, check_finite: bool,
                overwrite_b: bool) -> Any:
    """The solve of a one-shot function, with the BLAS threads its size calls for.

    When the factors were decomposed side by side in threads and the two
    transforms cost fewer flops than those decompositions (d = 2, n = 256: 134
    against 302 Mflop), the transforms run with one BLAS thread too.  A
    multi-threaded BLAS call leaves OpenBLAS's worker threads spinning for a
    while after it returns, and those steal the cores from the next
    decompositions: back to back, d = 2, n = 256 solves with distinct factors
    took 14.5 ms with two-thread transforms and 10 ms with one.
    """
    flops = getattr(solver, "_parallel_flops", 0)
    if flops and 4 * prod(solver.shape) * sum(solver.shape) < flops:
        with _single_blas_thread():
            return solver._solve(B, shift, check_finite=check_finite, overwrite_b=overwrite_b)
    return solver._solve(B, shift, check_finite=check_finite, overwrite_b=overwrite_b)


# ------------------------------------------------------------- functions


def solve_kronsum(
    B: Any,
    mats: Sequence[Any],
    *,
    masses: Sequence[Any] | None = None,
    shift: Any = 0.0,
    assume_a: str = "auto",
    check_finite: bool = True,
    overwrite_b: bool = False,
) -> np.ndarray:
    """Solve the d-dimensional tensor Sylvester equation (a Kronecker-sum system).

    Finds ``X`` with ``X ×₁ A1 + X ×₂ A2 + ... + X ×_d Ad + shift·X = B``, i.e.
    ``(A1 ⊕ ... ⊕ Ad + shift·I) X.ravel() = B.ravel()`` with
    ``A1 ⊕ A2 = np.kron(A1, I) + np.kron(I, A2)``, by the fast diagonalization
    method: ``O(N · Σ n_k)`` flops for ``N = Π n_k`` unknowns.

    With ``masses`` it solves the generalized (finite-element) form
    ``Σ_k X ×_k K_k ×_{j≠k} M_j + shift·(X ×₁ M1 ... ×_d Md) = B``.

    Parameters
    ----------
    B : (..., n_1, ..., n_d) array_like
        Right-hand side; leading dimensions are batches solved together.
    mats : sequence of (n_k, n_k) arrays or scipy.sparse matrices
        The factors, ``d = len(mats) >= 1``.
    masses : sequence of (n_k, n_k) arrays, optional
        Symmetric positive definite mass matrices (``None`` entries: identity).
    shift : scalar, optional
        Added multiple of the identity (of ``M1 ⊗ ... ⊗ Md`` with masses).
    assume_a : {"auto", "sym", "gen"}, optional
        Symmetric (``eigh``, real arithmetic for real data) or general (``eig``)
        factors; ``"auto"`` checks symmetry with a rounding tolerance.
    check_finite : bool, optional
        Check the inputs for inf and NaN (default True).
    overwrite_b : bool, optional
        Allow ``B`` to be used as workspace and to hold the result.

    Returns
    -------
    X : ndarray
        Shape of ``B``; real when all inputs are real.

    Raises
    ------
    ValueError
        Non-square factors, mismatched shapes, non-finite input.
    TypeError
        Arguments of the wrong kind or dtype.
    numpy.linalg.LinAlgError
        Singular or nearly singular sum (the message names the multi-index of
        the offending eigenvalues and the value), or a mass matrix that is not
        positive definite.

    See Also
    --------
    KronSumSolver : factor once, solve many times.
    solve_sylvester3d : the three-dimensional case with ``A2 = A3 = A`` defaults.

    Examples
    --------
    >>> import numpy as np
    >>> from kronsolve import solve_kronsum, multi_mode_product
    >>> rng = np.random.default_rng(0)
    >>> A1, A2 = (np.diag([4.0, 5.0, 6.0]) + 0.1 * rng.standard_normal((3, 3)) for _ in range(2))
    >>> B = rng.standard_normal((3, 3))
    >>> X = solve_kronsum(B, [A1, A2])
    >>> I = np.eye(3)
    >>> np.allclose((np.kron(A1, I) + np.kron(I, A2)) @ X.ravel(), B.ravel())
    True
    """
    if type(B) is not np.ndarray and _is_foreign(B):  # PyTorch, CuPy, Dask...
        from ._generic import solve_kronsum as _solve_kronsum

        return _solve_kronsum(B, mats, masses=masses, shift=shift, assume_a=assume_a,
                              check_finite=check_finite, overwrite_b=overwrite_b)
    mats_l = _as_factor_list(mats, "mats")
    if masses is None and (assume_a == "auto" or assume_a == "sym") and not overwrite_b:
        X = _solve_small(B, mats_l, shift, check_finite)
        if X is not None:
            return X
    solver = KronSumSolver(mats_l, masses=masses, assume_a=assume_a, check_finite=check_finite,
                           _stacklevel=3)
    return _solve_once(solver, B, shift, check_finite, overwrite_b)


def solve_sylvester3d(
    B: Any,
    A: Any,
    A2: Any = None,
    A3: Any = None,
    *,
    shift: Any = 0.0,
    check_finite: bool = True,
    overwrite_b: bool = False,
) -> np.ndarray:
    """Solve the 3-D tensor Sylvester equation ``X ×₁ A + X ×₂ A2 + X ×₃ A3 + shift·X = B``.

    This is ``(A ⊕ A2 ⊕ A3 + shift·I) X.ravel() = B.ravel()``: the discrete
    Poisson, Helmholtz or diffusion operator on a tensor grid.  It is solved by
    the fast diagonalization method in ``O(n⁴)`` flops (see
    :func:`solve_kronsum`, of which this is the ``d = 3`` case).

    Parameters
    ----------
    B : (..., n1, n2, n3) array_like
        Right-hand side; leading dimensions are batches.
    A : (n1, n1) array_like
        First factor.
    A2, A3 : (n2, n2) and (n3, n3) array_like, optional
        Second and third factors; default to ``A`` (decomposed only once).
    shift, check_finite, overwrite_b
        As in :func:`solve_kronsum`: the multiple of the identity added to the
        operator, the check for inf and NaN (default True), and leave to use
        ``B`` as workspace and to return the result in it.

    Returns
    -------
    X : ndarray
        Shape of ``B``.

    Raises
    ------
    ValueError
        ``B`` with fewer than three dimensions, mismatched shapes, non-square
        factors, non-finite input.
    numpy.linalg.LinAlgError
        A singular or nearly singular operator (the message names the index).

    Examples
    --------
    >>> import numpy as np
    >>> from kronsolve import solve_sylvester3d, multi_mode_product
    >>> rng = np.random.default_rng(1)
    >>> n = 4
    >>> A = rng.standard_normal((n, n))
    >>> A = A @ A.T + n * np.eye(n)          # symmetric positive definite
    >>> X = rng.standard_normal((n, n, n))
    >>> I = np.eye(n)
    >>> B = (multi_mode_product(X, [A, I, I]) + multi_mode_product(X, [I, A, I])
    ...      + multi_mode_product(X, [I, I, A]))
    >>> np.allclose(solve_sylvester3d(B, A), X)
    True
    """
    if type(B) is not np.ndarray and _is_foreign(B):  # PyTorch, CuPy, Dask...
        from ._generic import solve_sylvester3d as _solve3d

        return _solve3d(B, A, A2, A3, shift=shift, check_finite=check_finite,
                        overwrite_b=overwrite_b)
    B = _as_array(B, "B")
    if B.ndim < 3:
        raise ValueError(
            f"B must have at least three dimensions (n1, n2, n3), got shape {B.shape}; use "
            "solve_kronsum for other dimensions"
        )
    mats = [A, A if A2 is None else A2, A if A3 is None else A3]
    if not overwrite_b:
        X = _solve_small(B, mats, shift, check_finite)
        if X is not None:
            return X
    solver = KronSumSolver(mats, check_finite=check_finite, _stacklevel=3)
    return _solve_once(solver, B, shift, check_finite, overwrite_b)


def solve_sylvester(a: Any, b: Any, q: Any) -> np.ndarray:
    """Solve the Sylvester equation ``a @ x + x @ b = q`` (drop-in for SciPy's).

    Same signature and result as :func:`scipy.linalg.solve_sylvester`.  When
    ``a`` and ``b`` are both symmetric (Hermitian) it uses the diagonalization
    method (two ``eigh`` calls and four matrix products, real arithmetic for real
    data), which is much faster than the Bartels–Stewart algorithm; otherwise it
    calls ``scipy.linalg.solve_sylvester``.

    Parameters
    ----------
    a : (M, M) array_like
    b : (N, N) array_like
    q : (M, N) array_like

    Returns
    -------
    x : (M, N) ndarray

    Raises
    ------
    ValueError
        Non-square ``a`` or ``b``, ``q`` of the wrong shape, non-finite input.
    numpy.linalg.LinAlgError
        Symmetric path only: ``a`` and ``-b`` share an eigenvalue (to working
        precision), so that the solution is not unique.

    Examples
    --------
    >>> import numpy as np
    >>> from kronsolve import solve_sylvester
    >>> a = np.array([[2.0, 1.0], [1.0, 3.0]])
    >>> b = np.array([[4.0, 0.5], [0.5, 1.0]])
    >>> q = np.array([[1.0, 2.0], [3.0, 4.0]])
    >>> x = solve_sylvester(a, b, q)
    >>> np.allclose(a @ x + x @ b, q)
    True
    >>> import scipy.linalg
    >>> np.allclose(x, scipy.linalg.solve_sylvester(a, b, q))
    True
    """
    a = _as_matrix(a, "a", allow_sparse=False)
    b = _as_matrix(b, "b", allow_sparse=False)
    q = _as_array(q, "q")
    for name, A in (("a", a), ("b", b)):
        if A.shape[0] != A.shape[1]:
            raise ValueError(f"{name} must be square, got shape {A.shape}")
    if q.shape != (a.shape[0], b.shape[0]):
        raise ValueError(
            f"q must have shape (a.shape[0], b.shape[0]) = {(a.shape[0], b.shape[0])} for "
            f"a of shape {a.shape} and b of shape {b.shape}, got {q.shape}"
        )
    for name, A in (("a", a), ("b", b), ("q", q)):
        _check_finite(A, name)
    dt = _work_dtype(a.dtype, b.dtype, q.dtype)
    eps = _eps(_real_of(dt))
    if a.size and b.size and _is_hermitian(a, eps) and _is_hermitian(b, eps):
        return solve_kronsum(q, [a, b.T], assume_a="sym", check_finite=False)
    import scipy.linalg

    return scipy.linalg.solve_sylvester(a, b, q)
