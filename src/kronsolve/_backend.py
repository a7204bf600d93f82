"""Which array library an input belongs to.

Core paths take their array module from their inputs (``array_namespace``) rather
than hard-coding NumPy, so that other array libraries can flow through later.
NumPy arrays take a zero-cost fast path.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

__all__: list[str] = []


def _array_namespace(*arrays: Any) -> ModuleType:
    """Return the array module shared by ``arrays`` (NumPy for NumPy inputs).

    Raises ``TypeError`` when the inputs come from different array libraries.
    """
    names = set()
    for x in arrays:
        if x is None or isinstance(x, (int, float, complex, np.ndarray, np.generic)):
            continue
        mod = type(x).__module__.split(".")[0]
        if mod in ("numpy", "scipy", "builtins", "kronsolve"):
            continue
        names.add(mod)
    if not names:
        return np
    if len(names) > 1:
        raise TypeError(
            "inputs mix array libraries "
            f"({', '.join(sorted(names))}); convert them to one kind first"
        )
    try:
        import array_api_compat
    except ImportError:  # pragma: no cover - depends on the environment
        raise TypeError(
            f"arrays from {names.pop()} need the optional package array-api-compat"
        ) from None
    return array_api_compat.array_namespace(*[a for a in arrays if a is not None])
