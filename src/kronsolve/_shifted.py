"""Shifted Kronecker products ``A1 ⊗ ... ⊗ Ad + σ²·I`` (Gaussian processes on grids).

With ``A_k = Q_k Λ_k Q_kᴴ`` (symmetric or Hermitian factors, one ``eigh`` per
distinct factor) the operator is ``Q (Λ1 ⊗ ... ⊗ Λd + σ²I) Qᴴ`` with the
Kronecker product ``Q = Q1 ⊗ ... ⊗ Qd``: solves, log-determinants, quadratic
forms and samples cost two tensor transforms (or one) and ``O(N)`` work on the
tensor of eigenvalue products, never the ``N x N`` matrix.  The arithmetic uses
the factors' array library, so PyTorch keeps autograd (the gradients of a log
marginal likelihood with respect to the factors and σ²).

References
----------
Y. Saatçi, "Scalable inference for structured Gaussian process models", PhD
thesis, University of Cambridge (2012), ch. 5.
"""

from __future__ import annotations

from math import prod
from typing import Any

import numpy as np

from . import _autodiff
from ._backends import NUMPY
from ._layout import as_matrix, as_tensor, batch_as_columns, columns_as_batch
from ._spectral import eigh_factors
from ._validation import _check_shift, _check_solve_rhs

__all__ = ["ShiftedKronProduct"]


