"""SciPy ``LinearOperator`` wrappers: lazy Kronecker operators, and inverses of Kronecker sums."""

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


class _InverseOperator(LinearOperator):
    """``LinearOperator`` applying the inverse of a factored Kronecker sum (plus shift)."""

    def __init__(self, solver: Any, shift: Any):
        self.solver = solver
        self.shift = shift
        N = 1
        for n in solver.shape:
            N *= n
        cplx = not solver._real_modes or isinstance(shift, complex | np.complexfloating)
        dtype = np.result_type(solver._in_dtype, np.complex64 if cplx else np.float16)
        super().__init__(dtype=dtype, shape=(N, N))

    def _solve(self, X: np.ndarray, shift: Any) -> np.ndarray:
        if X.ndim == 1:
            return self.solver.solve(X, shift)
        ns = self.solver.shape
        k = X.shape[1]
        Bt = np.ascontiguousarray(X.T).reshape((k,) + ns)
        return self.solver.solve(Bt, shift).reshape(k, -1).T

    def _matvec(self, x: np.ndarray) -> np.ndarray:
        return self._solve(x.reshape(-1), self.shift)

    def _matmat(self, X: np.ndarray) -> np.ndarray:
        return self._solve(X, self.shift)

    def _rmatvec(self, x: np.ndarray) -> np.ndarray:
        return self._rmatmat(x.reshape(-1, 1)).reshape(-1)

    def _rmatmat(self, X: np.ndarray) -> np.ndarray:
        if not all(m.hermitian for m in self.solver._modes):
            raise NotImplementedError(
                "the adjoint of the inverse needs symmetric (Hermitian) factors; factor "
                "the conjugate-transposed matrices in a KronSumSolver of their own")
        return self._solve(X, np.conj(self.shift))
