"""The contract of a backend: the primitives that operators and solvers call."""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

__all__ = ["Backend"]


class Backend:
    """Primitives of one array library.

    Operators and solvers hold a backend and call only these.  Arrays passed in
    are of the backend's kind (converted by :meth:`asarray`), except where said.

    Attributes
    ----------
    name : str
        ``"numpy"``, the library's name (``"torch"``, ``"cupy"``...) or ``"dask"``.
    xp : module
        The library's array namespace (array-API compatible where one exists).
    lazy : bool
        True when results are task graphs (Dask).
    host : Backend
        The backend that does the dense algebra of small factors (Dask: NumPy).
    """

    name: str = "?"
    xp: Any = None
    lazy: bool = False
    host: Backend

    def __repr__(self) -> str:
        return f"<kronsolve backend {self.name}>"

    def unsupported(self, what: str) -> NotImplementedError:
        return NotImplementedError(f"{what} is not available for {self.name} arrays")

    # --- arrays ------------------------------------------------------------
    def asarray(self, a: Any, name: str, like: Any = None) -> Any:
        """``a`` as an array of this kind on ``like``'s device, with a numeric dtype."""
        raise NotImplementedError

    def tensor(self, a: Any, name: str, like: Any = None) -> Any:
        """A tensor or right-hand side of this kind (Dask chunks NumPy ones ``"auto"``)."""
        return self.asarray(a, name, like)

    def modesum(self, X: Any, mats: list, modes: list[int]) -> Any:
        """``Σ_i X ×_modes[i] mats[i]`` (the product of a Kronecker sum)."""
        out = self.modeprod(X, [mats[0]], [modes[0]])
        for A, k in zip(mats[1:], modes[1:]):
            out = out + self.modeprod(X, [A], [k])
        return out

    def matrix(self, a: Any, name: str, like: Any = None) -> Any:
        """A 2-D factor of this kind (NumPy: scipy.sparse kept as it is)."""
        a = self.asarray(a, name, like)
        if a.ndim != 2:
            raise ValueError(f"{name} must be a 2-D matrix, got an array of shape "
                             f"{tuple(a.shape)}")
        return a

    def to_host(self, a: Any) -> Any:
        """A NumPy copy (or view) of ``a``."""
        raise NotImplementedError

    def from_host(self, a: Any, like: Any = None) -> Any:
        """The NumPy array ``a`` as this kind."""
        return self.asarray(a, "array", like)

    def all_finite(self, a: Any) -> bool:
        raise NotImplementedError

    def result_type(self, *arrays: Any) -> Any:
        raise NotImplementedError

    def work_dtype(self, *dtypes: Any, name: str = "input") -> Any:
        """The floating dtype that linear algebra uses for these inputs."""
        raise NotImplementedError

    def is_complex(self, dtype: Any) -> bool:
        raise NotImplementedError

    def complex_of(self, dtype: Any) -> Any:
        raise NotImplementedError

    def real_of(self, dtype: Any) -> Any:
        raise NotImplementedError

    def eps(self, dtype: Any) -> float:
        raise NotImplementedError

    def astype(self, a: Any, dtype: Any) -> Any:
        raise NotImplementedError

    def zeros(self, shape: tuple, dtype: Any, like: Any = None) -> Any:
        raise NotImplementedError

    def eye(self, n: int, dtype: Any, like: Any = None) -> Any:
        raise NotImplementedError

    def swapaxes(self, a: Any, i: int, j: int) -> Any:
        return self.xp.swapaxes(a, i, j) if hasattr(self.xp, "swapaxes") else \
            self.xp.moveaxis(a, i, j)

    # NumPy dtypes by default (NumPy, Dask); array-API libraries override these
    def double(self, complex_: bool) -> Any:
        """The double-precision dtype, real or complex."""
        return np.dtype(np.complex128 if complex_ else np.float64)

    def numpy_dtype(self, dtype: Any) -> np.dtype:
        return np.dtype(dtype)

    def from_numpy_dtype(self, dtype: np.dtype) -> Any:
        return dtype

    # --- tensors -----------------------------------------------------------
    def prepare_factors(self, factors: tuple, dtype: Any, N: int) -> tuple:
        """Factors of a product in ``dtype``: ``(mats, column sizes, transposes or None)``."""
        mats = tuple(self.astype(A, dtype) for A in factors)
        return mats, tuple(int(A.shape[1]) for A in mats), None

    def threads(self, flops: float) -> Any:
        """Context manager: the thread policy of a call of ``flops`` operations (none here)."""
        return contextlib.nullcontext()

    def transposes(self, A: Any) -> Any:
        """A contiguous ``Aᵀ`` for the front scheme, or None (backends without buffers)."""
        return None

    def modeprod(self, X: Any, mats: list, modes: list[int], out: Any = None,
                 trans: Any = None, plans: dict | None = None) -> Any:
        """``X`` times ``mats[i]`` along ``modes[i]`` for every ``i`` (one dtype).

        ``out``: where to write the result (backends with buffers); ``trans``:
        contiguous transposes of ``mats`` (from :meth:`prepare_factors`);
        ``plans``: a dict in which the caller lets the backend memoize its plans.
        """
        raise NotImplementedError

    def divide(self, Y: Any, lams: list, shift: Any, b: int, free: Any) -> Any:
        """``Y`` divided by the eigenvalue sums ``lams[0][i0] + ... + shift`` on the
        modes ``b, b+1, ...``; in place where the backend allows (``free``: scratch)."""
        raise NotImplementedError

    def fdm(self, B: Any, mats: list, lams: list, shift: Any, wd: Any, out_dt: Any,
            overwrite_b: bool, d: int, middle: Any = None) -> Any:
        """The solve of the Kronecker-sum solvers: transform, divide, transform back.

        ``mats[k]`` is ``(fwd, bwd, fwdᵀ, bwdᵀ)`` of mode ``k`` in ``wd``; ``middle(Y,
        b)``, when given, replaces the division (the Schur back-substitution, on
        a NumPy array).  ``out_dt``: the result's dtype (the real part of a
        complex ``wd``).
        """
        raise self.unsupported("the fast diagonalization solve")

    def check_finite(self, a: Any, name: str) -> Any:
        """``a`` unchanged, or ValueError naming ``name`` when it holds inf or NaN."""
        raise self.unsupported("check_finite")

    def dense(self, A: Any) -> Any:
        """A dense array of this library (scipy.sparse factors densified)."""
        return A

    # --- decompositions (the factor algebra of the solvers) ------------------
    def eigh(self, A: Any, name: str) -> tuple[Any, Any]:
        """``(eigenvalues ascending, orthonormal eigenvectors)`` of a Hermitian matrix."""
        raise self.unsupported("eigh")

    def eigh_pencil(self, K: Any, M: Any, mname: str, mshape: tuple) -> tuple[Any, Any]:
        """``K v = λ M v`` for Hermitian ``K`` and positive definite ``M`` (else LinAlgError)."""
        raise self.unsupported("eigh of a pencil")

    def eig(self, K: Any, M: Any = None) -> tuple[Any, Any] | None:
        """Eigenpairs of ``K`` (or of ``M⁻¹K``), or None when the library has no ``eig``."""
        return None

    def inv(self, A: Any) -> Any:
        """Inverse, or None when ``A`` is singular."""
        raise self.unsupported("inv")

    def is_hermitian(self, A: Any, eps: float) -> bool:
        """``A`` equals its conjugate transpose up to a few rounding errors (scaled)."""
        raise self.unsupported("is_hermitian")

    def equal(self, A: Any, B: Any) -> bool:
        """Exact equality of two arrays (shape and values)."""
        raise self.unsupported("equal")

    def norm(self, A: Any, ord: Any = None) -> float:
        """A matrix norm as a Python float (Frobenius by default)."""
        raise self.unsupported("norm")

    def decompose_all(self, jobs: list, decompose: Any) -> tuple[list, int]:
        """``decompose(*job)`` for every job, and the flops run in parallel (0 here)."""
        return [decompose(*job) for job in jobs], 0

    def one_thread(self) -> Any:
        """Context manager: BLAS with one thread (nothing to do here)."""
        return contextlib.nullcontext()

    # --- dense algebra of factors -----------------------------------------
    def trace(self, A: Any) -> Any:
        raise self.unsupported("trace")

    def diagonal(self, A: Any) -> Any:
        raise self.unsupported("diagonal")

    def slogdet(self, A: Any) -> tuple[Any, Any]:
        raise self.unsupported("slogdet")

    def eigvals(self, A: Any) -> Any:
        raise self.unsupported("eigvals")

    def eigvalsh(self, A: Any) -> Any:
        raise self.unsupported("eigvalsh")

    def matrix_norm(self, A: Any, ord: Any) -> Any:
        raise self.unsupported("matrix_norm")

    def take2(self, A: Any, rows: np.ndarray, cols: np.ndarray) -> Any:
        """``A[rows, cols]`` elementwise (fancy indexing with two index arrays)."""
        raise self.unsupported("take2")

    def lu_factor(self, A: Any) -> Any:
        """An LU factorization of a square matrix (LinAlgError when singular)."""
        raise self.unsupported("lu_factor")

    def lu_solve(self, lu: Any, B: Any) -> Any:
        raise self.unsupported("lu_solve")

    def lu_dtype(self, lu: Any) -> Any:
        raise self.unsupported("lu_dtype")

    def kron(self, a: Any, b: Any) -> Any:
        """``np.kron`` of two matrices or two vectors (by broadcasting)."""
        xp = self.xp
        if a.ndim == 1:
            return xp.reshape(a[:, None] * b[None, :], (-1,))
        m1, n1 = a.shape
        m2, n2 = b.shape
        return xp.reshape(a[:, None, :, None] * b[None, :, None, :], (m1 * m2, n1 * n2))

    def conj(self, a: Any) -> Any:
        return self.xp.conj(a)

    def H(self, a: Any) -> Any:
        """Conjugate transpose of a matrix."""
        return self.conj(a).T if self.is_complex(a.dtype) else a.T
