"""Argument checks shared by every public function.

All checks raise ``TypeError``/``ValueError`` whose message names the argument,
what was expected and what came.  Nothing here uses ``assert``, and nothing
here knows any array library but NumPy: the checks of shapes take any object
with ``ndim`` and ``shape``.
"""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__: list[str] = []

# dtype kinds that linear algebra accepts: bool, signed/unsigned int, float, complex
_NUMERIC_KINDS = frozenset("biufc")
# floating dtypes that LAPACK and BLAS handle
_LAPACK_DTYPES = tuple(np.dtype(t) for t in (np.float32, np.float64, np.complex64, np.complex128))


def _is_sparse(A: Any) -> bool:
    """True for scipy.sparse matrices and arrays (without importing scipy)."""
    if type(A) is np.ndarray:
        return False
    return type(A).__module__.startswith("scipy.sparse") and hasattr(A, "tocsr")


def _check_dtype(dtype: np.dtype, name: str) -> None:
    """Numeric dtypes only, and no extended precision (BLAS and LAPACK lack it)."""
    if dtype.kind not in _NUMERIC_KINDS:
        raise TypeError(
            f"{name} must have a numeric (bool, integer, floating or complex) dtype, "
            f"got dtype {dtype}"
        )
    if dtype.kind in "fc" and dtype.itemsize > (8 if dtype.kind == "f" else 16):
        raise TypeError(
            f"{name} has dtype {dtype}, which is not supported: use float32, float64, "
            "complex64 or complex128"
        )


def _refuse_masked(x: Any, name: str) -> None:
    if isinstance(x, np.ma.MaskedArray):
        raise TypeError(
            f"{name} is a masked array, which is not supported (its mask would be ignored); "
            "pass x.filled(...) or np.asarray(x) to use the data as it is"
        )


def _as_matrix(A: Any, name: str, *, allow_sparse: bool = True) -> Any:
    """``A`` as a 2-D numeric ndarray (or a scipy.sparse matrix, untouched)."""
    if type(A) is not np.ndarray:
        if _is_sparse(A):
            if not allow_sparse:
                raise TypeError(f"{name} must be a dense array, got a scipy.sparse matrix")
            if A.ndim != 2:
                raise ValueError(f"{name} must be 2-D, got a sparse array of shape {A.shape}")
            _check_dtype(A.dtype, name)
            return A
        _refuse_masked(A, name)
        A = np.asarray(A)
    if A.ndim != 2:
        raise ValueError(f"{name} must be a 2-D matrix, got an array of shape {A.shape}")
    _check_dtype(A.dtype, name)
    return A


def _as_array(x: Any, name: str) -> np.ndarray:
    """``x`` as a numeric ndarray (no copy when it already is one)."""
    if type(x) is not np.ndarray:
        if _is_sparse(x):
            raise TypeError(
                f"{name} must be a dense array; got a scipy.sparse {type(x).__name__} of shape "
                f"{x.shape} (call .toarray() first)"
            )
        _refuse_masked(x, name)
        x = np.asarray(x)
    if x.dtype.kind not in "fc" or x.dtype.itemsize > 16:
        _check_dtype(x.dtype, name)
    return x


def _check_finite(x: Any, name: str) -> None:
    """Raise ``ValueError`` if the NumPy (or sparse) ``x`` holds inf or NaN."""
    data = x.data if _is_sparse(x) else x
    if data.dtype.kind in "fc" and not np.isfinite(data).all():
        raise _not_finite(name)


def _not_finite(name: str) -> ValueError:
    return ValueError(f"{name} must contain only finite numbers, but it holds inf or NaN")


def _normalize_axis(axis: Any, ndim: int, name: str) -> int:
    try:
        axis = operator.index(axis)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {type(axis).__name__}") from None
    if not -ndim <= axis < ndim:
        raise ValueError(
            f"{name}={axis} is out of range for an array with {ndim} dimension(s) "
            f"(valid: {-ndim} to {ndim - 1})"
        )
    return axis % ndim


