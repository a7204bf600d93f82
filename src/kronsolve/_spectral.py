"""Eigendecompositions of Kronecker products and sums of symmetric (Hermitian) factors.

``A1 ⊗ ... ⊗ Ad = (Q1 ⊗ ... ⊗ Qd)(Λ1 ⊗ ... ⊗ Λd)(Q1 ⊗ ... ⊗ Qd)ᴴ`` and
``A1 ⊕ ... ⊕ Ad = (Q1 ⊗ ... ⊗ Qd)(Λ1 ⊕ ... ⊕ Λd)(Q1 ⊗ ... ⊗ Qd)ᴴ``: one ``eigh``
per distinct factor gives the whole decomposition, kept as factors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._layout import as_matrix, as_tensor
from ._validation import _check_solve_rhs

__all__ = ["KronEigh"]


def eigh_factors(be: Any, facs: list, what: str,
                 prepare: Callable[[int, Any], Any] | None = None,
                 same: Callable[[int, int], bool] | None = None) -> tuple[list, list]:
    """``(eigenvalues, eigenvectors)`` per factor, each distinct factor decomposed once.

    Factors must be symmetric (Hermitian) up to rounding; their Hermitian parts
    are decomposed, after ``prepare(i, A)`` when given.  Factors ``i`` and ``j``
    share one decomposition when they are the same object and ``same(i, j)``.
    Distinct factors decompose side by side where the backend does that.
    """
    owner: list[int] = []
    jobs: list = []
    for i, A in enumerate(facs):
        for j in range(i):
            if facs[j] is A and (same is None or same(i, j)):
                owner.append(owner[j])
                break
        else:
            A = be.dense(A)
            eps = be.eps(be.work_dtype(A.dtype, name=f"factors[{i}]"))
            if not be.is_hermitian(A, eps):
                raise ValueError(
                    f"{what} needs symmetric (Hermitian) factors, but factors[{i}] "
                    f"(shape {tuple(A.shape)}) is not; use kronsolve.solve_kronsum or a "
                    "dense solve for general factors")
            A = (A + be.H(A)) * 0.5
            if prepare is not None:
                A = prepare(i, A)
            owner.append(len(jobs))
            jobs.append((A, f"factors[{i}]"))
    pairs, _ = be.decompose_all(jobs, be.eigh)
    return [pairs[o][0] for o in owner], [pairs[o][1] for o in owner]


class KronEigh:
    """The eigendecomposition of a Kronecker product or sum of symmetric factors.

    Made by :meth:`KronProduct.eigh` and :meth:`KronSum.eigh`.

    Attributes
    ----------
    factor_eigenvalues : list of arrays
        Each factor's eigenvalues, ascending (real).
    factor_eigenvectors : list of arrays
        Each factor's orthonormal eigenvectors (columns).
    eigenvectors : KronProduct
        ``Q1 ⊗ ... ⊗ Qd``, lazy.
    kind : {"product", "sum"}
        Whether the eigenvalues are products or sums of the factors'.

    Examples
    --------
    >>> import numpy as np
    >>> import kronsolve as ks
    >>> S = np.array([[2.0, 1.0], [1.0, 2.0]])
    >>> E = ks.kron(S, S).eigh()
    >>> E.eigenvalues()
    array([1., 3., 3., 9.])
    >>> V = E.eigenvectors.toarray()
    >>> np.allclose(V @ np.diag(E.eigenvalues()) @ V.T, np.kron(S, S))
    True
    """

    __slots__ = ("factor_eigenvalues", "factor_eigenvectors", "eigenvectors", "kind",
                 "_backend")

    def __init__(self, backend: Any, lams: list, Qs: list, kind: str, eigenvectors: Any):
        self._backend = backend
        self.factor_eigenvalues = lams
        self.factor_eigenvectors = Qs
        self.kind = kind
        self.eigenvectors = eigenvectors

    def __repr__(self) -> str:
        ns = tuple(int(lam.shape[0]) for lam in self.factor_eigenvalues)
        return f"KronEigh(kind={self.kind!r}, factor sizes={ns})"

    def _eigen_tensor(self) -> Any:
        be = self._backend
        d = len(self.factor_eigenvalues)
        acc = None
        for k, lam in enumerate(self.factor_eigenvalues):
            shape = [1] * d
            shape[k] = int(lam.shape[0])
            t = be.xp.reshape(lam, tuple(shape))
            acc = t if acc is None else (acc * t if self.kind == "product" else acc + t)
        return acc

    def apply(self, f: Any, x: Any) -> Any:
        """``f(K) @ x``: ``f`` applied to the eigenvalues (products or sums), two transforms.

        ``f`` maps an array of eigenvalues (of the factors' library) elementwise,
        e.g. ``np.sqrt``, ``lambda w: 1 / np.sqrt(w)``, ``np.log``; ``x`` has
        shape ``(N,)`` or ``(..., N, k)``.

        Examples
        --------
        The inverse square root of a Kronecker sum (a whitening transform):

        >>> import numpy as np
        >>> import kronsolve as ks
        >>> T = np.array([[2.0, -1.0], [-1.0, 2.0]])
        >>> K = ks.kronsum(T, T)
        >>> w = K.eigh().apply(lambda s: 1 / np.sqrt(s), np.ones(4))
        >>> bool(np.isclose(w @ (K @ w), 4.0))                   # |K^(1/2) w|² = |1|²
        True
        """
        if not callable(f):
            raise TypeError(f"f must be a callable, got {type(f).__name__}")
        be = self._backend
        ns = tuple(int(lam.shape[0]) for lam in self.factor_eigenvalues)
        N = 1
        for n in ns:
            N *= n
        x = be.tensor(x, "x", self.factor_eigenvectors[0]) if not isinstance(
            x, type(self.factor_eigenvectors[0])) else x
        _check_solve_rhs((N, N), x)
        vals = f(self._eigen_tensor())
        dt = be.result_type(x, vals, *self.factor_eigenvectors)
        X, off = as_tensor(be.astype(x, dt), ns)
        modes = list(range(off, off + len(ns)))
        Y = be.modeprod(X, [be.H(Q) for Q in self.factor_eigenvectors], modes)
        if X.ndim > off + len(ns):
            vals = be.xp.reshape(vals, tuple(vals.shape) + (1,))
        Y = be.modeprod(Y * vals, list(self.factor_eigenvectors), modes)
        return as_matrix(Y, off, len(ns), N)

    def eigenvalues(self) -> Any:
        """All ``N`` eigenvalues as one vector in ``np.kron`` order (formed on request)."""
        be = self._backend
        xp = be.xp
        out = self.factor_eigenvalues[0]
        for lam in self.factor_eigenvalues[1:]:
            if self.kind == "product":
                out = xp.reshape(out[:, None] * lam[None, :], (-1,))
            else:
                out = xp.reshape(out[:, None] + lam[None, :], (-1,))
        return out
