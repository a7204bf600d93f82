"""Sums of eigenvalues over a Kronecker sum's modes (NumPy, host side).

The eigenvalues of ``A1 ⊕ ... ⊕ Ad`` are the sums ``λ1[i1] + ... + λd[id]``;
these helpers form them in C order and find the one nearest to zero (the
singularity check of the solvers), without forming all ``N`` when the
eigenvalues are real.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__: list[str] = []

# Eigenvalue sums are formed and searched in blocks of about this many entries.
_BLOCK = 1 << 16


def _singular_tol(eps: float, d: int, scale: float) -> float:
    """An eigenvalue sum at most this far from zero makes the sum singular.

    ``scale`` is ``Σ_k max|λ_k| + |shift|``: a sum below ``d·eps·scale`` means a
    condition number beyond about ``1 / (d·eps)``, where the computed
    eigenvalues (each exact to about ``eps·max|λ_k|``) no longer separate it
    from zero.  The size of the factors does not enter: float32 Poisson
    problems of any size stay solvable while their condition number is.
    """
    return d * eps * scale


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


def _any_sum_near_zero(lams: list[np.ndarray], shift: Any, tol: float) -> bool:
    """Whether some sum ``λ1[i1] + ... + λd[id] + shift`` has modulus at most ``tol``.

    A sum that small has a real part within ``tol`` of zero: for each sum over
    all modes but the largest one, a binary search in that mode's sorted real
    parts finds the few candidates (usually none), ``O(N / n_max · log)``.
    """
    d = len(lams)
    ns = [lam.shape[0] for lam in lams]
    k = int(np.argmax(ns))
    others = [lams[j] for j in range(d) if j != k]
    S1 = (_sums(others, shift).ravel() if others else np.full(1, shift)).astype(np.complex128)
    lk = lams[k].astype(np.complex128)
    order = np.argsort(lk.real, kind="stable")
    re = lk.real[order]
    lo = np.searchsorted(re, -S1.real - tol, side="left")
    hi = np.searchsorted(re, -S1.real + tol, side="right")
    for i in np.flatnonzero(hi > lo):
        cand = lk[order[lo[i]:hi[i]]]
        if np.any(np.abs(S1[i] + cand) <= tol):
            return True
    return False


def _slogdet_sums(lams: list[np.ndarray], shift: Any) -> tuple[Any, float]:
    """``(sign, log|Π s|)`` over all sums ``s = λ1[i1] + ... + λd[id] + shift``, in blocks.

    Real sums give a real sign (0 when a sum is zero); complex ones a complex
    sign of modulus 1, made real when the imaginary parts cancel (conjugate
    pairs of a real operator).
    """
    lams = [np.asarray(lam) for lam in lams]
    cplx = any(lam.dtype.kind == "c" for lam in lams) or isinstance(shift, complex)
    d = len(lams)
    first, rest = lams[0], lams[1:]
    inner = _sums(rest, shift) if rest else np.asarray(shift)
    logabs = 0.0
    phase = 0.0
    negatives = 0
    rows = max(1, _BLOCK // max(inner.size, 1))
    for r0 in range(0, first.shape[0], rows):
        blk = first[r0:r0 + rows].reshape((-1,) + (1,) * (d - 1)) + inner
        a = np.abs(blk)
        if not np.all(a > 0):
            zero = np.zeros((), np.complex128 if cplx else np.float64)[()]
            return zero, -np.inf
        logabs += float(np.sum(np.log(a)))
        if cplx:
            phase += float(np.sum(np.angle(blk)))
        else:
            negatives += int(np.count_nonzero(blk < 0))
    if not cplx:
        return np.float64(-1.0 if negatives % 2 else 1.0), logabs
    sign = complex(np.cos(phase), np.sin(phase))
    if abs(sign.imag) < 1e-8 * (1 + abs(phase)):
        return np.float64(1.0 if sign.real > 0 else -1.0), logabs
    return np.complex128(sign), logabs
