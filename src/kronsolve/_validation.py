"""Input validation shared by every public function.

All checks raise ``TypeError``/``ValueError`` whose message names the argument,
what was expected and what came.  Nothing here ever uses ``assert``.
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np

from ._backend import _is_foreign

__all__: list[str] = []

# dtype kinds that linear algebra accepts: bool, signed/unsigned int, float, complex
_NUMERIC_KINDS = frozenset("biufc")


def _is_sparse(A: Any) -> bool:
    """True for scipy.sparse matrices and arrays (without importing scipy)."""
    if type(A) is np.ndarray:
        return False
    return type(A).__module__.startswith("scipy.sparse") and hasattr(A, "tocsr")


def _check_dtype(dtype: np.dtype, name: str) -> None:
    if dtype.kind not in _NUMERIC_KINDS:
        raise TypeError(
            f"{name} must have a numeric (bool, integer, floating or complex) dtype, "
            f"got dtype {dtype}"
        )


def _as_matrix(A: Any, name: str, *, allow_sparse: bool = True) -> Any:
    """Return ``A`` as a 2-D numeric ndarray (or a scipy.sparse matrix, untouched)."""
    if allow_sparse and _is_sparse(A):
        if A.ndim != 2:
            raise ValueError(f"{name} must be 2-D, got a sparse array of shape {A.shape}")
        _check_dtype(A.dtype, name)
        return A
    if type(A) is not np.ndarray:
        if hasattr(A, "__array_namespace__") or _is_foreign(A):
            raise TypeError(
                f"{name} must be a NumPy array or a scipy.sparse matrix, got "
                f"{type(A).__module__}.{type(A).__qualname__}"
            )
        A = np.asarray(A)
    if A.ndim != 2:
        raise ValueError(f"{name} must be a 2-D matrix, got an array of shape {A.shape}")
    _check_dtype(A.dtype, name)
    return A


def _as_array(x: Any, name: str) -> np.ndarray:
    """Return ``x`` as a numeric ndarray (no copy when it already is one)."""
    if type(x) is not np.ndarray:
        if _is_sparse(x):
            raise TypeError(
                f"{name} must be a dense array; got a scipy.sparse {type(x).__name__} of shape "
                f"{x.shape} (call .toarray() first)"
            )
        x = np.asarray(x)
    if x.dtype.kind not in _NUMERIC_KINDS:
        _check_dtype(x.dtype, name)
    return x


def _check_finite(x: Any, name: str) -> None:
    """Raise ``ValueError`` if ``x`` holds inf or NaN (as SciPy's ``check_finite``)."""
    if _is_sparse(x):
        data = x.data
    else:
        data = x
    if data.dtype.kind in "fc" and not np.isfinite(data).all():
        raise ValueError(f"{name} must contain only finite numbers, but it holds inf or NaN")


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
