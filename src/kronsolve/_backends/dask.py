"""The Dask backend: lazy mode products and solves as task graphs.

Nothing here computes: tensors stay ``dask.array.Array`` graphs that do the
work when the caller computes them (locally or on a ``dask.distributed``
cluster).  The factors are small: their dense algebra (decompositions,
traces, determinants) runs eagerly on the host with the NumPy backend
(``host``), and they enter a graph once, as single-chunk arrays.

* A mode product needs the whole contracted axis in each block.  The tensor is
  rechunked so that as many of the modes still to do as fit in one block
  (``dask.config`` ``array.chunk-size``) are whole, the other axes chunked
  ``"auto"``; each block is then multiplied by the NumPy backend, one task per
  block.  Modes already whole in the current chunking go first, without a
  rechunk, so a 3-D transform costs one rechunk between two blockwise passes.
* The division by the eigenvalue sums is a blockwise task that slices the
  eigenvalues by the block's location.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import _check_dtype, _check_finite, _is_sparse, _refuse_masked
from .base import Backend
from .numpy import NUMPY

__all__ = ["DaskBackend"]


def _block_limit() -> int:
    import dask
    from dask.utils import parse_bytes

    limit = dask.config.get("array.chunk-size", "128MiB")
    return int(parse_bytes(limit)) if isinstance(limit, str) else int(limit)


def _block_product(Xb: np.ndarray, *mats: np.ndarray, modes: tuple[int, ...]) -> np.ndarray:
    """One block: the NumPy backend's mode products."""
    Xb = np.asarray(Xb)
    return NUMPY.modeprod(Xb, [np.asarray(A) for A in mats], list(modes))


def _finite_block(Xb: np.ndarray, name: str) -> np.ndarray:
    _check_finite(Xb, name)
    return Xb


def _middle_block(Yb: np.ndarray, middle: Any, b: int) -> np.ndarray:
    Y = np.array(Yb, order="C")
    middle(Y, b)
    return Y


def _divide_block(Yb: np.ndarray, lams: tuple, shift: Any, b: int,
                  block_info: Any = None) -> np.ndarray:
    loc = block_info[0]["array-location"]
    parts = [lam[lo:hi] for lam, (lo, hi) in zip(lams, loc[b:b + len(lams)])]
    return NUMPY.divide(np.array(Yb, copy=True), parts, shift, b,
                        np.empty(Yb.size, dtype=parts[0].dtype))