def _is_scalar(c: Any) -> bool:
    if isinstance(c, numbers.Number):
        return True
    return isinstance(c, np.ndarray | np.generic) and np.ndim(c) == 0


def _is_complex_scalar(x: Any) -> bool:
    return isinstance(x, complex | np.complexfloating)


def _check_shift(shift: Any) -> Any:
    """A finite real or complex scalar (0-d arrays are unpacked)."""
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


def _factor_list(mats: Any, name: str, extra: tuple = (), func: str = "") -> list:
    """The factors of a solver as a list: a sequence, or a 3-D stack of matrices.

    ``extra`` are positional arguments that came after ``mats`` (a common slip:
    ``KronSumSolver(A1, A2, A3)``), refused with a message that says how to call.
    """
    if extra:
        raise TypeError(
            f"{func or name} takes the factors in a list: write {name}=[A1, A2, ...] "
            f"(got {1 + len(extra)} matrices as separate positional arguments)"
        )
    if isinstance(mats, list | tuple):
        return list(mats)
    if getattr(mats, "ndim", None) == 3 and not _is_sparse(mats):
        return [mats[i] for i in range(mats.shape[0])]
    shape = f" of shape {tuple(mats.shape)}" if hasattr(mats, "shape") else ""
    if isinstance(mats, Sequence) and not isinstance(mats, str | bytes):
        return list(mats)
    raise TypeError(
        f"{name} must be a sequence (list) of square matrices, one per dimension, got "
        f"{type(mats).__name__}{shape}; wrap a single matrix in a list: [A]"
    )


def _check_rhs(shape: tuple[int, int], x: Any) -> None:
    """``x`` must be something ``@`` accepts on the right of a ``shape`` matrix."""
    N = shape[1]
    if x.ndim == 0:
        raise ValueError("matmul: x must have at least one dimension, got a 0-d array")
    if (x.shape[0] if x.ndim == 1 else x.shape[-2]) != N:
        axis = 0 if x.ndim == 1 else x.ndim - 2
        raise ValueError(
            f"matmul: operand of shape {shape} cannot multiply x of shape {tuple(x.shape)}: "
            f"expected x.shape[{axis}] == {N}"
        )


def _check_solve_rhs(shape: tuple[int, int], b: Any) -> None:
    """``b`` must be a right-hand side of a ``shape`` system, as for ``np.linalg.solve``."""
    N = shape[0]
    if b.ndim == 0 or (b.shape[0] if b.ndim == 1 else b.shape[-2]) != N:
        raise ValueError(
            f"b must have shape ({N},) or (..., {N}, k) to match the operator of shape "
            f"{shape}, got {tuple(b.shape)}"
        )


def _check_tensor_rhs(ns: tuple[int, ...], B: Any, name: str) -> bool:
    """``B`` must be ``(..., n1, ..., nd)`` or a flat ``(N,)``; True for the flat form."""
    d = len(ns)
    shape = tuple(B.shape)
    if B.ndim >= d and shape[B.ndim - d:] == ns:
        return False
    if B.ndim == 1 and d > 1 and shape[0] == math.prod(ns):
        return True
    raise ValueError(
        f"{name} must have shape {ns} (optionally with leading batch dimensions), or "
        f"({math.prod(ns)},) flat, to match the factors of shape {[(n, n) for n in ns]}; "
        f"got shape {shape}"
    )


def _resolve_modes(shape: tuple[int, ...], mats: list, modes: Any, transpose: bool,
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


def _check_nbytes(nbytes: Any, name: str = "nbytes") -> int:
    try:
        nbytes = operator.index(nbytes)
    except TypeError:
        raise TypeError(f"{name} must be an integer number of bytes, got "
                        f"{type(nbytes).__name__} {nbytes!r}") from None
    if nbytes < 0:
        raise ValueError(f"{name} must be non-negative, got {nbytes}")
    return nbytes
