"""Kronecker-sum solves with per-item factors (the spectral-element pattern).

Each item ``e`` of a batch has factors of its own, ``A_k[e]`` (stacks of shape
``(..., n_k, n_k)`` whose leading dimensions broadcast against the right-hand
side's batch, as in NumPy's stacked ``matmul``).  Symmetric stacks are
decomposed once, in one batched ``eigh`` per factor; each solve is then
transform, divide by the eigenvalue sums, transform back, item by item:

* NumPy, items that fit in cache: the fused kernel (:mod:`._fused`) does the
  three steps for one item while it stays in cache, and the batch crosses
  memory once (read ``B``, write ``X``);
* otherwise two stacked transforms (``matmul`` per mode) and one division.
"""

from __future__ import annotations

from math import prod
from typing import Any

import numpy as np

from . import _fused
from ._backends import NUMPY
from ._backends.numpy import _fused_threads
from ._modeprod import _batched
from ._validation import _is_complex_scalar

__all__: list[str] = []


def _ch(be: Any, A: Any) -> Any:
    """The conjugate transpose of the last two axes."""
    At = be.swapaxes(A, -1, -2)
    return be.xp.conj(At) if be.is_complex(A.dtype) else At


def _hermitian(be: Any, A: Any, eps: float) -> bool:
    xp = be.xp
    big = float(np.asarray(be.to_host(xp.max(xp.abs(A))))) if A.size else 0.0
    if big == 0:
        return True
    gap = float(np.asarray(be.to_host(xp.max(xp.abs(A - _ch(be, A))))))
    return gap <= 8.0 * A.shape[-1] * eps * big


def is_symmetric(be: Any, mats: list, eps: float) -> bool:
    """Whether every stack is Hermitian to rounding (scaled test)."""
    return all(_hermitian(be, A, eps) for A in mats)


class PerItemSolver:
    """Symmetric per-item factors, decomposed once (batched ``eigh``).

    ``mats`` are validated stacks (square, of the backend ``be``); ``dt`` the
    working dtype.  Memory: the eigenvectors (``Σ_k n_k²`` per item), and on
    the fused route their packed copy (four matrices per mode and item) made
    on the first solve.
    """

    def __init__(self, be: Any, mats: list, dt: Any):
        self._be = be
        self.shape = tuple(int(A.shape[-1]) for A in mats)
        self.batch_shape = tuple(np.broadcast_shapes(*[tuple(A.shape[:-2]) for A in mats]))
        xp = be.xp
        self._dt = dt
        self.eigenvalues, self._Qs = [], []
        for A in mats:
            A = be.astype(A, dt)
            lam, Q = xp.linalg.eigh((A + _ch(be, A)) * 0.5)
            self.eigenvalues.append(lam)
            self._Qs.append(Q)
        self._packed: dict = {}  # batch -> packed factors of the fused route

    def _sums(self, batch: tuple, shift: Any) -> Any:
        """The eigenvalue sums plus shift, shape ``batch + shape``."""
        xp, d, nb = self._be.xp, len(self.shape), len(batch)
        S = None
        for k, lam in enumerate(self.eigenvalues):
            lb = tuple(lam.shape[:-1])
            shape = (1,) * (nb - len(lb)) + lb + tuple(
                self.shape[k] if j == k else 1 for j in range(d))
            t = xp.reshape(lam, shape)
            S = t if S is None else S + t
        return S + shift

    def check_nonsingular(self, batch: tuple, shift: Any, eps: float) -> Any:
        """Raise ``LinAlgError`` if an item's sum is singular; the sums (or None if not made)."""
        be, xp = self._be, self._be.xp
        d = len(self.shape)
        scale = sum(float(np.asarray(be.to_host(xp.max(xp.abs(lam)))))
                    for lam in self.eigenvalues) + abs(shift)
        if not _is_complex_scalar(shift):
            # real eigenvalues: every item definite (the usual case) needs no sums
            lo = sum(float(np.asarray(be.to_host(xp.min(lam)))) for lam in self.eigenvalues)
            hi = sum(float(np.asarray(be.to_host(xp.max(lam)))) for lam in self.eigenvalues)
            if lo + shift > d * eps * scale or hi + shift < -d * eps * scale:
                return None
        S = self._sums(batch, shift)
        smallest = float(np.asarray(be.to_host(xp.min(xp.abs(S)))))
        if not smallest > d * eps * scale:
            raise np.linalg.LinAlgError(
                f"the Kronecker sum of some item is singular to working precision: an "
                f"eigenvalue sum{' plus shift' if shift != 0 else ''} is {smallest:.3g}, zero "
                f"relative to the eigenvalue scale {scale:.3g}")
        return S

    def solve(self, B: Any, shift: Any, eps: float) -> Any:
        """``X`` of shape ``batch + shape`` for ``B`` of shape ``(..., *shape)``."""
        be = self._be
        d = len(self.shape)
        batch = tuple(np.broadcast_shapes(tuple(B.shape[:B.ndim - d]), self.batch_shape))
        S = self.check_nonsingular(batch, shift, eps)
        dt = self._dt
        if _is_complex_scalar(shift) and not be.is_complex(dt):
            dt = be.complex_of(dt)
        B = be.astype(B, dt)
        if be is NUMPY and prod(batch) > 0:
            X = self._solve_fused(B, batch, shift, dt)
            if X is not None:
                return X
        if S is None:
            S = self._sums(batch, shift)
        QH = [_ch(be, Q) for Q in self._Qs]
        Y = _batched(B, QH, None, False)
        return _batched(Y / S, self._Qs, None, False)

    def _solve_fused(self, B: np.ndarray, batch: tuple, shift: Any, dt: Any) -> Any:
        dt = np.dtype(dt)
        ip = _fused.items_plan(self.shape, dt.itemsize)
        if ip is None or not _fused.ready(dt, kind=1):
            return None
        key = (batch, dt.char)
        F = self._packed.get(key)
        if F is None:
            self._packed.clear()  # one batch shape kept (they are as large as the eigenvectors)
            F = self._packed[key] = _fused.pack_items(
                [_ch(self._be, Q) for Q in self._Qs], self._Qs, batch, dt)
        E = prod(batch)
        lam = np.concatenate([np.broadcast_to(lam, batch + lam.shape[-1:]).reshape(E, -1)
                              for lam in self.eigenvalues], axis=1).astype(dt)
        lam[:, :self.shape[0]] += shift
        full = batch + self.shape
        # broadcast_to gives a read-only view, which the kernel would copy again
        Bb = np.ascontiguousarray(B if B.shape == full else np.broadcast_to(B, full)
                                  ).reshape(E, -1)
        threads, submit = _fused_threads(4.0 * E * ip.N * sum(self.shape))
        return _fused.run_items(Bb, F, lam, ip, threads, submit).reshape(batch + self.shape)