class DaskBackend(Backend):
    """Dask arrays: lazy tensors, small factors on the host."""

    name = "dask"
    lazy = True

    def __init__(self) -> None:
        import dask.array as da

        self.xp = da
        self.host = NUMPY

    # --- arrays ------------------------------------------------------------
    def asarray(self, a: Any, name: str, like: Any = None, small: bool = True) -> Any:
        da = self.xp
        if isinstance(a, da.Array):
            _check_dtype(np.dtype(a.dtype), name)
            return a
        if _is_sparse(a):
            raise TypeError(
                f"{name} is a scipy.sparse matrix, which works only with NumPy inputs; "
                "call .toarray() to use it with dask arrays"
            )
        _refuse_masked(a, name)
        a = np.asarray(a)
        _check_dtype(a.dtype, name)
        return da.from_array(a, chunks=-1 if small else "auto")

    def tensor(self, a: Any, name: str, like: Any = None) -> Any:
        """A right-hand side or tensor (NumPy ones chunked ``"auto"``)."""
        return self.asarray(a, name, small=False)

    def to_host(self, a: Any) -> np.ndarray:
        return np.asarray(a.compute()) if isinstance(a, self.xp.Array) else np.asarray(a)

    def from_host(self, a: Any, like: Any = None) -> Any:
        return self.xp.from_array(np.asarray(a), chunks=-1)

    def dense(self, A: Any) -> Any:
        return A

    def check_finite(self, a: Any, name: str) -> Any:
        """Lazily: the check runs with the graph, block by block."""
        if np.dtype(a.dtype).kind not in "fc":
            return a
        return a.map_blocks(_finite_block, name, dtype=a.dtype)

    def result_type(self, *arrays: Any) -> np.dtype:
        return np.result_type(*[a.dtype if hasattr(a, "dtype") else a for a in arrays])

    def work_dtype(self, *dtypes: Any, name: str = "input") -> np.dtype:
        return NUMPY.work_dtype(*dtypes, name=name)

    def is_complex(self, dtype: Any) -> bool:
        return np.dtype(dtype).kind == "c"

    def complex_of(self, dtype: Any) -> np.dtype:
        return NUMPY.complex_of(dtype)

    def real_of(self, dtype: Any) -> np.dtype:
        return NUMPY.real_of(dtype)

    def eps(self, dtype: Any) -> float:
        return NUMPY.eps(dtype)

    def astype(self, a: Any, dtype: Any) -> Any:
        return a if a.dtype == dtype else a.astype(dtype)

    def zeros(self, shape: tuple, dtype: Any, like: Any = None) -> Any:
        return self.xp.zeros(shape, dtype=dtype)

    def eye(self, n: int, dtype: Any, like: Any = None) -> Any:
        return self.xp.eye(n, dtype=dtype)

    def swapaxes(self, a: Any, i: int, j: int) -> Any:
        return self.xp.swapaxes(a, i, j)

    # --- tensors -----------------------------------------------------------
    def _single_chunk(self, A: Any) -> Any:
        da = self.xp
        if isinstance(A, da.Array):
            return A if A.numblocks == (1, 1) else A.rechunk(-1)
        return da.from_array(np.asarray(A), chunks=-1)

    def _blockwise(self, X: Any, mats: list, ks: list[int]) -> Any:
        nd = X.ndim
        out_ind = list(range(nd))
        args: list = [X, tuple(range(nd))]
        for A, k in zip(mats, ks):
            out_ind[k] = nd + k
            args += [A, (nd + k, k)]
        return self.xp.blockwise(_block_product, tuple(out_ind), *args, modes=tuple(ks),
                                 dtype=X.dtype, concatenate=True,
                                 meta=np.empty((0,) * nd, dtype=X.dtype))

    def modeprod(self, X: Any, mats: list, modes: list[int], out: Any = None,
                 trans: Any = None, plans: dict | None = None) -> Any:
        dtype = np.result_type(X.dtype, *[A.dtype for A in mats])
        X = self.astype(X, dtype)
        mats_d = [self._single_chunk(A if A.dtype == dtype else A.astype(dtype)) for A in mats]
        remaining = list(range(len(mats)))
        limit = _block_limit()
        while remaining:
            whole = [i for i in remaining if X.numblocks[modes[i]] == 1]
            if not whole:
                # as many of the remaining modes whole as fit in one block
                size = dtype.itemsize
                for i in sorted(remaining, key=lambda i: X.shape[modes[i]]):
                    s = size * max(X.shape[modes[i]], mats_d[i].shape[0], 1)
                    if whole and s > limit:
                        break
                    whole.append(i)
                    size = s
                spec: dict[int, Any] = {j: "auto" for j in range(X.ndim)}
                for i in whole:
                    spec[modes[i]] = -1
                X = X.rechunk(spec)
            X = self._blockwise(X, [mats_d[i] for i in whole], [modes[i] for i in whole])
            remaining = [i for i in remaining if i not in whole]
        return X

    def divide(self, Y: Any, lams: list, shift: Any, b: int, free: Any) -> Any:
        lams_h = tuple(np.asarray(lam) for lam in lams)
        return Y.map_blocks(_divide_block, lams_h, shift, b, dtype=Y.dtype,
                            meta=np.empty((0,) * Y.ndim, dtype=Y.dtype))

    def fdm(self, B: Any, mats: list, lams: list, shift: Any, wd: Any, out_dt: Any,
            overwrite_b: bool, d: int, middle: Any = None) -> Any:
        b = B.ndim - d
        modes = list(range(b, b + d))
        Y = self.modeprod(self.astype(B, wd), [m[0] for m in mats], modes)
        if middle is None:
            Y = self.divide(Y, lams, shift, b, None)
        else:  # the triangular solve: each block holds whole problems
            Y = Y.rechunk({k: -1 for k in modes})
            Y = Y.map_blocks(_middle_block, middle, b, dtype=Y.dtype,
                             meta=np.empty((0,) * Y.ndim, dtype=Y.dtype))
        X = self.modeprod(Y, [m[1] for m in mats], modes)
        return X.real if wd != out_dt else X
