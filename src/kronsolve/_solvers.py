"""Kronecker-sum (tensor Sylvester) solvers: fast diagonalization and Schur forms.

The equation ``X ×₁ A1 + X ×₂ A2 + ... + X ×_d Ad + shift·X = B`` is the linear
system ``(A1 ⊕ A2 ⊕ ... ⊕ Ad + shift·I) vec(X) = vec(B)`` (C order, ``np.kron``
ordering).  With ``A_k = V_k Λ_k V_k⁻¹`` it is solved by

1. the forward transform ``Y = B ×₁ V1⁻¹ ×₂ V2⁻¹ ... ×_d Vd⁻¹`` (``V⁻¹ = Vᵀ``
   or ``Vᴴ`` for symmetric or Hermitian factors),
2. the division ``Y[i1, ..., id] /= λ1[i1] + ... + λd[id] + shift``,
3. the backward transform ``X = Y ×₁ V1 ... ×_d Vd``,

at ``O(N · Σ n_k)`` flops for ``N = Π n_k`` unknowns instead of ``O(N³)``.  The
two transforms are ``2d`` single-mode products (plain GEMMs that rotate the
axes) that alternate between two buffers the size of ``B``: the result and one
scratch array (``B`` itself with ``overwrite_b=True``).  The division runs in
cache-sized blocks of at most 65536 eigenvalue sums, written into whichever
buffer is idle at that moment: for larger problems the tensor of all ``N``
sums is never formed, and no other array of ``B``'s size is ever allocated.

Non-symmetric factors go the Schur route instead (:mod:`._schur`): orthogonal
``Q_k`` in the transforms and a blocked back-substitution in place of the
division, backward stable in the residual for non-normal and defective factors
alike.  The eigenvector route for them (``method="eig"``) checks each result's
residual, refines once and falls back to the Schur route when that fails.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from math import prod
from typing import Any

import numpy as np

from . import _autodiff
from ._backends import NUMPY, backend_of, reference_of
from ._decomposition import METHODS, Mode, decompose
from ._eigsums import _any_sum_near_zero, _nearest_zero_sum, _singular_tol, _slogdet_sums
from ._peritem import PerItemSolver, is_symmetric
from ._schur import Triangular, trisolve
from ._validation import (
    _as_array,
    _as_matrix,
    _check_finite,
    _check_shift,
    _check_tensor_rhs,
    _factor_list,
    _is_complex_scalar,
)
from ._warnings import AccuracyWarning

__all__ = ["KronSumSolver", "solve_kronsum", "solve_sylvester", "solve_sylvester3d"]

_ASSUME_A = ("auto", "sym", "gen")

# Results of the checked routes whose scaled residual ‖B - op(X)‖ / (‖op‖ ‖X‖ eps)
# exceeds this are refined (LAPACK's test bar).
_RES_TOL = 30.0


def _norm2_bound(A: Any) -> float:
    """``sqrt(‖A‖₁ ‖A‖_∞) >= ‖A‖₂`` (cheap, no SVD)."""
    a = np.abs(np.asarray(A))
    big = float(a.max()) if a.size else 0.0
    if not big > 0:
        return 0.0
    a = a / big  # no overflow or underflow in the product
    return big * float(np.sqrt(a.sum(axis=0).max() * a.sum(axis=1).max()))


def _terms(idx: tuple, shift: Any) -> str:
    """``λ1[i1] + ... + λd[id] (+ shift)``, the eigenvalue sum at a multi-index, in words."""
    terms = " + ".join(f"λ{k + 1}[{i}]" for k, i in enumerate(idx))
    return terms + (" + shift" if shift != 0 else "")


def _check_method(method: Any) -> str:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    return method


def _same(be: Any, A: Any, B: Any) -> bool:
    if A is B:
        return True
    if A is None or B is None:
        return False
    return tuple(A.shape) == tuple(B.shape) and A.dtype == B.dtype and be.equal(A, B)


class KronSumSolver:
    """Factor a Kronecker sum once, then solve with it many times.

    Solves ``X ×₁ A1 + ... + X ×_d Ad + shift·X = B``, that is
    ``(A1 ⊕ ... ⊕ Ad + shift·I) vec(X) = vec(B)`` in C order, by the fast
    diagonalization method: each factor is eigendecomposed once here, and every
    :meth:`solve` costs two tensor transforms (``2d`` mode products) and one
    division.  With ``masses`` it solves the generalized (finite-element) form
    ``Σ_k X ×_k K_k ×_{j≠k} M_j + shift·(X ×₁ M1 ... ×_d Md) = B`` through the
    generalized eigenproblems ``K_k v = λ M_k v``.

    Non-symmetric factors are reduced to Schur form ``A_k = Q_k T_k Q_kᴴ``
    instead (generalized Bartels–Stewart): the transforms use the orthogonal
    ``Q_k`` and the division becomes a blocked back-substitution with the
    (quasi-)triangular ``T_k``.  This route is backward stable in the residual
    for non-normal and defective factors, where eigenvector bases are
    ill-conditioned or do not exist.

    Parameters
    ----------
    mats : sequence of (n_k, n_k) arrays or scipy.sparse matrices
        The factors ``A1, ..., Ad`` (``K_k`` with masses), ``d >= 1``.  Factors
        that are the same object, or equal arrays, are decomposed only once.
        Stacks ``(..., n_k, n_k)`` are per-item factors (each item of a batch
        its own, the leading dimensions broadcasting as in NumPy's stacked
        ``matmul``): symmetric ones without masses, decomposed once in one
        batched ``eigh`` each; :meth:`solve` then solves every item with its
        own factors (``slogdet`` and ``aslinearoperator`` are not offered).
    masses : sequence of (n_k, n_k) arrays, optional
        Mass matrices ``M_k``, symmetric (Hermitian) positive definite for the
        symmetric path; an entry ``None`` stands for the identity.
    assume_a : {"auto", "sym", "gen"}, optional
        ``"sym"``: the factors (and masses) are symmetric or Hermitian and are
        diagonalized with ``eigh`` (their Hermitian parts ``(A + Aᴴ)/2`` are
        used, unchecked).  ``"gen"``: use ``eig`` (complex arithmetic inside,
        real results for real data).  ``"auto"`` (default): ``"sym"`` for each
        factor that equals its conjugate transpose up to a few rounding errors
        (``‖A - Aᴴ‖_F <= 8 √n eps ‖A‖_F``, tested on ``A / max|A_ij|``), else
        ``"gen"``.
    method : {"auto", "eigh", "eig", "schur"}, optional
        How factors are reduced.  ``"auto"`` (default): ``eigh`` for the
        symmetric (Hermitian) factors, the Schur form for the others (real
        arithmetic for real data, 2 x 2 blocks for complex eigenvalue pairs).
        ``"eigh"``: every factor taken as symmetric (as ``assume_a="sym"``).
        ``"eig"``: non-symmetric factors diagonalized by ``eig`` (fast when
        their eigenvector bases are well conditioned); each solve then checks
        its residual, refines once and, failing that, solves by the Schur
        route with an :class:`~kronsolve.AccuracyWarning`.  ``"schur"``: every
        factor by its Schur form.
    check_finite : bool, optional
        Check the factors and masses for inf and NaN (default True).

    Backends: NumPy factors (dense or scipy.sparse) are decomposed with LAPACK;
    PyTorch and CuPy factors with the library's own ``eigh``/``eig`` (PyTorch
    keeps autograd); Dask factors, being small, on the host with NumPy.
    :meth:`solve` returns arrays of the factors' library, or of ``B``'s when
    the factors are NumPy arrays (the mixing rule of the README).

    Attributes
    ----------
    shape : tuple of int
        ``(n_1, ..., n_d)``, the trailing shape of the right-hand sides.
    ndim : int
        ``d``.
    batch_shape : tuple of int
        With per-item factors only: their broadcast batch shape.
    eigenvalues : list of arrays
        Eigenvalues of each factor (real for the symmetric path), in the
        factors' array library.

    Raises
    ------
    ValueError
        A factor or mass that is not square, a mass whose shape does not match
        its factor, non-finite entries, an unknown ``assume_a``.
    TypeError
        ``mats`` that is not a list of matrices (for instance the factors as
        separate arguments), non-numeric or unsupported dtypes.
    numpy.linalg.LinAlgError
        A mass matrix that is not positive definite (symmetric path) or is
        singular, or (``method="eig"``) a factor whose eigenvector matrix is
        singular.

    Warns
    -----
    AccuracyWarning
        ``method="eig"``: a non-symmetric factor whose eigenvector basis has a
        condition number above about 1e8; on every :meth:`solve` whose checked
        residual stays large after refinement (the message says what was done).

    Examples
    --------
    One-dimensional Laplacians with Dirichlet conditions, a Poisson and then a
    Helmholtz-like solve reusing the factorization:

    >>> import numpy as np
    >>> from kronsolve import KronSumSolver, kronsum
    >>> n = 8
    >>> T = 2 * np.eye(n) - np.eye(n, k=1) - np.eye(n, k=-1)
    >>> solver = KronSumSolver([T, T, T])
    >>> B = np.ones((n, n, n))
    >>> X = solver.solve(B)
    >>> np.allclose(kronsum(T, T, T) @ X.ravel(), B.ravel())
    True
    >>> X2 = solver.solve(B, shift=0.5)
    >>> np.allclose(kronsum(T, T, T) @ X2.ravel() + 0.5 * X2.ravel(), B.ravel())
    True
    """

    def __init__(self, mats: Sequence[Any], *extra: Any, masses: Sequence[Any] | None = None,
                 assume_a: str = "auto", method: str = "auto", check_finite: bool = True,
                 _stacklevel: int = 2):
        mats = _factor_list(mats, "mats", extra, "KronSumSolver")
        if assume_a not in _ASSUME_A:
            raise ValueError(f"assume_a must be one of {_ASSUME_A}, got {assume_a!r}")
        self._method = _check_method(method)
        masses_l = None if masses is None else _factor_list(masses, "masses")
        d = len(mats)
        if d == 0:
            raise ValueError("mats must hold at least one matrix, got an empty sequence")
        be = backend_of(*mats, *(masses_l or ()))
        if any(getattr(A, "ndim", 2) > 2 for A in mats):
            self._init_items(be, mats, masses_l, assume_a, check_finite)
            return
        # autodiff: decompose detached factors; the originals go to the backward pass
        mats, masses_l, self._grad = _autodiff.detach_factors(be, mats, masses_l)
        self._assume_a = assume_a
        self._backend = be
        self._ref = reference_of(*mats, *(masses_l or ()))
        dec = be.host if be.lazy else be  # the backend that decomposes

        def factor(A: Any, name: str) -> Any:
            A = be.matrix(A, name, self._ref)
            if A.shape[0] != A.shape[1]:
                raise ValueError(f"{name} must be square, got shape {tuple(A.shape)}")
            A = dec.dense(be.to_host(A) if be.lazy else A)
            dec.work_dtype(A.dtype, name=name)
            if check_finite:
                dec.check_finite(A, name)
            return A

        Ks: list = []
        alias = list(range(d))  # alias[k] = j < k when mats[k] is mats[j]
        for k, A in enumerate(mats):
            for j in range(k):
                if mats[j] is A:  # the same object again: already validated
                    alias[k] = j
                    break
            Ks.append(Ks[alias[k]] if alias[k] != k else factor(A, f"mats[{k}]"))
        Ms: list = [None] * d
        if masses_l is not None:
            if len(masses_l) != d:
                raise ValueError(
                    f"masses must hold one matrix per factor: got {len(masses_l)} masses for "
                    f"{d} factors"
                )
            for k, M in enumerate(masses_l):
                if M is None:
                    continue
                M = factor(M, f"masses[{k}]")
                if tuple(M.shape) != tuple(Ks[k].shape):
                    raise ValueError(
                        f"masses[{k}] has shape {tuple(M.shape)}, but mats[{k}] has shape "
                        f"{tuple(Ks[k].shape)}; they must match"
                    )
                Ms[k] = M
        self.ndim = d
        self.shape = tuple(int(A.shape[0]) for A in Ks)
        in_dtype = dec.work_dtype(*[A.dtype for A in Ks],
                                  *[M.dtype for M in Ms if M is not None])
        self._in_dtype = dec.numpy_dtype(in_dtype)  # host dtype, for the promotion rules
        self._masses = any(M is not None for M in Ms)
        # decompose, sharing identical factors
        owner = list(range(d))  # owner[k]: first mode with the same factor (and mass)
        for k in range(1, d):
            if not self._masses and alias[k] != k:  # the same object: no comparison
                owner[k] = owner[alias[k]]
                continue
            for j in range(k):
                if owner[j] == j and _same(dec, Ks[j], Ks[k]) and _same(dec, Ms[j], Ms[k]):
                    owner[k] = j
                    break
        jobs = [(Ks[k], Ms[k], assume_a, f"mats[{k}]", f"masses[{k}]", method)
                for k in range(d) if owner[k] == k]
        results, self._parallel_flops = dec.decompose_all(
            jobs, lambda *job: decompose(dec, *job))
        for _, msg in results:
            if msg is not None:
                warnings.warn(msg, AccuracyWarning, stacklevel=_stacklevel)
        unique = iter(r[0] for r in results)
        modes: list[Mode] = []
        for k in range(d):
            modes.append(next(unique) if owner[k] == k else modes[owner[k]])
        self._modes = modes
        self._real_modes = all(m.real for m in modes)
        self._lam_complex = any(m.lam_host.dtype.kind == "c" for m in modes)
        self._n_decomposed = len({id(m) for m in modes})
        self._checked: dict = {}
        # the Schur route (any Schur mode); results checked by their residual where
        # the reduction is not orthogonal (eig modes, masses folded into Schur modes)
        self._tri = any(m.kind == "schur" for m in modes)
        self._verify = (any(m.kind == "eig" or m.reduced for m in modes)
                        and not be.lazy)
        self._packed: dict = {}
        self._Ks, self._Ms = Ks, Ms
        self._fallback: KronSumSolver | None = None
        kn = [_norm2_bound(dec.to_host(A)) for A in Ks]
        mn = [1.0 if M is None else _norm2_bound(dec.to_host(M)) for M in Ms]
        pm = prod(mn)
        # ‖op‖₂ <= Σ_k ‖K_k‖ Π_{j≠k} ‖M_j‖ + |shift| Π_j ‖M_j‖
        self._opnorm = (sum(kn[k] * prod(mn[:k] + mn[k + 1:]) for k in range(d)), pm)
        self.eigenvalues = [be.from_host(m.lam_host, like=self._ref)
                            if be.lazy or m.backend is not dec else m.lam for m in modes]

    def __repr__(self) -> str:
        lib = "" if self._backend is NUMPY else f"[{self._backend.name}]"
        if self._items is not None:
            return (f"KronSumSolver{lib}(shape={self.shape}, per-item factors of batch "
                    f"{self.batch_shape}, symmetric)")
        return (f"KronSumSolver{lib}(shape={self.shape}, "
                f"{'generalized, ' if self._masses else ''}"
                f"{'symmetric' if all(m.hermitian for m in self._modes) else 'general'})")

    # ---------------------------------------------------------- per-item factors
    _items: PerItemSolver | None = None

    def _init_items(self, be: Any, mats: list, masses: Any, assume_a: str,
                    check_finite: bool) -> None:
        """Stacks of factors (one set per item): symmetric ones, decomposed once."""
        mats = [be.tensor(A, f"mats[{k}]", reference_of(*mats)) if be is not NUMPY
                else _as_array(A, f"mats[{k}]") for k, A in enumerate(mats)]
        for k, A in enumerate(mats):
            if A.ndim < 2 or A.shape[-1] != A.shape[-2]:
                raise ValueError(f"mats[{k}] must be a square matrix or a stack of them, got "
                                 f"shape {tuple(A.shape)}")
            if check_finite:
                be.check_finite(A, f"mats[{k}]")
        try:
            np.broadcast_shapes(*[tuple(A.shape[:-2]) for A in mats])
        except ValueError:
            raise ValueError("the batch dimensions of the factor stacks do not broadcast: "
                             + str([tuple(A.shape[:-2]) for A in mats])) from None
        dt = be.work_dtype(*[A.dtype for A in mats])
        self._eps = be.eps(be.real_of(dt))
        if masses is not None or self._method in ("eig", "schur") or assume_a == "gen" or (
                assume_a == "auto" and self._method == "auto"
                and not is_symmetric(be, mats, self._eps)):
            raise NotImplementedError(
                "KronSumSolver takes per-item factors (stacks) when they are symmetric and "
                "without masses; solve_kronsum solves other per-item factors item by item")
        self._backend, self._ref = be, reference_of(*mats)
        self._items = PerItemSolver(be, mats, dt)
        self.shape, self.ndim = self._items.shape, len(mats)
        self.batch_shape = self._items.batch_shape
        self.eigenvalues = self._items.eigenvalues

    def _solve_items(self, B: Any, shift: Any, check_finite: bool) -> Any:
        be = self._backend
        B = be.tensor(B, "B", self._ref) if be is not NUMPY else _as_array(B, "B")
        d, ns = self.ndim, self.shape
        flat = B.ndim == 1 and d > 1 and B.shape[0] == prod(ns)
        if flat:
            B = be.xp.reshape(B, ns)
        if B.ndim < d or tuple(B.shape[B.ndim - d:]) != ns:
            raise ValueError(f"B must have shape (..., {', '.join(map(str, ns))}) or "
                             f"({prod(ns)},) to match the factors, got {tuple(B.shape)}")
        try:
            np.broadcast_shapes(tuple(B.shape[:B.ndim - d]), self.batch_shape)
        except ValueError:
            raise ValueError(f"the batch dimensions do not broadcast: B has "
                             f"{tuple(B.shape[:B.ndim - d])}, the factors "
                             f"{self.batch_shape}") from None
        if check_finite:
            B = be.check_finite(B, "B")
        X = self._items.solve(B, _check_shift(shift), self._eps)
        if not be.is_complex(B.dtype) and not be.is_complex(self._items._dt) and \
                not _is_complex_scalar(shift) and be.is_complex(X.dtype):
            X = be.xp.real(X)
        return be.xp.reshape(X, (-1,)) if flat and X.ndim == d else X

    # ---------------------------------------------------------------- helpers
    def _check_nonsingular(self, shift: Any, eps: float) -> None:
        key = (shift, eps)
        if key in self._checked:
            return
        lams = [m.lam_host for m in self._modes]
        scale = sum(m.bounds[2] for m in self._modes) + abs(shift)
        tol = _singular_tol(eps, self.ndim, scale)
        if not self._lam_complex and not _is_complex_scalar(shift):
            # definite sums (the Poisson case): no search needed
            lo = sum(m.bounds[0] for m in self._modes) + shift
            hi = sum(m.bounds[1] for m in self._modes) + shift
            if lo > tol or hi < -tol:
                self._remember(key)
                return
        if self._lam_complex and tol > 0 and not _any_sum_near_zero(lams, shift, tol):
            self._remember(key)  # complex eigenvalues: the cheap search first
            return
        idx, value = _nearest_zero_sum(lams, shift)
        if not abs(value) > tol:
            raise np.linalg.LinAlgError(
                f"the Kronecker sum{' plus shift' if shift != 0 else ''} is singular to "
                f"working precision: at multi-index {idx}, {_terms(idx, shift)} = "
                f"{value:.3g}, which is zero relative to the eigenvalue scale {scale:.3g} "
                f"(tolerance {tol:.3g})"
            )
        self._remember(key)

    def _remember(self, key: tuple) -> None:
        if len(self._checked) > 16:
            self._checked.clear()
        self._checked[key] = True

    # ------------------------------------------------------------------ solve
    def solve(self, B: Any, shift: Any = 0.0, *, check_finite: bool = True,
              overwrite_b: bool = False) -> Any:
        """Solve ``X ×₁ A1 + ... + X ×_d Ad + shift·X = B`` (generalized with masses).

        Parameters
        ----------
        B : (..., n_1, ..., n_d) or (N,) array_like
            Right-hand side; leading dimensions are independent problems solved
            together.  A flat vector of length ``N = n_1 ⋯ n_d`` (C order) is
            accepted too and gives a flat result.
        shift : scalar, optional
            Multiple of the identity (of the mass Kronecker product) added to the
            operator; may be complex.
        check_finite : bool, optional
            Check that ``B`` holds only finite numbers (default True).
        overwrite_b : bool, optional
            Allow the solver to use ``B`` as workspace and to return the solution
            in it (when ``B`` is C-contiguous, writeable and of the working dtype).
            The peak extra memory is then one array the size of ``B`` instead of two
            (the result and one scratch array); the Schur route (non-symmetric
            factors) needs half an array more for its updates (1.5 and 2.5 arrays).
            Complex arithmetic for a real problem (a complex shift, ``method="eig"``
            with complex eigenvalues) needs twice that.

        Returns
        -------
        X : array
            Same shape as ``B``; real when ``B``, the factors and ``shift`` are.
            Of ``B``'s array library (or the factors', see the class docstring).

        Raises
        ------
        ValueError
            ``B`` whose trailing shape is not :attr:`shape`, non-finite entries.
        numpy.linalg.LinAlgError
            Some eigenvalue sum plus ``shift`` is zero relative to the scale of the
            eigenvalues (the message names the multi-index and the value), or, on
            the Schur route, the solution shows the operator singular to working
            precision (``‖op‖ ‖X‖ / ‖B‖ > 1/eps``: defective factors whose computed
            eigenvalues are perturbed away from a zero sum).

        Warns
        -----
        AccuracyWarning
            A checked route (``method="eig"``, masses reduced without an orthogonal
            transform) whose residual stays above 30 eps after one refinement step.
        """
        if self._items is not None:
            return self._solve_items(B, shift, check_finite)
        return self._solve(B, shift, check_finite=check_finite, overwrite_b=overwrite_b)

    def _solve(self, B: Any, shift: Any, *, check_finite: bool, overwrite_b: bool,
               name: str = "B", _plain: bool = False) -> Any:
        if type(B) is np.ndarray and self._backend is NUMPY:
            be = NUMPY
        else:
            be = backend_of(B, self._ref)
            B = be.tensor(B, name, self._ref)
        if type(B) is not np.ndarray and be is NUMPY:
            B = _as_array(B, name)
        ns = self.shape
        flat = _check_tensor_rhs(ns, B, name)
        if flat:
            B = B.reshape(ns)
        if not _plain and be is not NUMPY and (
                self._grad is not None or _autodiff.differentiable(be, B, shift)):
            # gradients by implicit differentiation (PyTorch autograd, JAX custom_vjp)
            X = _autodiff.solve(self, be, B, shift, check_finite, name)
            return X.reshape((prod(ns),)) if flat else X
        shift = _check_shift(shift)
        # the whole solve (the finiteness check's BLAS calls too) under one thread policy
        with be.threads(4.0 * prod(B.shape) * sum(ns)):
            return self._solve_checked(be, B, shift, check_finite, overwrite_b, name, flat)

    def _solve_checked(self, be: Any, B: Any, shift: Any, check_finite: bool,
                       overwrite_b: bool, name: str, flat: bool) -> Any:
        d, ns = self.ndim, self.shape
        if check_finite:
            B = be.check_finite(B, name)
        cshift = _is_complex_scalar(shift)
        out_np = NUMPY.work_dtype(be.numpy_dtype(B.dtype), self._in_dtype,
                                  np.complex64 if cshift else np.float16, name=name)
        out_dt = be.from_numpy_dtype(out_np)
        wd = out_dt if self._real_modes else be.complex_of(out_dt)
        if prod(B.shape) == 0:
            X = be.zeros(tuple(B.shape), out_dt, like=B)
            return X.reshape((0,)) if flat else X
        eps = be.eps(be.real_of(wd))
        self._check_nonsingular(shift, eps)
        b = B.ndim - d
        if self._verify:
            X = self._verified(be, B, shift, wd, out_dt, b, eps)
        elif self._tri and not be.lazy:
            nB = _norms(be, B, b)  # before B may be overwritten
            X = self._inverse(be, B, shift, wd, out_dt, overwrite_b)
            self._check_conditioning(nB, _norms(be, X, b), shift, eps)
        else:
            X = self._inverse(be, B, shift, wd, out_dt, overwrite_b)
        return X.reshape((prod(ns),)) if flat else X

    def _inverse(self, be: Any, B: Any, shift: Any, wd: Any, out_dt: Any,
                 overwrite_b: bool) -> Any:
        """The solve proper: transform, divide or back-substitute, transform back."""
        d = self.ndim
        mats = [m.mats(be, wd, B) for m in self._modes]
        if self._tri:
            tri = self._triangular(be.numpy_dtype(wd))

            def middle(Y: np.ndarray, b: int) -> None:
                trisolve(Y, b, tri, shift)

            return be.fdm(B, mats, None, shift, wd, out_dt, overwrite_b, d, middle=middle)
        cplx = self._lam_complex or _is_complex_scalar(shift)
        dd = wd if cplx else be.real_of(wd)
        lams = [m.lam_as(be, dd, B) for m in self._modes]
        return be.fdm(B, mats, lams, shift, wd, out_dt, overwrite_b, d)

    def _triangular(self, dtype: np.dtype) -> Triangular:
        """The packed (quasi-)triangular factors in ``dtype`` (cached)."""
        tri = self._packed.get(dtype)
        if tri is None:
            tri = self._packed[dtype] = Triangular(
                [("tri", m.T, m.sub) if m.kind == "schur" else ("diag", m.lam_host)
                 for m in self._modes], dtype)
        return tri

    def _op(self, be: Any, X: Any, shift: Any, b: int) -> Any:
        """``Σ_k X ×_k K_k ×_{j≠k} M_j + shift·X ×_all M`` (the operator itself)."""
        d = self.ndim
        modes = list(range(b, b + d))
        Ks, Ms = self._Ks, self._Ms
        if not self._masses:
            out = be.modesum(X, Ks, modes)
            return out + shift * X if shift != 0 else out
        out = None
        for k in range(d):
            ops = [(Ks[j] if j == k else Ms[j], modes[j]) for j in range(d)
                   if j == k or Ms[j] is not None]
            t = be.modeprod(X, [o[0] for o in ops], [o[1] for o in ops])
            out = t if out is None else out + t
        if shift != 0:
            ops = [(Ms[j], modes[j]) for j in range(d) if Ms[j] is not None]
            out = out + shift * be.modeprod(X, [o[0] for o in ops], [o[1] for o in ops])
        return out

    def _scaled_residual(self, be: Any, B: Any, X: Any, shift: Any, b: int,
                         eps: float) -> tuple[float, Any]:
        """The largest ``‖B - op(X)‖ / (‖op‖ ‖X‖ eps)`` over the problems, and ``B - op(X)``."""
        R = B - self._op(be, X, shift, b)
        nr, nx = _norms(be, R, b), _norms(be, X, b)
        opn = self._opnorm[0] + abs(shift) * self._opnorm[1]
        with np.errstate(divide="ignore", invalid="ignore"):
            res = np.where(nr == 0, 0.0, nr / opn / nx / eps)
        return float(np.max(res, initial=0.0)), R

    def _verified(self, be: Any, B: Any, shift: Any, wd: Any, out_dt: Any, b: int,
                  eps: float) -> Any:
        """A solve of a route without a residual bound, checked and refined once."""
        X = self._inverse(be, B, shift, wd, out_dt, False)
        res, R = self._scaled_residual(be, B, X, shift, b, eps)
        if res > _RES_TOL or not np.isfinite(res):
            X = X + self._inverse(be, R, shift, wd, out_dt, True)
            res, R = self._scaled_residual(be, B, X, shift, b, eps)
        if res <= _RES_TOL:
            return X
        if any(m.kind == "eig" for m in self._modes):
            if self._fallback is None:
                self._fallback = KronSumSolver(self._Ks, masses=self._Ms, method="schur",
                                               check_finite=False)
            warnings.warn(
                f"the eigenvector route (method='eig') left a scaled residual of {res:.3g} "
                f"(> {_RES_TOL:g}) after one refinement step: its eigenvector bases are too "
                "ill-conditioned; the result comes from the Schur route instead",
                AccuracyWarning, stacklevel=4)
            return self._fallback._solve(B, shift, check_finite=False, overwrite_b=False)
        warnings.warn(
            f"the solution may be inaccurate: scaled residual {res:.3g} (> {_RES_TOL:g}) "
            "after one refinement step (ill-conditioned mass matrices)",
            AccuracyWarning, stacklevel=4)
        return X

    def _check_conditioning(self, nB: np.ndarray, nX: np.ndarray, shift: Any,
                            eps: float) -> None:
        """Raise when ``‖op‖ ‖X‖ / ‖B‖``, a lower bound of the condition number, passes 1/eps.

        The eigenvalue sums of a non-normal (for instance rotated Jordan) factor
        can all be far from zero while the operator is singular to working
        precision; the solution then shows it.
        """
        opn = self._opnorm[0] + abs(shift) * self._opnorm[1]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            est = np.where(nX == 0, 0.0, opn * (nX / nB))
        worst = float(np.max(est, initial=0.0))
        if not worst * eps < 1.0:
            idx, value = _nearest_zero_sum([m.lam_host for m in self._modes], shift)
            raise np.linalg.LinAlgError(
                f"the Kronecker sum{' plus shift' if shift != 0 else ''} is singular to "
                f"working precision: its condition number is at least {worst:.3g} "
                f"(> 1/eps = {1 / eps:.3g}), though the eigenvalue sum nearest zero, "
                f"{_terms(idx, shift)} = {value:.3g} at multi-index {idx}, is not: a "
                "defective (Jordan-like) factor whose computed eigenvalues are perturbed")

    def slogdet(self, shift: Any = 0.0) -> tuple[Any, Any]:
        """Sign and natural log of the absolute determinant of the operator, as
        ``np.linalg.slogdet``.

        The operator is ``A1 ⊕ ... ⊕ Ad + shift·I`` (with masses: ``Σ_k K_k ⊗
        (⊗_{j≠k} M_j) + shift·(⊗_k M_k)``).  Its determinant is the product of
        the ``N`` eigenvalue sums plus ``shift`` (times ``Π_k det(M_k)^(N/n_k)``),
        summed as logarithms in blocks: ``O(N)`` work and no array of size
        ``N``.  A real operator gives a real sign (its complex eigenvalue sums
        come in conjugate pairs).

        Returns
        -------
        sign : float or complex
            ``±1`` (or of modulus 1 for complex operators); 0 when singular.
        logabsdet : float
            ``log|det|``; ``-inf`` when singular.

        Examples
        --------
        >>> import numpy as np
        >>> from kronsolve import KronSumSolver, kronsum
        >>> T = 2 * np.eye(4) - np.eye(4, k=1) - np.eye(4, k=-1)
        >>> sign, logdet = KronSumSolver([T, T, T]).slogdet(shift=0.5)
        >>> ref = np.linalg.slogdet(kronsum(T, T, T).toarray() + 0.5 * np.eye(64))
        >>> bool(sign == ref[0]), bool(np.isclose(logdet, ref[1]))
        (True, True)
        """
        if self._items is not None:
            raise NotImplementedError("slogdet of a solver with per-item factors")
        shift = _check_shift(shift)
        sign, logabs = _slogdet_sums([m.lam_host for m in self._modes], shift)
        if self._masses and logabs > -np.inf:
            N = prod(self.shape)
            host = self._backend.host
            for k, M in enumerate(self._Ms):
                if M is None:
                    continue
                sm, lm = np.linalg.slogdet(np.asarray(host.to_host(M)))
                p = N // self.shape[k]
                logabs += p * float(lm)
                sign = sign * sm ** p
        return sign, np.float64(logabs)

    def aslinearoperator(self, shift: Any = 0.0) -> Any:
        """A ``scipy.sparse.linalg.LinearOperator`` that applies the inverse.

        ``op @ b`` solves ``(A1 ⊕ ... ⊕ Ad + shift·I) x = b`` for a flat ``b`` (or
        a block of columns): a preconditioner for ``cg``, ``gmres`` or ``minres``
        (``M=solver.aslinearoperator()``).  NumPy solvers only.

        Examples
        --------
        >>> import numpy as np
        >>> from scipy.sparse.linalg import cg
        >>> from kronsolve import KronSumSolver, kronsum
        >>> T = 2 * np.eye(6) - np.eye(6, k=1) - np.eye(6, k=-1)
        >>> K = kronsum(T, T + 0.1 * np.diag(np.arange(6.0)))   # the system
        >>> P = KronSumSolver([T, T]).aslinearoperator()        # a nearby one, inverted
        >>> x, info = cg(K.aslinearoperator(), np.ones(36), M=P)
        >>> info, bool(np.allclose(K @ x, np.ones(36)))
        (0, True)
        """
        if self._items is not None:
            raise NotImplementedError("aslinearoperator of a solver with per-item factors")
        if self._backend is not NUMPY:
            raise TypeError(f"aslinearoperator needs a NumPy solver, not a "
                            f"{self._backend.name} one")
        from ._linop import _InverseOperator

        return _InverseOperator(self, _check_shift(shift))


def _norms(be: Any, A: Any, b: int) -> np.ndarray:
    """Frobenius norms of the ``b``-batched problems of ``A``, on the host."""
    h = np.asarray(be.to_host(A))
    nb = prod(h.shape[:b])
    if not h.size:
        return np.zeros(nb)
    h = h.reshape(nb, -1)
    if h.dtype.kind not in "fc":
        h = h.astype(np.float64)
    fin = np.finfo(h.dtype)
    with np.errstate(over="ignore", under="ignore"):
        if h.shape[1] >= 1 << 16:
            # one problem at a time: a dot product, no temporary of B's size
            nrm = np.array([np.linalg.norm(r) for r in h], dtype=np.float64)
        else:
            nrm = np.linalg.norm(h, axis=1).astype(np.float64)
    if not np.all((nrm > float(fin.tiny) ** 0.25) & (nrm < float(fin.max) ** 0.25)):
        # the sum of squares may have overflowed or underflowed: scale first
        big = np.abs(h).max(axis=1).astype(np.float64)
        safe = np.where(big > 0, big, 1.0)
        nrm = big * np.linalg.norm(h / safe[:, None].astype(h.dtype), axis=1)
    return nrm


def _solve_once(solver: KronSumSolver, B: Any, shift: Any, check_finite: bool,
                overwrite_b: bool) -> Any:
    """The solve of a one-shot function, with the BLAS threads its size calls for.

    When the factors were decomposed side by side in threads and the two
    transforms cost fewer flops than those decompositions, the transforms run
    with one BLAS thread too: OpenBLAS's worker threads keep spinning after a
    multi-threaded call and steal the cores from the next decompositions.
    """
    flops = solver._parallel_flops
    if flops and 4 * prod(solver.shape) * sum(solver.shape) < flops:
        with solver._backend.one_thread():
            return solver._solve(B, shift, check_finite=check_finite, overwrite_b=overwrite_b)
    return solver._solve(B, shift, check_finite=check_finite, overwrite_b=overwrite_b)


# ------------------------------------------------------------- functions


def solve_kronsum(
    B: Any,
    mats: Sequence[Any],
    *extra: Any,
    masses: Sequence[Any] | None = None,
    shift: Any = 0.0,
    assume_a: str = "auto",
    method: str = "auto",
    check_finite: bool = True,
    overwrite_b: bool = False,
) -> Any:
    """Solve the d-dimensional tensor Sylvester equation (a Kronecker-sum system).

    Finds ``X`` with ``X ×₁ A1 + X ×₂ A2 + ... + X ×_d Ad + shift·X = B``, i.e.
    ``(A1 ⊕ ... ⊕ Ad + shift·I) X.ravel() = B.ravel()`` with
    ``A1 ⊕ A2 = np.kron(A1, I) + np.kron(I, A2)``, by the fast diagonalization
    method: ``O(N · Σ n_k)`` flops for ``N = Π n_k`` unknowns.

    With ``masses`` it solves the generalized (finite-element) form
    ``Σ_k X ×_k K_k ×_{j≠k} M_j + shift·(X ×₁ M1 ... ×_d Md) = B``.

    Parameters
    ----------
    B : (..., n_1, ..., n_d) or (N,) array_like
        Right-hand side; leading dimensions are batches solved together.  A
        flat vector of length ``N = n_1 ⋯ n_d`` gives a flat result.
    mats : list of (n_k, n_k) arrays or scipy.sparse matrices
        The factors, ``d = len(mats) >= 1``, in a list.  Stacks ``(..., n_k,
        n_k)`` are per-item factors (the spectral-element pattern: each element
        its own factors): their leading dimensions broadcast against ``B``'s
        batch dimensions as in NumPy's stacked ``matmul``, and each item is
        solved with its own factors (symmetric stacks in one batched ``eigh``
        and two stacked transforms; others item by item).
    masses : sequence of (n_k, n_k) arrays, optional
        Symmetric positive definite mass matrices (``None`` entries: identity).
    shift : scalar, optional
        Added multiple of the identity (of ``M1 ⊗ ... ⊗ Md`` with masses).
    assume_a : {"auto", "sym", "gen"}, optional
        Symmetric (``eigh``, real arithmetic for real data) or general factors;
        ``"auto"`` checks symmetry with a rounding tolerance.
    method : {"auto", "eigh", "eig", "schur"}, optional
        ``"auto"``: ``eigh`` for symmetric factors, the Schur form (a blocked
        Bartels–Stewart back-substitution) for non-symmetric ones.  See
        :class:`KronSumSolver`.
    check_finite : bool, optional
        Check the inputs for inf and NaN (default True).
    overwrite_b : bool, optional
        Allow ``B`` to be used as workspace and to hold the result.

    Returns
    -------
    X : ndarray
        Shape of ``B``; real when all inputs are real.

    Raises
    ------
    ValueError
        Non-square factors, mismatched shapes, non-finite input.
    TypeError
        Arguments of the wrong kind or dtype.
    numpy.linalg.LinAlgError
        Singular or nearly singular sum (the message names the multi-index of
        the offending eigenvalues and the value), or a mass matrix that is not
        positive definite.

    See Also
    --------
    KronSumSolver : factor once, solve many times.
    solve_sylvester3d : the three-dimensional case with ``A2 = A3 = A`` defaults.

    Examples
    --------
    >>> import numpy as np
    >>> from kronsolve import solve_kronsum, multi_mode_product
    >>> rng = np.random.default_rng(0)
    >>> A1, A2 = (np.diag([4.0, 5.0, 6.0]) + 0.1 * rng.standard_normal((3, 3)) for _ in range(2))
    >>> B = rng.standard_normal((3, 3))
    >>> X = solve_kronsum(B, [A1, A2])
    >>> I = np.eye(3)
    >>> np.allclose((np.kron(A1, I) + np.kron(I, A2)) @ X.ravel(), B.ravel())
    True
    """
    mats_l = _factor_list(mats, "mats", extra, "solve_kronsum")
    if any(getattr(A, "ndim", 2) > 2 for A in mats_l):
        return _solve_per_item(B, mats_l, masses, shift, assume_a, method, check_finite)
    _check_method(method)
    if (type(B) is np.ndarray and masses is None and (assume_a == "auto" or assume_a == "sym")
            and not overwrite_b and (method == "auto" or method == "eigh")):
        X = NUMPY.solve_small(B, mats_l, shift, check_finite)
        if X is not None:
            return X
    X = _autodiff.jax_route(B, mats_l, masses, shift, assume_a, method, check_finite,
                            KronSumSolver)
    if X is not None:  # JAX inputs: a jax.custom_vjp solve, traceable
        return X
    solver = KronSumSolver(mats_l, masses=masses, assume_a=assume_a, method=method,
                           check_finite=check_finite, _stacklevel=3)
    return _solve_once(solver, B, shift, check_finite, overwrite_b)


def solve_sylvester3d(
    B: Any,
    A: Any,
    A2: Any = None,
    A3: Any = None,
    *,
    shift: Any = 0.0,
    method: str = "auto",
    check_finite: bool = True,
    overwrite_b: bool = False,
) -> Any:
    """Solve the 3-D tensor Sylvester equation ``X ×₁ A + X ×₂ A2 + X ×₃ A3 + shift·X = B``.

    This is ``(A ⊕ A2 ⊕ A3 + shift·I) X.ravel() = B.ravel()``: the discrete
    Poisson, Helmholtz or diffusion operator on a tensor grid.  It is solved by
    the fast diagonalization method in ``O(n⁴)`` flops for symmetric factors and
    by their Schur forms otherwise (see :func:`solve_kronsum`, of which this is
    the ``d = 3`` case).

    Parameters
    ----------
    B : (..., n1, n2, n3) array_like
        Right-hand side; leading dimensions are batches.
    A : (n1, n1) array_like
        First factor.
    A2, A3 : (n2, n2) and (n3, n3) array_like, optional
        Second and third factors; default to ``A`` (decomposed only once).
    shift, method, check_finite, overwrite_b
        As in :func:`solve_kronsum`: the multiple of the identity added to the
        operator, the route (``"auto"``, ``"eigh"``, ``"eig"``, ``"schur"``), the
        check for inf and NaN (default True), and leave to use ``B`` as
        workspace and to return the result in it.

    Returns
    -------
    X : ndarray
        Shape of ``B``.

    Raises
    ------
    ValueError
        ``B`` with fewer than three dimensions, mismatched shapes, non-square
        factors, non-finite input.
    numpy.linalg.LinAlgError
        A singular or nearly singular operator (the message names the index).

    Examples
    --------
    >>> import numpy as np
    >>> from kronsolve import solve_sylvester3d, multi_mode_product
    >>> rng = np.random.default_rng(1)
    >>> n = 4
    >>> A = rng.standard_normal((n, n))
    >>> A = A @ A.T + n * np.eye(n)          # symmetric positive definite
    >>> X = rng.standard_normal((n, n, n))
    >>> I = np.eye(n)
    >>> B = (multi_mode_product(X, [A, I, I]) + multi_mode_product(X, [I, A, I])
    ...      + multi_mode_product(X, [I, I, A]))
    >>> np.allclose(solve_sylvester3d(B, A), X)
    True
    """
    if getattr(B, "ndim", None) is None:
        B = _as_array(B, "B")
    if B.ndim < 3:
        raise ValueError(
            f"B must have at least three dimensions (n1, n2, n3), got shape "
            f"{tuple(B.shape)}; use solve_kronsum for other dimensions"
        )
    mats = [A, A if A2 is None else A2, A if A3 is None else A3]
    _check_method(method)
    if type(B) is np.ndarray and not overwrite_b and (method == "auto" or method == "eigh"):
        X = NUMPY.solve_small(B, mats, shift, check_finite)
        if X is not None:
            return X
    X = _autodiff.jax_route(B, mats, None, shift, "auto", method, check_finite, KronSumSolver)
    if X is not None:  # JAX inputs: a jax.custom_vjp solve, traceable
        return X
    solver = KronSumSolver(mats, method=method, check_finite=check_finite, _stacklevel=3)
    return _solve_once(solver, B, shift, check_finite, overwrite_b)


def solve_sylvester(a: Any, b: Any, q: Any) -> np.ndarray:
    """Solve the Sylvester equation ``a @ x + x @ b = q`` (drop-in for SciPy's).

    Same signature and result as :func:`scipy.linalg.solve_sylvester`.  When
    ``a`` and ``b`` are both symmetric (Hermitian) it uses the diagonalization
    method (two ``eigh`` calls and four matrix products, real arithmetic for real
    data), which is much faster than the Bartels–Stewart algorithm; otherwise
    the Bartels–Stewart algorithm with kronsolve's blocked (level-3)
    back-substitution, the two Schur forms computed side by side.

    Parameters
    ----------
    a : (M, M) array_like
    b : (N, N) array_like
    q : (M, N) array_like

    Returns
    -------
    x : (M, N) ndarray

    Raises
    ------
    ValueError
        Non-square ``a`` or ``b``, ``q`` of the wrong shape, non-finite input.
    numpy.linalg.LinAlgError
        ``a`` and ``-b`` share an eigenvalue (to working precision), so that the
        solution is not unique.

    Examples
    --------
    >>> import numpy as np
    >>> from kronsolve import solve_sylvester
    >>> a = np.array([[2.0, 1.0], [1.0, 3.0]])
    >>> b = np.array([[4.0, 0.5], [0.5, 1.0]])
    >>> q = np.array([[1.0, 2.0], [3.0, 4.0]])
    >>> x = solve_sylvester(a, b, q)
    >>> np.allclose(a @ x + x @ b, q)
    True
    >>> import scipy.linalg
    >>> np.allclose(x, scipy.linalg.solve_sylvester(a, b, q))
    True
    """
    a = _as_matrix(a, "a", allow_sparse=False)
    b = _as_matrix(b, "b", allow_sparse=False)
    q = _as_array(q, "q")
    for name, A in (("a", a), ("b", b)):
        if A.shape[0] != A.shape[1]:
            raise ValueError(f"{name} must be square, got shape {A.shape}")
    if q.shape != (a.shape[0], b.shape[0]):
        raise ValueError(
            f"q must have shape (a.shape[0], b.shape[0]) = {(a.shape[0], b.shape[0])} for "
            f"a of shape {a.shape} and b of shape {b.shape}, got {q.shape}"
        )
    for name, A in (("a", a), ("b", b), ("q", q)):
        _check_finite(A, name)
    dt = NUMPY.work_dtype(a.dtype, b.dtype, q.dtype, name="a, b, q")
    eps = NUMPY.eps(NUMPY.real_of(dt))
    if a.size and b.size and NUMPY.is_hermitian(a, eps) and NUMPY.is_hermitian(b, eps):
        return solve_kronsum(q, [a, b.T], assume_a="sym", check_finite=False)
    # a x + x b = q is X ×₁ a + X ×₂ bᵀ = q
    solver = KronSumSolver([a, b.T], method="schur", check_finite=False, _stacklevel=3)
    return _solve_once(solver, q, 0.0, False, False)


def _solve_per_item(B: Any, mats: list, masses: Any, shift: Any, assume_a: str, method: str,
                    check_finite: bool) -> Any:
    """``solve_kronsum`` with per-item factors (stacks broadcast against ``B``'s batch)."""
    from ._modeprod import _operands

    _check_method(method)
    be, B, mats = _operands(B, mats, "B", stacks=True)
    if be.lazy:
        raise NotImplementedError("per-item factors are not supported for Dask arrays")
    d = len(mats)
    for k, A in enumerate(mats):
        if A.ndim < 2 or A.shape[-1] != A.shape[-2]:
            raise ValueError(f"mats[{k}] must be a square matrix or a stack of them, got shape "
                             f"{tuple(A.shape)}")
    ns = tuple(int(A.shape[-1]) for A in mats)
    if B.ndim < d or tuple(B.shape[B.ndim - d:]) != ns:
        raise ValueError(f"B must have shape (..., {', '.join(map(str, ns))}) to match the "
                         f"factors, got {tuple(B.shape)}")
    shift = _check_shift(shift)
    if check_finite:
        B = be.check_finite(B, "B")
        for k, A in enumerate(mats):
            be.check_finite(A, f"mats[{k}]")
    try:
        batch = np.broadcast_shapes(tuple(B.shape[:B.ndim - d]),
                                    *[tuple(A.shape[:-2]) for A in mats])
    except ValueError:
        raise ValueError(
            "the batch dimensions do not broadcast: B has " + str(tuple(B.shape[:B.ndim - d]))
            + ", mats have " + str([tuple(A.shape[:-2]) for A in mats])) from None
    eps = be.eps(be.real_of(be.work_dtype(B.dtype, *[A.dtype for A in mats])))
    symmetric = masses is None and method in ("auto", "eigh") and assume_a != "gen" and (
        assume_a == "sym" or method == "eigh" or is_symmetric(be, mats, eps))
    if not symmetric:
        if be is not NUMPY:
            raise NotImplementedError(
                "per-item non-symmetric factors (or masses) are solved item by item, with "
                "NumPy arrays only")
        Bb = np.broadcast_to(B, batch + ns)
        out = None
        for idx in np.ndindex(*batch):
            Xi = solve_kronsum(Bb[idx], [np.broadcast_to(A, batch + A.shape[-2:])[idx]
                                         for A in mats],
                               masses=None if masses is None else [
                                   None if M is None else np.broadcast_to(
                                       M, batch + np.shape(M)[-2:])[idx] for M in masses],
                               shift=shift, assume_a=assume_a, method=method,
                               check_finite=False)
            if out is None:
                out = np.empty(batch + ns, dtype=Xi.dtype)
            out[idx] = Xi
        return out if out is not None else np.zeros(batch + ns)
    # symmetric stacks: one batched eigh per factor, transform–divide–transform
    dt = be.work_dtype(B.dtype, *[A.dtype for A in mats])
    X = PerItemSolver(be, mats, dt).solve(B, shift, eps)
    if not be.is_complex(be.work_dtype(B.dtype, *[A.dtype for A in mats])) and \
            not _is_complex_scalar(shift) and be.is_complex(X.dtype):
        X = be.xp.real(X)
    return X
