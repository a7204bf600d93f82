"""Dask: lazy mode products and the fast diagonalization solve as task graphs.

Nothing here computes: every function returns a ``dask.array.Array`` whose graph
does the work when the caller computes it (locally or on a
``dask.distributed`` cluster).

* A mode product needs the whole contracted axis in each block.  The tensor is
  rechunked so that as many of the modes still to do as fit in one block
  (``dask.config`` ``array.chunk-size``) are whole, the other axes chunked
  ``"auto"``; each block is then multiplied by NumPy's fast path
  (:func:`kronsolve.multi_mode_product`), one task per block.  Modes that are
  already whole in the current chunking are done first, without a rechunk, so
  a 3-D transform costs one rechunk (an all-to-all exchange) between two
  blockwise passes.
* The factors are small: they enter the graph once, as single-chunk arrays.
  The solvers eigendecompose them eagerly with NumPy (the caller does that);
  the division by the eigenvalue sums is a blockwise task that slices the
  eigenvalues by the block's location.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__: list[str] = []


def _da() -> Any:
    import dask.array as da

    return da


def _block_limit() -> int:
    import dask
    from dask.utils import parse_bytes

    limit = dask.config.get("array.chunk-size", "128MiB")
    return int(parse_bytes(limit)) if isinstance(limit, str) else int(limit)


def _block_product(Xb: np.ndarray, *mats: np.ndarray, modes: tuple[int, ...]) -> np.ndarray:
    """One block: NumPy's multi-mode product (the fast path)."""
    from ._modeprod import multi_mode_product

    return multi_mode_product(np.asarray(Xb), [np.asarray(A) for A in mats], list(modes))


def _blockwise(X: Any, mats: list, ks: list[int]) -> Any:
    da = _da()
    nd = X.ndim
    out_ind = list(range(nd))
    args: list = [X, tuple(range(nd))]
    for A, k in zip(mats, ks):
        out_ind[k] = nd + k
        args += [A, (nd + k, k)]
    return da.blockwise(_block_product, tuple(out_ind), *args, modes=tuple(ks),
                        dtype=X.dtype, concatenate=True,
                        meta=np.empty((0,) * nd, dtype=X.dtype))


def _as_single_chunk(A: Any) -> Any:
    da = _da()
    if isinstance(A, da.Array):
        return A if A.numblocks == (1, 1) else A.rechunk(-1)
    return da.from_array(np.asarray(A), chunks=-1)


def multi_mode_product(X: Any, mats: Sequence[Any], modes: Sequence[int]) -> Any:
    """Lazy ``X ×_modes[0] mats[0] ...`` for a Dask ``X`` (validated, modes normalized).

    ``mats`` are NumPy or Dask matrices; the result is a Dask array.
    """
    dtype = np.result_type(X.dtype, *[A.dtype for A in mats])
    if X.dtype != dtype:
        X = X.astype(dtype)
    mats_d = [_as_single_chunk(A if A.dtype == dtype else A.astype(dtype)) for A in mats]
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
        X = _blockwise(X, [mats_d[i] for i in whole], [modes[i] for i in whole])
        remaining = [i for i in remaining if i not in whole]
    return X


def _finite_block(Xb: np.ndarray, name: str) -> np.ndarray:
    from ._validation import _check_finite

    _check_finite(Xb, name)
    return Xb


def _divide_block(Yb: np.ndarray, lams: tuple, shift: Any, b: int,
                  block_info: Any = None) -> np.ndarray:
    loc = block_info[0]["array-location"]
    d = len(lams)
    den = None
    for k, lam in enumerate(lams):
        lo, hi = loc[b + k]
        shape = [1] * d
        shape[k] = hi - lo
        part = lam[lo:hi].reshape(shape)
        den = part if den is None else den + part
    return Yb / (den + shift)


def fdm_solve(B: Any, fwd: list, bwd: list, lams: list, shift: Any, wd: np.dtype,
              out_dt: np.dtype, check_finite: bool, name: str) -> Any:
    """Lazy fast-diagonalization solve of a Dask ``B`` with NumPy transforms.

    ``fwd``/``bwd``/``lams``: per mode, the transforms and eigenvalues (NumPy,
    from an eager decomposition); ``wd`` the working dtype, ``out_dt`` the result's.
    """
    d = len(fwd)
    b = B.ndim - d
    if check_finite and B.dtype.kind in "fc":
        B = B.map_blocks(_finite_block, name, dtype=B.dtype)
    X = B.astype(wd) if B.dtype != wd else B
    modes = list(range(b, b + d))
    Y = multi_mode_product(X, [F.astype(wd, copy=False) for F in fwd], modes)
    lams_w = tuple(np.asarray(lam).astype(wd, copy=False) for lam in lams)
    Y = Y.map_blocks(_divide_block, lams_w, shift, b, dtype=wd,
                     meta=np.empty((0,) * Y.ndim, dtype=wd))
    X = multi_mode_product(Y, [V.astype(wd, copy=False) for V in bwd], modes)
    if wd != out_dt:
        X = X.real
    return X
