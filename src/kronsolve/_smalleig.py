"""Eigendecompositions of small real symmetric matrices, compiled by Numba.

The fast diagonalization method of a small problem spends about half its time
in LAPACK's ``dsyevd`` of the factors, most of it in per-call overhead and the
scalar QL iterations.  The same algorithm compiled by Numba, without that
overhead and with plain square roots instead of the overflow-safe ``dlapy2``,
takes about half as long (figures in the README, Performance):

1. the matrix is scaled so that its largest entry is 1 (no overflow or
   underflow in the squares below, whatever its magnitude);
2. Householder reduction to tridiagonal form, accumulating the orthogonal
   transformation (``tred2`` of *Numerical Recipes*);
3. the implicit QL algorithm with Wilkinson shifts on the tridiagonal matrix,
   applying each plane rotation to the rows of the transposed basis
   (``tqli``): contiguous rows instead of strided columns;
4. the eigenvalues sorted ascending (as ``eigh``) and scaled back, the
   eigenvectors in the columns of ``Q``.

It is backward stable, like LAPACK's: residuals ``‖A Q − Q Λ‖`` and
``‖QᵀQ − I‖`` of a few units of roundoff times ``‖A‖`` (checked in the tests,
on random, clustered, graded and tiny or huge matrices).

**Loading.** Importing Numba and loading the kernel costs about 0.3 s with a
warm cache (seconds on a cold one), far more than a small solve.  So the
compiled kernel is a second tier, as in a JIT, loaded by the rent-or-buy rule:
small decompositions go to LAPACK until they have taken ``_TIER_UP_SECONDS``
in the process (about what loading costs; some 10,000 decompositions of
16 x 16 matrices), and then the kernel is loaded.  A process never spends
more than about twice the time that the better choice in hindsight would
have: a script with a few small solves never imports Numba, and a long time
stepping loop or parameter sweep with changing factors gets the faster path
for nearly all of its solves.  Where Numba cannot be imported, everything
stays on LAPACK.  The environment variable ``KRONSOLVE_SMALL_EIGH`` (read at
the first small decomposition) sets ``lapack`` (never load the kernel: results
reproducible bit for bit across runs of any length), ``numba`` (load it at the
first small decomposition) or ``auto`` (the default).
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np

__all__: list[str] = []

# Seconds of small LAPACK decompositions in a process after which the compiled
# kernel is loaded (about its loading time with a warm cache).
_TIER_UP_SECONDS = 0.25
# Largest matrix order handled here.
_MAX_N = 32

# "mode" is None until the first call reads KRONSOLVE_SMALL_EIGH ("auto" by default)
_state: dict[str, Any] = {"kernel": None, "spent": 0.0, "mode": None}
_MODES = ("auto", "numba", "lapack")
_lock = threading.Lock()

_EPS = float(np.finfo(np.float64).eps)


def _symeig_py(A, lam, Q, z, d, e):  # pragma: no cover - compiled by Numba
    """Eigendecomposition of the exactly symmetric float64 matrix ``A``.

    Writes the eigenvalues in ascending order to ``lam`` and the orthonormal
    eigenvectors to the columns of ``Q``; ``z``, ``d`` and ``e`` are work
    arrays of shapes (n, n), (n,) and (n,).  Returns False (outputs undefined)
    for non-finite input or if the QL iterations do not converge.
    """
    n = A.shape[0]
    s = 0.0
    for i in range(n):
        for j in range(n):
            v = abs(A[i, j])
            if not math.isfinite(v):
                return False
            if v > s:
                s = v
    if s == 0.0:
        for i in range(n):
            lam[i] = 0.0
            for j in range(n):
                Q[i, j] = 1.0 if i == j else 0.0
        return True
    inv = 1.0 / s
    for i in range(n):
        for j in range(n):
            z[i, j] = A[i, j] * inv
    # --- Householder reduction to tridiagonal form (tred2)
    for i in range(n - 1, 0, -1):
        m = i - 1
        h = 0.0
        if m > 0:
            scale = 0.0
            for k in range(m + 1):
                scale += abs(z[i, k])
            if scale == 0.0:
                e[i] = z[i, m]
            else:
                for k in range(m + 1):
                    z[i, k] /= scale
                    h += z[i, k] * z[i, k]
                f = z[i, m]
                g = -math.sqrt(h) if f >= 0.0 else math.sqrt(h)
                e[i] = scale * g
                h -= f * g
                z[i, m] = f - g
                f = 0.0
                for j in range(m + 1):
                    z[j, i] = z[i, j] / h
                    g = 0.0
                    for k in range(j + 1):
                        g += z[j, k] * z[i, k]
                    for k in range(j + 1, m + 1):
                        g += z[k, j] * z[i, k]
                    e[j] = g / h
                    f += e[j] * z[i, j]
                hh = f / (h + h)
                for j in range(m + 1):
                    f = z[i, j]
                    g = e[j] - hh * f
                    e[j] = g
                    for k in range(j + 1):
                        z[j, k] -= f * e[k] + g * z[i, k]
        else:
            e[i] = z[i, m]
        d[i] = h
    d[0] = 0.0
    e[0] = 0.0
    for i in range(n):  # accumulate the transformations
        if d[i] != 0.0:
            for j in range(i):
                g = 0.0
                for k in range(i):
                    g += z[i, k] * z[k, j]
                for k in range(i):
                    z[k, j] -= g * z[k, i]
        d[i] = z[i, i]
        z[i, i] = 1.0
        for j in range(i):
            z[j, i] = 0.0
            z[i, j] = 0.0
    # rows of z become the basis vectors, so that rotations run along rows
    for i in range(n):
        for j in range(i + 1, n):
            t = z[i, j]
            z[i, j] = z[j, i]
            z[j, i] = t
    # --- implicit QL with shifts on the tridiagonal matrix (tqli)
    for i in range(1, n):
        e[i - 1] = e[i]
    e[n - 1] = 0.0
    budget = 30 * n
    for ll in range(n):
        while True:
            m = ll
            while m < n - 1:
                if abs(e[m]) <= _EPS * (abs(d[m]) + abs(d[m + 1])):
                    break
                m += 1
            if m == ll:
                break
            budget -= 1
            if budget < 0:
                return False
            # |g| <= 1 / (2 eps) here (e[ll] passed the test above): g * g is safe
            g = (d[ll + 1] - d[ll]) / (2.0 * e[ll])
            r = math.sqrt(g * g + 1.0)
            g = d[m] - d[ll] + e[ll] / (g + (r if g >= 0.0 else -r))
            sn = 1.0
            cs = 1.0
            p = 0.0
            i = m - 1
            deflated = False
            while i >= ll:
                f = sn * e[i]
                b = cs * e[i]
                r = math.sqrt(f * f + g * g)  # entries are at most about n: no overflow
                e[i + 1] = r
                if r == 0.0:  # underflow: recover and restart
                    d[i + 1] -= p
                    e[m] = 0.0
                    deflated = True
                    break
                sn = f / r
                cs = g / r
                g = d[i + 1] - p
                r = (d[i] - g) * sn + 2.0 * cs * b
                p = sn * r
                d[i + 1] = g + p
                g = cs * r - b
                for k in range(n):
                    f = z[i + 1, k]
                    z[i + 1, k] = sn * z[i, k] + cs * f
                    z[i, k] = cs * z[i, k] - sn * f
                i -= 1
            if deflated:
                continue
            d[ll] -= p
            e[ll] = g
            e[m] = 0.0
    # --- ascending order, scaled back; eigenvectors into the columns of Q
    order = np.argsort(d)
    for k in range(n):
        src = order[k]
        lam[k] = d[src] * s
        for i in range(n):
            Q[i, k] = z[src, i]
    return True


def _compile(numba: Any, cache: bool) -> Any:
    return numba.njit(cache=cache, nogil=True, boundscheck=False)(_symeig_py)


def _get_kernel() -> Any:
    """The compiled kernel, or ``False`` when Numba cannot be imported."""
    if _state["kernel"] is None:
        with _lock:
            if _state["kernel"] is None:
                from ._kernels import _compile_cached, _import_numba

                numba = _import_numba()
                _state["kernel"] = (False if numba is None
                                    else _compile_cached(lambda cache: _compile(numba, cache)))
    return _state["kernel"]


def _run(kern: Any, *args: Any) -> bool:
    try:
        return bool(kern(*args))
    except OSError:
        # The cache folder became unwritable after the kernel was set up: the
        # compiled code could not be saved.  Compile again without the cache.
        from ._kernels import _import_numba

        with _lock:
            kern = _state["kernel"] = _compile(_import_numba(), cache=False)
        return bool(kern(*args))


def small_eigh(A: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``(lam, Q)`` of the exactly symmetric float64 matrix ``A`` (n <= ``_MAX_N``).

    ``lam`` ascending, ``Q`` C-contiguous with orthonormal eigenvectors in its
    columns, as ``np.linalg.eigh``.  Returns None where this tier does not
    apply (not loaded yet, no Numba, forced to LAPACK) or did not succeed
    (non-finite entries, no convergence): the caller then uses LAPACK, and
    reports the time it took with :func:`note_lapack`.
    """
    kern = _state["kernel"]
    mode = _state["mode"] or _mode_from_env()
    if kern is None:
        if mode == "lapack" or mode == "auto" and _state["spent"] < _TIER_UP_SECONDS:
            return None
        kern = _get_kernel()
    if kern is False or mode == "lapack":
        return None
    n = A.shape[0]
    if not A.flags.c_contiguous:
        # symmetric: the transpose of a Fortran-ordered A is the same matrix
        A = A.T if A.flags.f_contiguous else np.ascontiguousarray(A)
    lam = np.empty(n)
    Q = np.empty((n, n))
    if not _run(kern, A, lam, Q, np.empty((n, n)), np.empty(n), np.empty(n)):
        return None
    return lam, Q


def _mode_from_env() -> str:
    """The tier mode set by ``KRONSOLVE_SMALL_EIGH`` (read once), ``"auto"`` if unset."""
    mode = os.environ.get("KRONSOLVE_SMALL_EIGH", "auto").strip().lower() or "auto"
    if mode not in _MODES:
        raise ValueError(
            f"the environment variable KRONSOLVE_SMALL_EIGH must be one of {_MODES}, "
            f"got {os.environ['KRONSOLVE_SMALL_EIGH']!r}"
        )
    _state["mode"] = mode
    return mode


def note_lapack(seconds: float) -> None:
    """Count ``seconds`` of a small LAPACK decomposition towards loading the kernel."""
    _state["spent"] += seconds


@contextlib.contextmanager
def _use_tier(mode: str) -> Iterator[None]:
    """Force ``"numba"`` (load now), ``"lapack"`` or ``"auto"`` inside a ``with`` block."""
    if mode not in _MODES:
        raise ValueError(f"mode must be 'auto', 'numba' or 'lapack', got {mode!r}")
    old = _state["mode"]
    _state["mode"] = mode
    try:
        yield
    finally:
        _state["mode"] = old
