"""The array-API backend: PyTorch, CuPy, JAX and other libraries that array-api-compat knows.

Everything is written in the library's array-API namespace, so results keep
their device (a CuPy array stays on its GPU) and PyTorch keeps its autograd
graph.  No buffers, no ``out=``: each step makes a new array, as autograd
needs.  Decompositions use the library's ``eigh``/``eig`` in double precision
(libraries without ``eig``, such as CuPy, decompose non-symmetric factors on
the host).

JAX arrays inside ``jax.jit``, ``jax.vmap`` or ``jax.grad`` are tracers without
values: the checks that need values (finiteness, symmetry, singular LU
factors) cannot run on them.  Finiteness and LU checks are skipped for
tracers (a singular factor then gives inf or NaN, as in ``jax.numpy.linalg``);
the symmetry and equality tests, whose answer picks a route, raise
``TypeError`` instead of guessing.
"""

from __future__ import annotations

from math import prod
from typing import Any

import numpy as np

from .._validation import _check_dtype, _is_sparse, _refuse_masked
from ._transform import plan, transform
from .base import Backend

__all__ = ["ArrayAPIBackend"]


def _matmul(a: Any, b: Any, out: Any) -> Any:
    return a @ b


class ArrayAPIBackend(Backend):
    """Backend of one array-API library (the namespace from array-api-compat)."""

    lazy = False

    def __init__(self, name: str, ref: Any):
        try:
            import array_api_compat
        except ImportError:  # pragma: no cover - depends on the environment
            raise TypeError(
                f"arrays from {name} need the optional package array-api-compat "
                "(pip install array-api-compat)"
            ) from None
        from .numpy import NUMPY

        self.name = name
        self._compat = array_api_compat
        self.xp = array_api_compat.array_namespace(ref)
        self.host = NUMPY
        self._type = type(ref)
        # the top-level modules of this library's array types (JAX: jaxlib arrays, jax tracers)
        self._modules = {name, "jaxlib"} if name == "jax" else {name}
        self._tracer: Any = None
        if name == "jax":
            import jax

            self._tracer = jax.core.Tracer

    def traced(self, a: Any) -> bool:
        """Whether ``a`` is a JAX tracer (an array without a value, inside a transformation)."""
        return self._tracer is not None and isinstance(a, self._tracer)

    def _need_value(self, a: Any, what: str) -> None:
        if self.traced(a):
            raise TypeError(
                f"{what} needs the values of a JAX array, but it is traced (inside jax.jit, "
                "jax.vmap or jax.grad); see the README's section on JAX for what runs traced")

    def _device(self, like: Any) -> Any:
        return None if like is None else self._compat.device(like)

    def _product(self, cur: Any, A: Any, p: int, n: int, q: int, m: int, out: Any) -> Any:
        xp = self.xp
        if q == 1:
            return xp.reshape(cur, (p, n)) @ A.T
        if p == 1:
            return A @ xp.reshape(cur, (n, q))
        return A @ xp.reshape(cur, (p, n, q))

    # --- arrays ------------------------------------------------------------
    def asarray(self, a: Any, name: str, like: Any = None) -> Any:
        if type(a).__module__.partition(".")[0] in self._modules:
            if not (self.xp.isdtype(a.dtype, "numeric") or a.dtype == self.xp.bool):
                raise TypeError(f"{name} must have a numeric dtype, got dtype {a.dtype}")
            return a
        if _is_sparse(a):
            raise TypeError(
                f"{name} is a scipy.sparse matrix, which works only with NumPy inputs; "
                f"call .toarray() to use it with {self.name} arrays"
            )
        _refuse_masked(a, name)
        a = np.asarray(a)
        _check_dtype(a.dtype, name)
        return self.xp.asarray(a, device=self._device(like))

    def to_host(self, a: Any) -> np.ndarray:
        if self.name == "torch":
            return a.detach().cpu().numpy()
        if self.name == "cupy":
            return a.get()
        self._need_value(a, "copying to the host")
        return np.asarray(a)

    def from_host(self, a: Any, like: Any = None) -> Any:
        return self.xp.asarray(np.asarray(a), device=self._device(like))

    def dense(self, A: Any) -> Any:
        return A

    def all_finite(self, a: Any) -> bool:
        if not self.xp.isdtype(a.dtype, ("real floating", "complex floating")) or \
                self.traced(a):
            return True
        return bool(self.xp.all(self.xp.isfinite(a)))

    def check_finite(self, a: Any, name: str) -> Any:
        if not self.all_finite(a):
            raise ValueError(f"{name} must contain only finite numbers, but it holds inf or NaN")
        return a

    def result_type(self, *arrays: Any) -> Any:
        return self.xp.result_type(*arrays)

    def work_dtype(self, *dtypes: Any, name: str = "input") -> Any:
        dt = self.xp.result_type(*dtypes)
        if self.xp.isdtype(dt, ("real floating", "complex floating")):
            return dt
        return self.xp.float64

    def is_complex(self, dtype: Any) -> bool:
        return self.xp.isdtype(dtype, "complex floating")

    def complex_of(self, dtype: Any) -> Any:
        if self.is_complex(dtype):
            return dtype
        return self.xp.complex64 if dtype == self.xp.float32 else self.xp.complex128

    def real_of(self, dtype: Any) -> Any:
        if not self.is_complex(dtype):
            return dtype
        return self.xp.float32 if dtype == self.xp.complex64 else self.xp.float64

    def eps(self, dtype: Any) -> float:
        return float(self.xp.finfo(dtype).eps)

    def double(self, complex_: bool) -> Any:
        return self.xp.complex128 if complex_ else self.xp.float64

    def numpy_dtype(self, dtype: Any) -> np.dtype:
        return self.to_host(self.xp.zeros((0,), dtype=dtype)).dtype

    def from_numpy_dtype(self, dtype: np.dtype) -> Any:
        return self.xp.asarray(np.zeros(0, dtype=dtype)).dtype

    def astype(self, a: Any, dtype: Any) -> Any:
        return a if a.dtype == dtype else self.xp.astype(a, dtype)

    def zeros(self, shape: tuple, dtype: Any, like: Any = None) -> Any:
        return self.xp.zeros(shape, dtype=dtype, device=self._device(like))

    def eye(self, n: int, dtype: Any, like: Any = None) -> Any:
        return self.xp.eye(n, dtype=dtype, device=self._device(like))

    def swapaxes(self, a: Any, i: int, j: int) -> Any:
        return self.xp.matrix_transpose(a)  # only (-1, -2) is ever asked for

    # --- tensors -----------------------------------------------------------
    def modeprod(self, X: Any, mats: list, modes: list[int], out: Any = None,
                 trans: Any = None, plans: dict | None = None) -> Any:
        if not mats:
            return self.xp.asarray(X, copy=True)
        p = plan(tuple(X.shape), tuple(tuple(A.shape) for A in mats), tuple(modes))
        if prod(X.shape) == 0 or 0 in p.shape_out:
            return self.zeros(p.shape_out, X.dtype, like=X)
        return transform(X, mats, p, _matmul, self._product, lambda s, shape: None)

    def divide(self, Y: Any, lams: list, shift: Any, b: int, free: Any) -> Any:
        d = len(lams)
        den = None
        for k, lam in enumerate(lams):
            shape = [1] * d
            shape[k] = lam.shape[0]
            t = self.xp.reshape(lam, tuple(shape))
            den = t if den is None else den + t
        return Y / (den + shift) if shift != 0 else Y / den

    def fdm(self, B: Any, mats: list, lams: list, shift: Any, wd: Any, out_dt: Any,
            overwrite_b: bool, d: int, middle: Any = None) -> Any:
        B = self.astype(B, wd)
        ns = tuple(B.shape[B.ndim - d:])
        b = B.ndim - d
        modes = tuple(range(b, b + d))
        p = plan(tuple(B.shape), tuple((n, n) for n in ns), modes)
        none = lambda s, shape: None  # noqa: E731
        Y = transform(B, [m[0] for m in mats], p, _matmul, self._product, none)
        if middle is None:
            Y = self.divide(Y, lams, shift, b, None)
        else:  # the triangular solve runs on the host
            Yh = np.array(self.to_host(Y), order="C")
            middle(Yh, b)
            Y = self.from_host(Yh, like=B)
        X = transform(Y, [m[1] for m in mats], p, _matmul, self._product, none)
        return self.xp.real(X) if wd != out_dt else X

    # --- decompositions ------------------------------------------------------
    def eigh(self, A: Any, name: str) -> tuple[Any, Any]:
        return self.xp.linalg.eigh(A)

    def eigh_pencil(self, K: Any, M: Any, mname: str, mshape: tuple) -> tuple[Any, Any]:
        """``K v = λ M v`` through the Cholesky factor of ``M`` (differentiable)."""
        xp = self.xp
        err = np.linalg.LinAlgError(
            f"{mname} (shape {mshape}) must be symmetric (Hermitian) positive definite, "
            "but its Cholesky factorization failed")
        try:
            L = xp.linalg.cholesky(M)
        except Exception:
            raise err from None
        if not self.all_finite(L):
            raise err
        Y = xp.linalg.solve(L, K)
        C = xp.linalg.solve(L, self.H(Y))
        lam, U = xp.linalg.eigh((C + self.H(C)) * 0.5)
        return lam, xp.linalg.solve(self.H(L), U)

    def eig(self, K: Any, M: Any = None) -> tuple[Any, Any] | None:
        """Eigenpairs of ``K`` (or ``M⁻¹K``), or None when the library has no ``eig``."""
        xp = self.xp
        if not hasattr(xp.linalg, "eig"):
            return None
        return xp.linalg.eig(K if M is None else xp.linalg.solve(M, K))

    def inv(self, A: Any) -> Any:
        try:
            W = self.xp.linalg.inv(A)
        except Exception:
            return None
        return W if self.all_finite(W) else None

    def is_hermitian(self, A: Any, eps: float) -> bool:
        self._need_value(A, "the symmetry test of a factor")
        n = A.shape[0]
        if n <= 1:
            return not self.is_complex(A.dtype) or n == 0 or float(self.xp.imag(A[0, 0])) == 0
        AH = self.H(A)
        if self.equal(A, AH):
            return True
        big = float(self.to_host(self.xp.max(self.xp.abs(A))))
        if not big > 0 or big == float("inf"):
            return False
        A, AH = A / big, AH / big  # no overflow or underflow in the norms
        return self.norm(A - AH) <= 8.0 * n ** 0.5 * eps * self.norm(A)

    def equal(self, A: Any, B: Any) -> bool:
        self._need_value(A, "comparing factors")
        self._need_value(B, "comparing factors")
        return tuple(A.shape) == tuple(B.shape) and bool(self.xp.all(A == B))

    def norm(self, A: Any, ord: Any = None) -> float:
        r = self.xp.linalg.matrix_norm(A, ord="fro" if ord is None else ord)
        return float(self.to_host(r))


    # --- dense algebra of factors ------------------------------------------
    def trace(self, A: Any) -> Any:
        return self.xp.sum(self.diagonal(A))

    def diagonal(self, A: Any) -> Any:
        return self.xp.linalg.diagonal(A)

    def slogdet(self, A: Any) -> tuple[Any, Any]:
        return self.xp.linalg.slogdet(A)

    def eigvals(self, A: Any) -> Any:
        if hasattr(self.xp.linalg, "eigvals"):
            return self.xp.linalg.eigvals(A)
        return self.from_host(np.linalg.eigvals(self.to_host(A)), like=A)

    def eigvalsh(self, A: Any) -> Any:
        return self.xp.linalg.eigvalsh(A)

    def matrix_norm(self, A: Any, ord: Any) -> Any:
        if ord == 2 and not self.is_complex(A.dtype) and prod(A.shape) == 0:
            return self.xp.asarray(0.0)
        return self.xp.linalg.matrix_norm(A, ord="fro" if ord is None else ord)

    def take2(self, A: Any, rows: np.ndarray, cols: np.ndarray) -> Any:
        return A[self.from_host(rows, like=A), self.from_host(cols, like=A)]

    def lu_factor(self, A: Any) -> Any:
        """The factor itself (the library's ``solve`` factorizes); None when singular."""
        dt = self.work_dtype(A.dtype)
        A = self.astype(A, dt)
        if self.traced(A):  # no value to test: a singular factor gives inf/NaN
            return A
        return A if self.inv(A) is not None else None

    def lu_solve(self, lu: Any, B: Any) -> Any:
        return self.xp.linalg.solve(lu, self.astype(B, lu.dtype))

    def lu_dtype(self, lu: Any) -> Any:
        return lu.dtype
