"""Decompositions of the factors of a Kronecker sum, for any backend.

``decompose`` reduces one factor ``K`` (or the pencil ``K - λM``) in double
precision:

* ``"eigh"``: symmetric or Hermitian factors (with masses: the generalized
  symmetric problem), diagonalized with the backend's ``eigh``;
* ``"schur"``: any factor, by its Schur form ``K = Q T Qᴴ`` on the host
  (SciPy), the robust route for non-symmetric factors (see :mod:`._schur`);
  masses are reduced first, ``L⁻¹ K L⁻ᴴ`` with the Cholesky factor ``L`` of a
  Hermitian positive definite mass, else ``M⁻¹ K``;
* ``"eig"``: non-symmetric factors diagonalized with ``eig``, the eigenvector
  basis checked for singularity and conditioning (the solver checks its
  results too).

The result, a :class:`Mode`, gives the forward and backward transforms and the
eigenvalues, cast (and converted to another backend) on demand and cached.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__: list[str] = []

# A factor whose eigenvector basis has a (1-norm) condition number above this is
# reported with an AccuracyWarning.
_COND_WARN = 1e8

METHODS = ("auto", "eigh", "eig", "schur")


class Mode:
    """The decomposition of one factor (or factor pair ``K, M``).

    ``lam`` (eigenvalues), ``fwd`` (``V⁻¹``; ``Vᴴ`` for Hermitian problems;
    ``Qᴴ`` for a Schur form) and ``bwd`` (``V``; ``Q``) are arrays of
    ``backend``; ``lam_host`` is a NumPy copy of the eigenvalues for the
    singularity check.  ``kind`` is ``"eigh"``, ``"eig"`` or ``"schur"``; a
    Schur mode also holds ``T`` (quasi-)triangular and ``sub`` (``sub[i]``: rows
    ``i, i+1`` form a 2 x 2 block), NumPy arrays, and ``reduced`` (a mass was
    folded in by a non-orthogonal reduction).
    """

    __slots__ = ("backend", "lam", "lam_host", "fwd", "bwd", "hermitian", "real", "n",
                 "bounds", "_cast", "kind", "T", "sub", "reduced")

    def __init__(self, backend: Any, lam: Any, fwd: Any, bwd: Any, hermitian: bool,
                 kind: str | None = None, T: Any = None, sub: Any = None,
                 reduced: bool = False):
        self.backend = backend
        self.lam = lam
        self.fwd = fwd
        self.bwd = bwd
        self.hermitian = hermitian
        self.kind = kind or ("eigh" if hermitian else "eig")
        self.T = T
        self.sub = sub
        self.reduced = reduced
        host = self.lam_host = np.asarray(backend.to_host(lam))
        ic = backend.is_complex
        self.real = not ((ic(lam.dtype) and T is None) or ic(fwd.dtype) or ic(bwd.dtype))
        self.n = host.shape[0]
        # (min, max) of the real eigenvalues (nan when complex), max modulus
        if not self.n:
            self.bounds = (np.nan, np.nan, 0.0)
        elif host.dtype.kind == "c":
            self.bounds = (np.nan, np.nan, float(np.abs(host).max()))
        else:
            lo, hi = (float(host[0]), float(host[-1])) if hermitian else (
                float(host.min()), float(host.max()))  # eigh sorts ascending
            self.bounds = (lo, hi, max(abs(lo), abs(hi)))
        self._cast: dict = {}

    def _source(self, be: Any, a: Any, like: Any) -> Any:
        """``a`` (an array of this mode's backend) as an array of ``be`` (Dask: its host)."""
        return a if be is self.backend else be.from_host(self.backend.to_host(a), like)

    def mats(self, be: Any, dtype: Any, like: Any = None) -> tuple:
        """``(fwd, bwd, fwdᵀ, bwdᵀ)`` as arrays of ``dtype`` for a solve with ``be`` (cached).

        Dask solves get NumPy arrays (the factors enter the graph as they are).
        The transposes are contiguous copies for the front-rotating scheme of the
        NumPy backend (small factors), else None.
        """
        be = be.host if be.lazy else be
        key = (be.name, str(getattr(like, "device", None)), str(dtype))
        m = self._cast.get(key)
        if m is None:
            fwd = be.astype(self._source(be, self.fwd, like), dtype)
            bwd = be.astype(self._source(be, self.bwd, like), dtype)
            m = (fwd, bwd, be.transposes(fwd), be.transposes(bwd))
            if len(self._cast) > 16:
                self._cast.clear()
            self._cast[key] = m
        return m

    def lam_as(self, be: Any, dtype: Any, like: Any = None) -> Any:
        """The eigenvalues as an array of ``dtype`` for a solve with ``be`` (cached)."""
        be = be.host if be.lazy else be
        key = ("lam", be.name, str(getattr(like, "device", None)), str(dtype))
        lam = self._cast.get(key)
        if lam is None:
            lam = self._cast[key] = be.astype(self._source(be, self.lam, like), dtype)
        return lam


def decompose(be: Any, K: Any, M: Any, assume_a: str, kname: str, mname: str,
              method: str = "auto") -> tuple[Mode, str | None]:
    """Decompose ``K`` (or the pencil ``K - λM``) in double precision with ``be``.

    ``method`` (see the module docstring): ``"auto"`` takes ``"eigh"`` for
    symmetric (Hermitian) factors and ``"schur"`` otherwise.  Returns the
    decomposition and the text of a warning to issue (an ill-conditioned
    eigenvector basis) or None: the caller warns, from the caller's thread.
    """
    if method == "eigh":
        assume_a = "sym"
    elif method == "schur":
        assume_a = "gen"
    eps = be.eps(be.work_dtype(K.dtype, name=kname))
    cplx = be.is_complex(K.dtype) or (M is not None and be.is_complex(M.dtype))
    Kd = be.astype(K, be.double(cplx))
    Md = None if M is None else be.astype(M, be.double(cplx))
    n = K.shape[0]
    exact = False
    if assume_a == "sym":
        herm = True
    elif assume_a == "gen":
        herm = False
    else:
        exact = be.equal(Kd, be.H(Kd))
        herm = exact or be.is_hermitian(Kd, eps)
        herm = herm and (Md is None or be.is_hermitian(Md, be.eps(be.work_dtype(M.dtype))))
    if n == 0:
        e = be.zeros((0, 0), Kd.dtype, like=K)
        return Mode(be, be.zeros((0,), be.real_of(Kd.dtype), like=K), e, e, True), None
    if herm:
        if assume_a != "auto":
            exact = be.equal(Kd, be.H(Kd))
        Ks = Kd if exact else (Kd + be.H(Kd)) * 0.5
        if Md is None:
            lam, Q = be.eigh(Ks, kname)
        else:
            lam, Q = be.eigh_pencil(Ks, (Md + be.H(Md)) * 0.5, mname, tuple(M.shape))
        return Mode(be, lam, be.H(Q), Q, True), None
    if method != "eig":
        return _schur_mode(be, Kd, Md, kname, mname), None
    # general (non-symmetric) factor: V⁻¹ K V = diag(lam)
    what = kname if Md is None else f"the pencil ({kname}, {mname})"
    pair = be.eig(Kd, Md)
    if pair is None:  # no eig in this library: on the host
        host = be.host
        mode, msg = decompose(host, be.to_host(K), None if M is None else be.to_host(M),
                              "gen", kname, mname, "eig")
        conv = [be.from_host(host.to_host(a), like=K) for a in (mode.lam, mode.fwd, mode.bwd)]
        return Mode(be, conv[0], conv[1], conv[2], False), msg
    lam, V = pair
    if not be.all_finite(lam):
        raise np.linalg.LinAlgError(
            f"{what} has non-finite eigenvalues" + (
                "" if Md is None else f": {mname} (shape {tuple(M.shape)}) is singular"))
    if be.is_complex(lam.dtype) and not be.is_complex(Kd.dtype) and \
            not bool(be.xp.any(be.xp.imag(lam) != 0)) and not bool(be.xp.any(be.xp.imag(V) != 0)):
        lam, V = be.xp.real(lam), be.xp.real(V)
    W = be.inv(V if Md is None else be.astype(Md, V.dtype) @ V)
    if W is None:
        raise np.linalg.LinAlgError(
            f"{what} (shape {tuple(K.shape)}) is not diagonalizable: its eigenvector matrix "
            "is singular (a defective matrix); the fast diagonalization method cannot be used"
        )
    Wc = W if Md is None else be.inv(V)
    cond = be.norm(V, 1) * be.norm(Wc, 1) if Wc is not None else np.inf
    msg = None
    if not np.isfinite(cond) or cond > _COND_WARN:
        msg = (f"{what} is not symmetric and its eigenvector basis is ill-conditioned "
               f"(condition number {cond:.2e} > {_COND_WARN:.0e}); the solution may be "
               "inaccurate")
    return Mode(be, lam, W, V, False), msg


def _schur_mode(be: Any, Kd: Any, Md: Any, kname: str, mname: str) -> Mode:
    """The Schur form of ``K`` (of the reduced pencil with a mass), on the host."""
    from scipy.linalg import cho_factor, lu_factor, lu_solve, solve_triangular

    from ._schur import schur

    host = be.host
    K = np.asarray(be.to_host(Kd))
    pre = post = None
    if Md is not None:
        M = np.asarray(be.to_host(Md))
        n = M.shape[0]
        L = None
        if host.is_hermitian(M, np.finfo(np.float64).eps):
            try:
                L = np.tril(cho_factor((M + M.conj().T) / 2, lower=True, check_finite=False)[0])
            except np.linalg.LinAlgError:
                L = None
        if L is not None:
            # M = L Lᴴ: K̃ = L⁻¹ K L⁻ᴴ, X = Y ×_k L⁻ᴴ, the right-hand side ×_k L⁻¹
            pre = solve_triangular(L, np.eye(n, dtype=L.dtype), lower=True, check_finite=False)
            post = pre.conj().T
            K = pre @ K @ post
        else:
            lu = lu_factor(M, check_finite=False)
            if not np.all(np.isfinite(lu[0])) or not np.all(np.diagonal(lu[0])):
                raise np.linalg.LinAlgError(
                    f"{mname} (shape {tuple(M.shape)}) is singular: the pencil "
                    f"({kname}, {mname}) has infinite eigenvalues")
            pre = lu_solve(lu, np.eye(n, dtype=lu[0].dtype), check_finite=False)
            K = lu_solve(lu, K, check_finite=False)
    T, Q, sub, lam = schur(K)
    fwd = Q.conj().T if pre is None else Q.conj().T @ pre
    bwd = Q if post is None else post @ Q
    fwd, bwd = np.ascontiguousarray(fwd), np.ascontiguousarray(bwd)
    return Mode(host, lam, fwd, bwd, False, kind="schur", T=T, sub=sub,
                reduced=Md is not None)
