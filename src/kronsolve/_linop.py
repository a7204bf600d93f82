"""SciPy ``LinearOperator`` wrapper for lazy Kronecker operators."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.sparse.linalg import LinearOperator

__all__: list[str] = []


class _KronLinearOperator(LinearOperator):
    """``LinearOperator`` view of a ``KronProduct`` / ``KronProductSum`` / ``KronSum``.

    ``_matmat`` is a single contraction over all columns, and the adjoint is
    the operator's own lazy ``.H``.
    """

    def __init__(self, op: Any):
        self.op = op
        super().__init__(dtype=np.dtype(op.dtype), shape=op.shape)

    def _matvec(self, x: np.ndarray) -> np.ndarray:
        return self.op @ x.reshape(-1)

    def _rmatvec(self, x: np.ndarray) -> np.ndarray:
        return self.op.H @ x.reshape(-1)

    def _matmat(self, X: np.ndarray) -> np.ndarray:
        return self.op @ X

    def _rmatmat(self, X: np.ndarray) -> np.ndarray:
        return self.op.H @ X

    def _adjoint(self) -> _KronLinearOperator:
        return _KronLinearOperator(self.op.H)

    def _transpose(self) -> _KronLinearOperator:
        return _KronLinearOperator(self.op.T)
