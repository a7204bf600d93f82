"""Stacks of Kronecker products: ``kron`` of per-item factors.

``kron(A1s, ..., Ads)`` with stacks ``A_ks`` of shape ``(..., m_k, n_k)`` is the
stack of ``np.kron(A1s[e], ..., Ads[e])`` over the broadcast batch (a 2-D
factor is shared by every item), applied as NumPy's stacked ``matmul`` applies
a stack of matrices, without forming any Kronecker matrix: through
:func:`multi_mode_product` with stacks (the fused per-item kernel for NumPy
items that fit in cache).
"""

from __future__ import annotations

from math import prod
from typing import Any

import numpy as np

from ._backends import NUMPY, backend_of, reference_of
from ._modeprod import _batched

__all__: list[str] = []


class KronStack:
    """A stack of Kronecker products, one per item of a batch (made by :func:`kron`).

    Attributes
    ----------
    factors : tuple of arrays
        The stacks ``(..., m_k, n_k)`` (2-D factors are shared by every item).
    batch_shape : tuple of int
        The broadcast batch shape of the factors.
    shape : tuple of int
        ``(M, N)``, the shape of each item's Kronecker product.

    Examples
    --------
    Five elements, each with its own first factor and a shared second one:

    >>> import numpy as np
    >>> import kronsolve as ks
    >>> rng = np.random.default_rng(0)
    >>> A = rng.standard_normal((5, 3, 3))
    >>> B = rng.standard_normal((4, 4))
    >>> K = ks.kron(A, B)
    >>> K.batch_shape, K.shape
    ((5,), (12, 12))
    >>> X = rng.standard_normal((5, 12, 2))
    >>> np.allclose(K @ X, np.stack([np.kron(a, B) for a in A]) @ X)
    True
    """

    def __init__(self, factors: list, be: Any):
        self._backend = be
        self.factors = tuple(factors)
        try:
            self.batch_shape = tuple(np.broadcast_shapes(*[tuple(A.shape[:-2])
                                                          for A in factors]))
        except ValueError:
            raise ValueError("the batch dimensions of the factors do not broadcast: "
                             + str([tuple(A.shape[:-2]) for A in factors])) from None
        self.shape = (prod(int(A.shape[-2]) for A in factors),
                      prod(int(A.shape[-1]) for A in factors))

    def __repr__(self) -> str:
        lib = "" if self._backend is NUMPY else f"[{self._backend.name}]"
        return (f"KronStack{lib}(batch_shape={self.batch_shape}, shape={self.shape}, "
                f"factors={len(self.factors)})")

    @property
    def T(self) -> KronStack:
        """The stack of transposes (``np.kron`` of the transposed factors)."""
        return KronStack([self._backend.swapaxes(A, -1, -2) for A in self.factors],
                         self._backend)

    def __matmul__(self, x: Any) -> Any:
        """``K @ x`` as NumPy's stacked ``matmul``: ``x`` of shape ``(N,)`` gives
        ``(*batch, M)``; ``(..., N, k)`` gives ``(*broadcast batch, M, k)``."""
        be = backend_of(x, *self.factors)
        like = reference_of(x, *self.factors)
        x = be.tensor(x, "x", like) if be is not NUMPY else np.asarray(x)
        M, N = self.shape
        ms = tuple(int(A.shape[-2]) for A in self.factors)
        ns = tuple(int(A.shape[-1]) for A in self.factors)
        if x.ndim == 0:
            raise ValueError("matmul: x must have at least one dimension, got a 0-d array")
        xp = be.xp
        if x.ndim == 1:
            if x.shape[0] != N:
                raise ValueError(f"matmul: a stack of ({M}, {N}) Kronecker products cannot "
                                 f"multiply x of shape {tuple(x.shape)}: expected ({N},)")
            Y = _batched(xp.reshape(x, ns), list(self.factors), None, False)
            return xp.reshape(Y, tuple(Y.shape[:Y.ndim - len(ms)]) + (M,))
        if x.shape[-2] != N:
            raise ValueError(f"matmul: a stack of ({M}, {N}) Kronecker products cannot "
                             f"multiply x of shape {tuple(x.shape)}: expected x.shape[-2] "
                             f"== {N}")
        k = int(x.shape[-1])
        xb = tuple(x.shape[:-2])
        try:
            np.broadcast_shapes(xb, self.batch_shape)
        except ValueError:
            raise ValueError(f"the batch dimensions do not broadcast: x has {xb}, the "
                             f"factors {self.batch_shape}") from None
        # the columns as one more batch axis, after the items' (the factors get a
        # singleton axis there)
        X = xp.reshape(be.swapaxes(x, -1, -2), xb + (k,) + ns)
        stacks = [A[..., None, :, :] if A.ndim > 2 else A for A in self.factors]
        Y = _batched(X, stacks, None, False)
        Y = xp.reshape(Y, tuple(Y.shape[:Y.ndim - len(ms)]) + (M,))
        return be.swapaxes(Y, -1, -2)

    def toarray(self) -> Any:
        """The dense stack ``(*batch, M, N)`` (``np.kron`` item by item; small sizes only)."""
        be = self._backend
        host = [be.to_host(A) for A in self.factors]
        batch = self.batch_shape
        out = None
        for idx in np.ndindex(*batch):
            D = np.ones((1, 1))
            for A in host:
                D = np.kron(D, np.broadcast_to(A, batch + A.shape[-2:])[idx])
            if out is None:
                out = np.empty(batch + self.shape, dtype=D.dtype)
            out[idx] = D
        if out is None:
            out = np.zeros(batch + self.shape)
        return be.from_host(out, like=reference_of(*self.factors))
