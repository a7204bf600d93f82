"""Eigendecompositions of the factors of a Kronecker sum, for any backend.

``decompose`` diagonalizes one factor ``K`` (or the pencil ``K - λM``) in
double precision with the primitives of a backend: ``eigh`` for symmetric or
Hermitian factors (with masses: the generalized symmetric problem), ``eig``
otherwise, with the eigenvector basis checked for singularity (a defective
factor) and conditioning.  The result, a :class:`Mode`, gives the forward and
backward transforms and the eigenvalues, cast (and converted to another
backend) on demand and cached.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__: list[str] = []

# A factor whose eigenvector basis has a (1-norm) condition number above this is
# reported with a RuntimeWarning.
_COND_WARN = 1e8


class Mode:
    """The eigendecomposition of one factor (or factor pair ``K, M``).

    ``lam`` (eigenvalues), ``fwd`` (``V⁻¹``; ``Vᴴ`` for Hermitian problems) and
    ``bwd`` (``V``) are arrays of ``backend``; ``lam_host`` is a NumPy copy of the
    eigenvalues for the singularity check.
    """

    __slots__ = ("backend", "lam", "lam_host", "fwd", "bwd", "hermitian", "real", "n",
                 "bounds", "_cast")

    def __init__(self, backend: Any, lam: Any, fwd: Any, bwd: Any, hermitian: bool):
        self.backend = backend
        self.lam = lam
        self.fwd = fwd
        self.bwd = bwd
        self.hermitian = hermitian
        host = self.lam_host = np.asarray(backend.to_host(lam))
        ic = backend.is_complex
        self.real = not (ic(lam.dtype) or ic(fwd.dtype) or ic(bwd.dtype))
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


def decompose(be: Any, K: Any, M: Any, assume_a: str, kname: str, mname: str
              ) -> tuple[Mode, str | None]:
    """Diagonalize ``K`` (or the pencil ``K - λM``) in double precision with ``be``.

    Returns the decomposition and the text of a warning to issue (an
    ill-conditioned eigenvector basis) or None: the caller warns, from the
    caller's thread.
    """
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
    # general (non-symmetric) factor: V⁻¹ K V = diag(lam)
    what = kname if Md is None else f"the pencil ({kname}, {mname})"
    pair = be.eig(Kd, Md)
    if pair is None:  # no eig in this library: on the host
        host = be.host
        mode, msg = decompose(host, be.to_host(K), None if M is None else be.to_host(M),
                              "gen", kname, mname)
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