class ShiftedKronProduct:
    """The operator ``K + shift·I`` for a Kronecker product ``K`` of symmetric factors.

    Made by :meth:`KronProduct.shifted`.  Each distinct factor is
    diagonalized once (``eigh``); the tensor of the ``N`` eigenvalue products
    (plus ``shift``) is formed on first use and kept (``N`` numbers).

    Backends: NumPy; PyTorch and CuPy in their own arithmetic (PyTorch keeps
    autograd); Dask factors are decomposed on the host and ``solve``, ``quad``,
    ``logdet``, ``slogdet`` (its log part) and ``sample`` return lazy arrays
    (``solve_plus_diagonal``, which iterates, refuses Dask).

    Attributes
    ----------
    kron : KronProduct
        ``K``.
    shift : scalar
        The multiple of the identity added (``σ²`` of a Gaussian process); a
        0-d PyTorch tensor too, for gradients with respect to it.
    shape : (int, int)
    dtype : dtype
    factor_eigenvalues : list of arrays
        The eigenvalues of each factor (ascending), in the factors' library.

    Examples
    --------
    A Gaussian-process covariance on a 2-D grid plus noise:

    >>> import numpy as np
    >>> import kronsolve as ks
    >>> x = np.linspace(0, 1, 5)
    >>> C = np.exp(-(x[:, None] - x[None, :]) ** 2 / 0.1)   # a 1-D kernel matrix
    >>> S = ks.kron(C, C).shifted(0.01)                      # C ⊗ C + 0.01 I
    >>> y = np.arange(25.0)
    >>> dense = np.kron(C, C) + 0.01 * np.eye(25)
    >>> np.allclose(S.solve(y), np.linalg.solve(dense, y))
    True
    >>> bool(np.isclose(S.logdet(), np.linalg.slogdet(dense)[1]))
    True
    """

    __slots__ = ("kron", "shift", "shape", "dtype", "factor_eigenvalues", "_backend",
                 "_Qs", "_QHs", "_Ps", "_ns", "_eig", "_checked", "_minmax", "_cache", "diag",
                 "_lazy")

    def __init__(self, K: Any, shift: Any, diag: Any = None):
        be = K._backend
        if getattr(shift, "ndim", None) == 0 and type(shift) is not np.ndarray \
                and not be.lazy and be is not NUMPY:
            # a 0-d tensor of the factors' library (a hyperparameter with autograd)
            if not be.all_finite(shift):
                raise ValueError(f"shift must be finite, got {shift}")
            self.shift = shift
        else:
            self.shift = _check_shift(shift)
        # the factor algebra runs on ab (Dask: the host), the transforms on be
        ab, facs = K._square("shifted")
        self.kron = K
        self._backend = be
        self.shape = K.shape
        self._ns = tuple(int(A.shape[0]) for A in facs)
        dks = None if diag is None else self._check_diag(ab, diag, facs, K)

        def scaled(i: int, A: Any) -> Any:  # S⁻¹ A S⁻¹ with S = diag(sqrt(d_k))
            if dks is None:
                return A
            r = 1.0 / ab.xp.sqrt(dks[i])
            return (A * r[:, None]) * r[None, :]

        lams, Qs = eigh_factors(ab, facs, "shifted()", scaled,
                                None if dks is None else (lambda i, j: dks[i] is dks[j]))
        be_ = be
        be = ab
        self.factor_eigenvalues = lams
        self.diag = dks
        if dks is None:
            self._Qs = Qs
            self._QHs = [be.H(Q) for Q in Qs]
            self._Ps = Qs
        else:
            # K + shift·D = S (K̃ + shift·I) S with S = D^(1/2): the transforms take S⁻¹
            # on both sides, the sampler S
            inv = [1.0 / be.xp.sqrt(dk) for dk in dks]
            self._Qs = [Q * r[:, None] for Q, r in zip(Qs, inv)]
            self._QHs = [be.H(Q) * r[None, :] for Q, r in zip(Qs, inv)]
            self._Ps = [Q * be.xp.sqrt(dk)[:, None] for Q, dk in zip(Qs, dks)]
        cplx = any(be.is_complex(Q.dtype) for Q in Qs) or isinstance(self.shift, complex) or (
            hasattr(self.shift, "dtype") and be.is_complex(self.shift.dtype))
        self.dtype = be.result_type(*Qs) if not cplx else be.complex_of(be.result_type(*Qs))
        self._lazy = be_.lazy
        self._eig = None
        self._checked = False
        self._minmax = None
        self._cache: dict = {}

    def __repr__(self) -> str:
        extra = "" if self.diag is None else ", diag=[...]"
        return f"ShiftedKronProduct(shape={self.shape}, shift={self.shift!r}{extra})"

    @staticmethod
    def _check_diag(be: Any, diag: Any, facs: list, K: Any) -> list:
        if be.name == "numpy" and any(hasattr(dk, "compute") for dk in diag
                                      if not isinstance(dk, np.ndarray)):
            diag = [np.asarray(dk.compute()) if hasattr(dk, "compute") else dk for dk in diag]
        if not isinstance(diag, (list, tuple)) or len(diag) != len(facs):
            raise TypeError(f"diag must be a list of {len(facs)} vectors (one per factor), "
                            f"got {type(diag).__name__}")
        out = []
        for k, (dk, A) in enumerate(zip(diag, facs)):
            dk = be.asarray(dk, f"diag[{k}]", like=K._ref) if be is not NUMPY \
                else np.asarray(dk, dtype=np.float64)
            n = int(A.shape[0])
            host = np.asarray(be.to_host(dk))
            if host.shape != (n,):
                raise ValueError(f"diag[{k}] must have shape ({n},) to match factors[{k}], "
                                 f"got {host.shape}")
            if host.dtype.kind == "c" or not np.all(host > 0) or not np.all(np.isfinite(host)):
                raise ValueError(f"diag[{k}] must hold positive finite numbers")
            out.append(dk)
        return out

    # ----------------------------------------------------------- eigenvalues
    def eigenvalues(self) -> Any:
        """The ``N`` eigenvalues ``λ1[i1]·…·λd[id] + shift`` as a tensor ``(n1, ..., nd)``.

        ``.reshape(-1)`` gives them in ``np.kron`` order.  With ``diag`` they are
        those of the pencil ``(K + shift·D, D)``.  Formed on first use and kept.
        """
        if self._eig is None:
            be = self._backend
            d = len(self._ns)
            acc = None
            last = d - 1 if be is NUMPY and d > 1 else d
            lams = self.factor_eigenvalues
            if self._lazy:  # Dask: a lazy tensor from the host eigenvalues
                lams = [be.from_host(lam) for lam in lams]
            for k, lam in enumerate(lams[:last]):
                shape = [1] * d
                shape[k] = self._ns[k]
                t = be.xp.reshape(lam, tuple(shape))
                acc = t if acc is None else acc * t
            if last < d:
                # NumPy: the one array of N entries written once, shifted in place
                lam = self.factor_eigenvalues[-1]
                out = np.empty(self._ns, dtype=np.result_type(acc, lam, self.shift))
                np.multiply(acc, lam, out=out)
                out += self.shift
                self._eig = out
            else:
                self._eig = acc + self.shift
        return self._eig

    def _range(self) -> tuple[float, float]:
        """``(min, max)`` of the real eigenvalues (nan for complex ones), cached.

        A product of one eigenvalue per factor is multilinear in them, so its
        extremes are among the ``2**d`` products of the factors' extreme
        eigenvalues: no pass over the ``N`` eigenvalues.
        """
        if self._minmax is None:
            be = self._backend
            shift = self.shift if not hasattr(self.shift, "dtype") else np.asarray(
                be.to_host(self.shift))[()]
            ends = []
            for lam in self.factor_eigenvalues:
                h = np.asarray(be.to_host(lam))
                ends.append((float(h.min()), float(h.max())) if h.size else (1.0, 1.0))
            if isinstance(shift, complex) or np.iscomplexobj(shift):
                self._minmax = (np.nan, np.nan)
            else:
                corners = np.array([1.0])
                for lo, hi in ends:
                    corners = np.concatenate([corners * lo, corners * hi])
                self._minmax = (float(corners.min()) + float(shift),
                                float(corners.max()) + float(shift))
        return self._minmax

    def _check_nonsingular(self) -> None:
        if self._checked:
            return
        be = self._backend
        lo, hi = self._range()
        nearest = lo if lo > 0 else (-hi if hi < 0 else None)  # definite: no search
        scale = prod(float(np.abs(np.asarray(be.to_host(lam))).max(initial=0.0))
                     for lam in self.factor_eigenvalues) + (
            abs(self.shift) if not hasattr(self.shift, "dtype")
            else float(np.abs(np.asarray(be.to_host(self.shift)))))
        eps = be.eps(be.real_of(self.dtype))
        tol = len(self._ns) * eps * scale
        if nearest is not None and nearest > tol:
            self._checked = True
            return
        eig = np.asarray(be.to_host(self.eigenvalues()))
        i = int(np.argmin(np.abs(eig)))
        if not abs(eig.flat[i]) > tol:
            idx = tuple(int(v) for v in np.unravel_index(i, self._ns))
            raise np.linalg.LinAlgError(
                f"K + shift·I is singular to working precision: the eigenvalue at "
                f"multi-index {idx} (product of the factor eigenvalues plus shift) is "
                f"{eig.flat[i]:.3g}, zero relative to the scale {scale:.3g}")
        self._checked = True

    # ------------------------------------------------------------ transforms
    def _rhs(self, b: Any, name: str) -> tuple[Any, Any, int]:
        b, be, like = self.kron._rhs(b, name)
        if be is not self._backend:
            raise TypeError(f"{name} must be an array of the factors' library "
                            f"({self._backend.name}), got {type(b).__name__}")
        _check_solve_rhs(self.shape, b)
        dt = be.result_type(b, *self._Qs) if not be.is_complex(self.dtype) else self.dtype
        X, off = as_tensor(be.astype(b, dt), self._ns)
        return X, b, off

    def _modes(self, off: int) -> list[int]:
        return list(range(off, off + len(self._ns)))

    def _eig_like(self, X: Any, off: int) -> Any:
        eig = self.eigenvalues()
        if X.ndim > off + len(self._ns):  # a column axis after the modes
            eig = self._backend.xp.reshape(eig, tuple(eig.shape) + (1,))
        return eig

    # ------------------------------------------------------------ operations
    def _diag_vector(self) -> Any:
        """``kron(d1, ..., dd)`` (ones without ``diag``)."""
        be = self._backend
        if self._lazy:  # host vectors: the Kronecker product on the host, then lazy
            out = np.asarray(self.diag[0])
            for dk in self.diag[1:]:
                out = np.kron(out, np.asarray(dk))
            return be.from_host(out)
        out = self.diag[0]
        for dk in self.diag[1:]:
            out = be.xp.reshape(out[:, None] * dk[None, :], (-1,))
        return out

    def __matmul__(self, x: Any) -> Any:
        if self.diag is None:
            return self.kron @ x + self.shift * x
        dv = self._diag_vector()
        if getattr(x, "ndim", 1) > 1:
            dv = self._backend.xp.reshape(dv, (-1, 1))
        return self.kron @ x + self.shift * (dv * x)

    def matvec(self, x: Any) -> Any:
        """``(K + shift·I) @ x``."""
        return self @ x

    def solve(self, b: Any) -> Any:
        """Solve ``(K + shift·I) x = b``; ``b`` of shape ``(N,)`` or ``(..., N, k)``.

        Raises
        ------
        numpy.linalg.LinAlgError
            ``K + shift·I`` singular to working precision (the message names the
            multi-index of the vanishing eigenvalue).
        """
        self._check_nonsingular()
        be = self._backend
        if be is NUMPY:
            return self._solve_numpy(b)
        if _autodiff.shifted_tracks(self, b):  # implicit backward: no eigh differentiated
            return _autodiff.shifted_solve(self, self._rhs(b, "b")[1])
        return self._solve_plain(b)

    def _solve_plain(self, b: Any) -> Any:
        be = self._backend
        X, b, off = self._rhs(b, "b")
        modes = self._modes(off)
        Y = be.modeprod(X, self._QHs, modes)
        Y = Y / self._eig_like(Y, off)
        X = be.modeprod(Y, self._Qs, modes)
        return as_matrix(X, off, len(self._ns), self.shape[0])

    def _solve_numpy(self, b: Any) -> Any:
        """NumPy: the solvers' transform machinery (plans, work buffers), dividing in place."""
        b = self.kron._rhs(b, "b")[0]
        _check_solve_rhs(self.shape, b)
        eig = self.eigenvalues()
        wd = np.result_type(b.dtype, eig.dtype, *self._Qs, np.float16)
        out_dt = wd
        mats = self._fdm_mats(wd)
        Bt = columns_as_batch(b, self._ns, NUMPY.swapaxes)

        def middle(Y: np.ndarray, nb: int) -> None:
            np.divide(Y, eig, out=Y)

        X = NUMPY.fdm(np.asarray(Bt), mats, None, 0.0, wd, out_dt, False, len(self._ns),
                      middle=middle)
        return batch_as_columns(X, tuple(b.shape), NUMPY.swapaxes)

    def _fdm_mats(self, wd: Any) -> list:
        key = ("fdm", str(wd))
        cache = self._cache
        m = cache.get(key)
        if m is None:
            m = cache[key] = [
                (np.ascontiguousarray(QH, wd), np.ascontiguousarray(Q, wd),
                 NUMPY.transposes(np.ascontiguousarray(QH, wd)),
                 NUMPY.transposes(np.ascontiguousarray(Q, wd)))
                for Q, QH in zip(self._Qs, self._QHs)]
        return m

    def quad(self, b: Any) -> Any:
        """The quadratic form ``bᴴ (K + shift·I)⁻¹ b`` (one transform), per column of ``b``.

        A scalar for ``b`` of shape ``(N,)``, else an array of shape ``(..., k)``.
        """
        self._check_nonsingular()
        X, b, off = self._rhs(b, "b")
        be = self._backend
        xp = be.xp
        if _autodiff.shifted_tracks(self, b):  # through the differentiable solve
            w = xp.conj(b) * self.solve(b)
            w = w if be.is_complex(self.dtype) else xp.real(w)
            return xp.sum(w, axis=0 if b.ndim == 1 else -2)
        Y = be.modeprod(X, self._QHs, self._modes(off))
        w = xp.abs(Y) ** 2 / self._eig_like(Y, off)
        axes = tuple(self._modes(off))
        return xp.sum(w, axis=axes)

    def slogdet(self) -> tuple[Any, Any]:
        """Sign and log of the absolute determinant, as ``np.linalg.slogdet``.

        ``log|det| = Σ log|λ1[i1]·…·λd[id] + shift|`` (in the factors' library,
        differentiable with PyTorch).
        """
        be = self._backend
        eig = self.eigenvalues()
        logabs = self._logabsdet()
        lo, hi = self._range()
        if lo > 0 or hi < 0:  # definite: the sign without a pass over the eigenvalues
            sign = 1.0 if lo > 0 or self.shape[0] % 2 == 0 else -1.0
            return sign, (np.float64(logabs) if be is NUMPY else logabs)
        host = np.asarray(be.to_host(eig))
        if be.is_complex(eig.dtype):
            phase = float(np.sum(np.angle(host)))
            sign: Any = complex(np.cos(phase), np.sin(phase)) if np.all(host != 0) else 0.0
        else:
            sign = 0.0 if np.any(host == 0) else (
                -1.0 if np.count_nonzero(host < 0) % 2 else 1.0)
        if be is NUMPY:
            logabs = np.float64(logabs) if sign != 0 else np.float64(-np.inf)
        return sign, logabs

    def _logabsdet(self) -> Any:
        """``log|det|`` in the factors' library (PyTorch: the implicit backward)."""
        if _autodiff.shifted_tracks(self):
            return _autodiff.shifted_logdet(self)
        return self._logabsdet_plain()

    def _logabsdet_plain(self) -> Any:
        xp = self._backend.xp
        return xp.sum(xp.log(xp.abs(self.eigenvalues()))) + self._logdet_diag()

    def _logdet_diag(self) -> Any:
        """``log det(D1 ⊗ ... ⊗ Dd) = Σ_k (N / n_k) Σ log d_k`` (0 without ``diag``)."""
        if self.diag is None:
            return 0.0
        xp = self._backend.xp
        N = self.shape[0]
        total = 0.0
        for dk, n in zip(self.diag, self._ns):
            total = total + (N // n) * xp.sum(xp.log(dk))
        return total

    def logdet(self) -> Any:
        """``log det(K + shift·I)`` of a positive definite operator.

        Raises
        ------
        numpy.linalg.LinAlgError
            Some eigenvalue is not positive (the operator is not positive definite).
        """
        be = self._backend
        eig = self.eigenvalues()
        if be.is_complex(eig.dtype) or not self._range()[0] > 0:
            host = np.asarray(be.to_host(eig))
            i = int(np.argmin(host.real))
            idx = tuple(int(v) for v in np.unravel_index(i, self._ns))
            raise np.linalg.LinAlgError(
                f"K + shift·I is not positive definite: its eigenvalue at multi-index "
                f"{idx} is {host.flat[i]:.3g}")
        if be is not NUMPY:
            return self._logabsdet()  # all eigenvalues positive
        flat = eig.reshape(-1)
        step = 1 << 15  # in cache-sized blocks: no temporary of N entries
        return np.float64(sum(float(np.log(flat[i:i + step]).sum())
                              for i in range(0, flat.shape[0], step))
                          + float(self._logdet_diag()))

    def sample(self, rng: Any = None, size: Any = None) -> Any:
        """Draws from ``N(0, K + shift·I)``, without forming it.

        ``x = Q (Λ + shift)^(1/2) z`` with ``z`` standard normal.

        Parameters
        ----------
        rng : numpy.random.Generator or seed, optional
            The source of ``z`` (drawn with NumPy, then moved to the factors'
            library).
        size : int or tuple of int, optional
            Leading shape of the draws: the result has shape ``size + (N,)``.

        Raises
        ------
        numpy.linalg.LinAlgError
            ``K + shift·I`` is not positive semidefinite.
        """
        be = self._backend
        eig = self.eigenvalues()
        host = np.asarray(be.to_host(eig))
        if be.is_complex(eig.dtype) or np.any(host < 0):
            raise np.linalg.LinAlgError(
                "sample() needs a positive semidefinite K + shift·I, but it has negative "
                f"eigenvalues (the smallest is {host.real.min():.3g})")
        rng = np.random.default_rng(rng)
        lead = () if size is None else ((size,) if np.ndim(size) == 0 else tuple(size))
        real = be.real_of(self.dtype)
        z = rng.standard_normal(lead + self._ns).astype(be.numpy_dtype(real))
        Z = z if be is NUMPY else be.from_host(z, like=self.kron._ref)
        xp = be.xp
        Y = Z * xp.sqrt(eig)
        X = be.modeprod(Y, self._Ps, list(range(len(lead), len(lead) + len(self._ns))))
        return xp.reshape(X, lead + (self.shape[0],))

    def solve_plus_diagonal(self, d: Any, b: Any, *, rtol: float = 1e-8,
                            maxiter: int | None = None) -> tuple[Any, int]:
        """Solve ``(K + shift·I + diag(d)) x = b`` by preconditioned conjugate gradients.

        The preconditioner is this operator's exact solve with the median of
        ``d`` added to the shift, so a diagonal close to a constant converges in
        a few iterations.  A Gaussian process with unobserved grid cells is the
        case ``d = 0`` on observed cells and a large value (say ``1e6`` times
        the signal variance) on the others.

        Parameters
        ----------
        d : (N,) array_like
            The diagonal, ``d + shift >= 0`` (``K + shift·I + diag(d)`` positive
            definite).
        b : (N,) array_like
            Right-hand side.
        rtol : float, optional
            Stop when ``‖b - A x‖ <= rtol ‖b‖``.
        maxiter : int, optional
            At most this many iterations (default ``max(50, N)``; the
            iterations stop at ``rtol``, usually after about as many as the
            entries of ``d`` far from its median).

        Returns
        -------
        x : array
        iterations : int

        Warns
        -----
        AccuracyWarning
            Not converged within ``maxiter`` iterations (the relative residual
            reached is in the message).

        Examples
        --------
        >>> import numpy as np
        >>> import kronsolve as ks
        >>> x = np.linspace(0, 1, 6)
        >>> C = np.exp(-(x[:, None] - x[None, :]) ** 2 / 0.1)
        >>> S = ks.kron(C, C).shifted(0.01)
        >>> d = np.full(36, 0.0)
        >>> d[::5] = 1e4                          # unobserved cells: huge noise
        >>> y = np.ones(36)
        >>> sol, its = S.solve_plus_diagonal(d, y)
        >>> A = np.kron(C, C) + np.diag(0.01 + d)
        >>> bool(np.allclose(A @ sol, y, atol=1e-6))
        True
        """
        import warnings

        from ._warnings import AccuracyWarning

        be = self._backend
        if be.lazy:
            raise NotImplementedError(
                "solve_plus_diagonal iterates (each step needs a computed residual): pass "
                "NumPy arrays, not Dask ones")
        xp = be.xp
        N = self.shape[0]
        dv = self.kron._rhs(d, "d")[0]
        if tuple(dv.shape) != (N,):
            raise ValueError(f"d must have shape ({N},), got {tuple(dv.shape)}")
        host_d = np.asarray(be.to_host(dv))
        if not np.all(np.isfinite(host_d)):
            raise ValueError("d must be finite")
        shift_h = self.shift if not hasattr(self.shift, "dtype") else float(
            np.asarray(be.to_host(self.shift)))
        if np.iscomplexobj(host_d) or np.any(host_d.real + np.real(shift_h) < 0):
            raise ValueError("d must be real with d + shift >= 0 (a positive definite system)")
        X, bb, off = self._rhs(b, "b")
        if bb.ndim != 1:
            raise ValueError(f"b must have shape ({N},), got {tuple(bb.shape)}")
        if not (rtol > 0):
            raise ValueError(f"rtol must be positive, got {rtol}")
        maxiter = max(50, N) if maxiter is None else int(maxiter)
        P = ShiftedKronProduct(self.kron, self.shift + float(np.median(host_d)))
        bvec = be.astype(bb, X.dtype)

        def A(v: Any) -> Any:
            return self @ v + dv * v

        x = P.solve(bvec)
        r = bvec - A(x)
        z = P.solve(r)
        p = z
        rz = xp.sum(xp.conj(r) * z)
        nb = float(np.linalg.norm(np.asarray(be.to_host(bvec))))
        it = 0
        res = float(np.linalg.norm(np.asarray(be.to_host(r))))
        while res > rtol * nb and it < maxiter:
            Ap = A(p)
            alpha = rz / xp.sum(xp.conj(p) * Ap)
            x = x + alpha * p
            r = r - alpha * Ap
            res = float(np.linalg.norm(np.asarray(be.to_host(r))))
            it += 1
            if res <= rtol * nb:
                break
            z = P.solve(r)
            rz_new = xp.sum(xp.conj(r) * z)
            p = z + (rz_new / rz) * p
            rz = rz_new
        if res > rtol * nb:
            warnings.warn(
                f"solve_plus_diagonal did not converge in {maxiter} iterations: relative "
                f"residual {res / nb:.3g} > rtol = {rtol:g}", AccuracyWarning, stacklevel=2)
        return x, it

    def diagonal(self) -> Any:
        """Main diagonal, ``diag(K) + shift`` (``+ shift·kron(d1, ..., dd)`` with ``diag``)."""
        if self.diag is None:
            return self.kron.diagonal() + self.shift
        return self.kron.diagonal() + self.shift * self._diag_vector()

    def trace(self) -> Any:
        """Trace, ``tr(K) + N·shift`` (``+ shift·Π_k Σ d_k`` with ``diag``)."""
        if self.diag is None:
            return self.kron.trace() + self.shape[0] * self.shift
        t = 1.0
        for dk in self.diag:
            t = t * self._backend.xp.sum(dk)
        return self.kron.trace() + self.shift * t

    def toarray(self, *, max_bytes: int | None = None) -> Any:
        """The dense matrix (for small sizes; see :meth:`KronProduct.toarray`)."""
        D = self.kron.toarray(max_bytes=max_bytes)
        be = self._backend
        E = be.eye(self.shape[0], D.dtype, like=D)
        if self.diag is not None:
            E = E * self._diag_vector()[None, :]
        return D + self.shift * E
