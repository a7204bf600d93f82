"""Backends: the array-library primitives under every operator and solver.

The public operators and solvers never name an array library.  Each holds a
:class:`Backend` and calls its primitives; this package holds the one
dispatch point, :func:`backend_of`, and three backends:

* ``numpy`` (:mod:`.numpy`): NumPy and SciPy with the fast paths (plans, work
  buffers, ``out=``, threads, the compiled small eigensolver); also serves
  scipy.sparse factors, Python sequences and scalars;
* ``xp`` (:mod:`.xp`): any library that ``array-api-compat`` knows (PyTorch,
  CuPy, JAX...): the same operations in the array-API namespace, so that results
  keep their device and PyTorch keeps autograd;
* ``dask`` (:mod:`.dask`): lazy task graphs for the tensors; the factors are
  small and their dense algebra runs on the host with NumPy.

Mixing rule
-----------
All inputs of one call that are not NumPy arrays (or Python sequences and
scalars) must come from the same library, else ``TypeError`` names the
libraries.  NumPy inputs mixed with them are converted to that library (on the
device of the first such input).  ``backend_of`` applies the rule; it is
called once per public call and costs a type comparison for NumPy arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Backend
from .numpy import NUMPY

__all__ = ["Backend", "NUMPY", "backend_of", "library_of"]

# top-level modules of array types that are not NumPy's; the value is the backend
# family ("xp" or "dask")
_LIBRARIES = {"torch": "xp", "cupy": "xp", "jax": "xp", "jaxlib": "xp",
              "array_api_strict": "xp", "sparse": "xp", "ndonnx": "xp", "mlx": "xp",
              "dask": "dask"}
# backend per array type (None: not an array of another library), filled on first sight
_BY_TYPE: dict[type, Backend | None] = {}
# backend per library name
_BY_LIBRARY: dict[str, Backend] = {}


def library_of(x: Any) -> str:
    """The top-level module of ``x``'s type (``"torch"``, ``"dask"``, ``"numpy"``...)."""
    return type(x).__module__.partition(".")[0]


# libraries whose arrays live in several top-level modules (JAX: jaxlib arrays, jax tracers)
_ALIASES = {"jaxlib": "jax"}


def _lookup(t: type, x: Any) -> Backend | None:
    lib = t.__module__.partition(".")[0]
    lib = _ALIASES.get(lib, lib)
    family = _LIBRARIES.get(lib)
    if family is None or lib == "scipy":
        _BY_TYPE[t] = None
        return None
    be = _BY_LIBRARY.get(lib)
    if be is None:
        if family == "dask":
            from .dask import DaskBackend

            be = DaskBackend()
        else:
            from .xp import ArrayAPIBackend

            be = ArrayAPIBackend(lib, x)
        _BY_LIBRARY[lib] = be
    _BY_TYPE[t] = be
    return be


def backend_of(*arrays: Any) -> Backend:
    """The backend of a call's inputs (the mixing rule); ``NUMPY`` when all are NumPy.

    ``None`` entries and non-array inputs (lists, scalars, scipy.sparse) count
    as NumPy.  Two other libraries raise ``TypeError``.
    """
    found: Backend | None = None
    for x in arrays:
        t = type(x)
        if t is np.ndarray or x is None:
            continue
        be = _BY_TYPE[t] if t in _BY_TYPE else _lookup(t, x)
        if be is None or be is found:
            continue
        if found is not None:
            names = sorted({found.name, be.name})
            raise TypeError(
                f"inputs mix array libraries ({', '.join(names)}); convert them to one kind "
                "first (NumPy arrays may be mixed with any one other kind)"
            )
        found = be
    return NUMPY if found is None else found


def reference_of(*arrays: Any) -> Any:
    """The first input that is an array of another library than NumPy (for its device)."""
    for x in arrays:
        t = type(x)
        if t is np.ndarray or x is None:
            continue
        if (_BY_TYPE[t] if t in _BY_TYPE else _lookup(t, x)) is not None:
            return x
    return None
