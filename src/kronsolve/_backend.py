"""Which array library an input belongs to, and bringing inputs to one kind.

Public functions take NumPy inputs down their own fast paths and check, at
their very top and at the cost of a type comparison, whether any input comes
from another array library (CuPy, PyTorch, Dask, or anything else that
``array-api-compat`` knows).  Such calls go to the array-API implementations in
``_generic`` (and ``_dask`` for Dask's lazy graphs).

Mixing rule
-----------
All non-NumPy inputs of one call must come from the same library; otherwise a
``TypeError`` names the libraries.  NumPy arrays (and Python sequences and
scalars) may be mixed with them and are converted to that kind: small NumPy
factors with a large tensor is the common case (on the tensor's device, for
PyTorch and CuPy).  ``scipy.sparse`` matrices work only with NumPy inputs.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

__all__: list[str] = []

# top-level modules of array types that take the array-API path
_FOREIGN = frozenset({"torch", "cupy", "dask", "jax", "jaxlib", "array_api_strict", "sparse",
                      "ndonnx", "mlx"})


def _is_foreign(x: Any) -> bool:
    """True for an array of another library than NumPy (call after ``type(x) is not ndarray``)."""
    return type(x).__module__.partition(".")[0] in _FOREIGN


def _foreign_in(X: Any, mats: Any) -> bool:
    """Whether ``X`` or an entry of the list/tuple ``mats`` is a non-NumPy array (cheap)."""
    return (type(X) is not np.ndarray and _is_foreign(X)) or _foreign_seq(mats)


def _foreign_seq(mats: Any) -> bool:
    """Whether an entry of the list/tuple ``mats`` is a non-NumPy array (cheap)."""
    if type(mats) is list or type(mats) is tuple:
        for A in mats:
            if type(A) is not np.ndarray and _is_foreign(A):
                return True
    return False


def _any_foreign(*arrays: Any) -> bool:
    for x in arrays:
        if type(x) is not np.ndarray and _is_foreign(x):
            return True
    return False


def _library(x: Any) -> str:
    return type(x).__module__.partition(".")[0]


def _kind_of(*arrays: Any) -> str | None:
    """The one foreign library among ``arrays`` (None: all NumPy); ``TypeError`` on a mix."""
    names = set()
    for x in arrays:
        if x is None or type(x) is np.ndarray:
            continue
        if _is_foreign(x):
            names.add(_library(x))
    if len(names) > 1:
        raise TypeError(
            "inputs mix array libraries "
            f"({', '.join(sorted(names))}); convert them to one kind first "
            "(NumPy arrays may be mixed with any one other kind)"
        )
    return names.pop() if names else None


def _namespace_of(x: Any) -> ModuleType:
    """The array-API namespace of the foreign array ``x`` (via array-api-compat)."""
    try:
        import array_api_compat
    except ImportError:  # pragma: no cover - depends on the environment
        raise TypeError(
            f"arrays from {_library(x)} need the optional package array-api-compat "
            "(pip install array-api-compat)"
        ) from None
    return array_api_compat.array_namespace(x)


def _device_of(x: Any) -> Any:
    import array_api_compat

    return array_api_compat.device(x)


def _to_numpy(x: Any) -> np.ndarray:
    """A host NumPy copy of a small array of any kind (factors only, never a tensor)."""
    if type(x) is np.ndarray:
        return x
    lib = _library(x)
    if lib == "torch":
        return x.detach().cpu().numpy()
    if lib == "cupy":
        return x.get()
    if lib == "dask":
        return np.asarray(x.compute())
    return np.asarray(x)
