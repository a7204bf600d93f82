"""Array libraries for the backend-parametrized tests (the ``be`` fixture of conftest.py).

``Backend(name)`` converts NumPy test data to the library's arrays, checks that a
result is of that library, and brings it back to NumPy for the comparison with
the references of ``naive.py``.  NumPy always runs; PyTorch and Dask where
installed; CuPy where a CUDA GPU is present.  The others are skipped with the
reason.
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Iterator

import numpy as np

BACKENDS = ["numpy", "torch", "dask", "cupy"]


def _cupy_reason() -> str | None:
    if importlib.util.find_spec("cupy") is None:
        return "CuPy is not installed (it needs an NVIDIA GPU; run benchmarks/gpu.py there)"
    try:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() < 1:
            return "CuPy is installed but no CUDA GPU is present"
    except Exception as exc:  # pragma: no cover - depends on the machine
        return f"CuPy is installed but no CUDA GPU is usable ({exc})"
    return None


def _skip_reason(name: str) -> str | None:
    if name == "cupy":
        return _cupy_reason()
    if name == "numpy":
        return None
    mod = {"torch": "torch", "dask": "dask.array"}[name]
    if importlib.util.find_spec(mod.split(".")[0]) is None:
        return f"{name} is not installed (pip install kronsolve[{name}])"
    return None


class Backend:
    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name

    def asarray(self, a, chunks=None):
        a = np.asarray(a)
        if self.name == "numpy":
            return a
        if self.name == "torch":
            import torch

            return torch.asarray(a)
        if self.name == "dask":
            import dask.array as da

            return da.from_array(a, chunks=chunks if chunks is not None else 2)
        import cupy

        return cupy.asarray(a)

    def to_numpy(self, r):
        if self.name == "numpy":
            return r
        if self.name == "torch":
            return r.detach().cpu().numpy()
        if self.name == "dask":
            return np.asarray(r.compute(scheduler="sync"))
        return r.get()

    def check_kind(self, r):
        mod = type(r).__module__.split(".")[0]
        assert mod == self.name, f"expected a {self.name} array, got {type(r)}"

    def check_dtype(self, r, dtype):
        """``r`` (an array of this library) has the NumPy dtype ``dtype``'s name."""
        got = str(r.dtype).rsplit(".", 1)[-1]  # torch.float32 -> float32
        assert got == np.dtype(dtype).name, f"expected dtype {np.dtype(dtype)}, got {r.dtype}"

    def scalar(self, r):
        """A scalar result as a Python complex (Dask: a NumPy scalar computed on the host)."""
        if self.name == "dask":
            assert isinstance(r, np.generic), f"expected a NumPy scalar, got {type(r)}"
        return complex(r)


@contextlib.contextmanager
def no_dask_compute() -> Iterator[None]:
    """Inside: computing any Dask graph raises AssertionError (the code must stay lazy)."""
    import dask
    import dask.array as da
    import pytest

    def refuse(*args, **kwargs):
        raise AssertionError("a Dask graph was computed inside kronsolve")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(da.Array, "compute", refuse)
        mp.setattr(da.Array, "__array__", refuse)
        mp.setattr(dask, "compute", refuse)
        with dask.config.set(scheduler=refuse):
            yield
