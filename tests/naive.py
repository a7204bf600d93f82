"""Naive reference implementations: slow, obviously correct, used by the tests.

One reference per public function of kronsolve, in the manner of stumpy's
``tests/naive.py``: plain NumPy on dense copies, ``np.kron`` and index loops,
no kronsolve imports.  The tests compare the library with these (and the seed
notebook's formulas, kept here verbatim, with the loops).

Conventions (README, "Conventions"): ``np.kron`` ordering, C-order vectors of
tensors, 0-based modes with leading batch axes, ``vec`` stacking columns where
the Van Loan–Pitsianis rearrangement is concerned.
"""

from __future__ import annotations

import itertools
from functools import reduce

import numpy as np

# ----------------------------------------------------------------- helpers


def dense(A):
    """A dense NumPy copy of an array (or of a scipy.sparse matrix)."""
    return np.asarray(A.toarray()) if hasattr(A, "toarray") else np.asarray(A)


# -------------------------------------------- kron / KronProduct / KronProductSum


def kron(*factors):
    """``np.kron(np.kron(A1, A2), ...)``: the dense matrix of ``ks.kron(A1, ..., Ad)``."""
    return reduce(np.kron, [dense(F) for F in factors])


def kron_matvec(factors, x):
    """``kron(*factors) @ x``, the dense product (``ks.kron_matvec`` and ``K @ x``)."""
    return kron(*factors) @ np.asarray(x)


def kron_rmatvec(factors, y):
    """``y @ kron(*factors)``, the dense product from the left (``y @ K``)."""
    return np.asarray(y) @ kron(*factors)


def kron_solve(factors, b):
    """``np.linalg.solve`` of the dense Kronecker product (``KronProduct.solve``)."""
    return np.linalg.solve(kron(*factors), np.asarray(b))


def kron_inv(factors):
    """``np.linalg.inv`` of the dense Kronecker product (``KronProduct.inv``)."""
    return np.linalg.inv(kron(*factors))


def kron_slogdet(factors):
    """``np.linalg.slogdet`` of the dense Kronecker product (``KronProduct.slogdet``)."""
    return np.linalg.slogdet(kron(*factors))


def kron_det(factors):
    """``np.linalg.det`` of the dense Kronecker product (``KronProduct.det``)."""
    return np.linalg.det(kron(*factors))


def kron_trace(factors):
    """``np.trace`` of the dense Kronecker product (``KronProduct.trace``)."""
    return np.trace(kron(*factors))


def kron_diagonal(factors):
    """``np.diagonal`` of the dense Kronecker product (``KronProduct.diagonal``)."""
    return np.diagonal(kron(*factors))


def kron_norm(factors, ord=None):
    """``np.linalg.norm(D, ord)`` of the dense Kronecker product (``KronProduct.norm``)."""
    return np.linalg.norm(kron(*factors), ord)


def kron_eigvals(factors):
    """``np.linalg.eigvals`` of the dense Kronecker product, in no particular order."""
    return np.linalg.eigvals(kron(*factors))


def shifted_kron(factors, shift):
    """``np.kron(...) + shift·I``, dense: the reference of ``ks.kron(...).shifted(shift)``."""
    K = kron(*factors)
    return K + shift * np.eye(K.shape[0])


def kron_product_sum(terms):
    """``Σ_t kron(*terms[t])``: the dense matrix of a ``KronProductSum``."""
    return sum(kron(*factors) for factors in terms)


# ----------------------------------------------------------- mode products


def mode_product(X, A, mode, transpose=False):
    """``X ×_mode A``: ``Y[..., i, ...] = Σ_j A[i, j] X[..., j, ...]`` (``A.T`` if transpose)."""
    A = dense(A).T if transpose else dense(A)
    Y = np.tensordot(A, np.asarray(X), axes=(1, mode))  # the new axis comes first
    return np.moveaxis(Y, 0, mode)


def multi_mode_product(X, mats, modes=None, transpose=False):
    """``X ×_modes[0] mats[0] ×_modes[1] mats[1] …``; by default the last ``len(mats)`` axes."""
    X = np.asarray(X)
    if modes is None:
        modes = range(X.ndim - len(mats), X.ndim)
    for A, mode in zip(mats, modes):
        X = mode_product(X, A, mode % X.ndim, transpose)
    return X


# -------------------------------------------------------- kronsum / KronSum


def batched_multi_mode_product(X, mats, transpose=False):
    """Per-item factors by an explicit loop over the broadcast batch, each item dense."""
    d = len(mats)
    X = np.asarray(X)
    batch = np.broadcast_shapes(X.shape[:X.ndim - d], *[np.shape(A)[:-2] for A in mats])
    out = None
    for idx in np.ndindex(*batch):
        xi = np.broadcast_to(X, batch + X.shape[X.ndim - d:])[idx]
        fs = [np.broadcast_to(A, batch + np.shape(A)[-2:])[idx] for A in mats]
        fs = [F.T if transpose else F for F in fs]
        yi = (kron(*fs) @ xi.ravel()).reshape([F.shape[0] for F in fs])
        if out is None:
            out = np.empty(batch + yi.shape, dtype=yi.dtype)
        out[idx] = yi
    return out


def kronsum(*mats):
    """``A1⊗I⊗…⊗I + I⊗A2⊗…⊗I + … + I⊗…⊗Ad`` with np.kron: the dense ``ks.kronsum``."""
    return kronsum_with_masses(mats)


def kronsum_with_masses(mats, masses=None, shift=0.0):
    """``Σ_k M1⊗…⊗K_k⊗…⊗Md + shift·(M1⊗…⊗Md)``, dense; a mass ``None`` is the identity."""
    mats = [dense(A) for A in mats]
    Ms = [np.eye(A.shape[0]) if masses is None or masses[k] is None else dense(masses[k])
          for k, A in enumerate(mats)]
    total = shift * kron(*Ms) if shift != 0 else 0
    for k in range(len(mats)):
        factors = list(Ms)
        factors[k] = mats[k]
        total = total + kron(*factors)
    return total


def apply_kronsum(X, mats, masses=None, shift=0.0):
    """``Σ_k X ×_k K_k ×_{j≠k} M_j + shift·(X ×_1 M1 … ×_d Md)`` on the last d axes, in double.

    The tensor form of ``kronsum_with_masses(mats, masses, shift) @ X.ravel()``
    (leading axes of ``X`` are batches), for residuals of problems too large to
    form densely.
    """
    d = len(mats)
    arrays = [X, *mats, *(m for m in (masses or []) if m is not None)]
    wide = np.complex128 if np.iscomplexobj(shift) or any(
        np.iscomplexobj(dense(a)) for a in arrays) else np.float64
    X = np.asarray(X, dtype=wide)
    axes = list(range(X.ndim - d, X.ndim))
    Ms = [None if masses is None or masses[k] is None else dense(masses[k]).astype(wide)
          for k in range(d)]

    def with_masses(Y, skip):
        for j in range(d):
            if j != skip and Ms[j] is not None:
                Y = mode_product(Y, Ms[j], axes[j])
        return Y

    out = shift * with_masses(X, None) if shift != 0 else np.zeros_like(X)
    for k in range(d):
        out = out + with_masses(mode_product(X, dense(mats[k]).astype(wide), axes[k]), k)
    return out


def kronsum_slogdet(mats, masses=None, shift=0.0):
    """``np.linalg.slogdet`` of the dense (generalized, shifted) Kronecker sum."""
    return np.linalg.slogdet(kronsum_with_masses(mats, masses, shift))


def kronsum_expm(mats, t):
    """``scipy.linalg.expm(t · kronsum)``, dense."""
    import scipy.linalg

    return scipy.linalg.expm(t * kronsum(*mats))


def kronsum_funm(mats, f):
    """``f`` of the dense Hermitian Kronecker sum, through its ``eigh``."""
    w, V = np.linalg.eigh(kronsum(*mats))
    return (V * f(w)) @ V.conj().T


def kronsum_eigvals(*mats):
    """``np.linalg.eigvals`` of the dense Kronecker sum, in no particular order."""
    return np.linalg.eigvals(kronsum(*mats))


# ------------------------------------------------------------------ solvers


def solve_kronsum(B, mats, masses=None, shift=0.0):
    """Dense solve of ``(Σ_k M1⊗…⊗K_k⊗…⊗Md + shift·M1⊗…⊗Md) x = b`` for each problem in B.

    ``B`` has shape ``(..., n1, ..., nd)`` (leading batch axes) or ``(N,)`` with
    ``N = n1 * ... * nd``; the result has the shape of ``B``.  Also the reference
    of ``KronSumSolver(mats, masses=masses).solve(B, shift)`` and of
    ``kronsum(*mats).solve(b, shift=shift)``.
    """
    B = np.asarray(B)
    D = kronsum_with_masses(mats, masses, shift)
    N = D.shape[0]
    rows = B.reshape(-1, N)  # one right-hand side (a C-order vector) per row
    X = np.linalg.solve(D, rows.T).T
    return X.reshape(B.shape)


def solve_sylvester3d(B, A, A2=None, A3=None, shift=0.0):
    """Dense solve of ``(A ⊕ A2 ⊕ A3 + shift·I) x = b``; A2 and A3 default to A."""
    A2 = A if A2 is None else A2
    A3 = A if A3 is None else A3
    return solve_kronsum(B, [A, A2, A3], shift=shift)


def solve_sylvester(a, b, q):
    """``a @ x + x @ b = q`` as ``(a ⊗ I + I ⊗ bᵀ) x.ravel() = q.ravel()``, solved densely."""
    a, b, q = dense(a), dense(b), np.asarray(q)
    m, n = a.shape[0], b.shape[0]
    D = np.kron(a, np.eye(n)) + np.kron(np.eye(m), b.T)
    return np.linalg.solve(D, q.ravel()).reshape(m, n)


# ----------------------------------------------------------------- shuffles


def perfect_shuffle(p, r):
    """Index array with item ``i * p + j`` equal to ``j * r + i`` (``0 <= i < r, 0 <= j < p``)."""
    out = np.empty(p * r, dtype=np.intp)
    for i in range(r):
        for j in range(p):
            out[i * p + j] = j * r + i
    return out


def seed_perfect_shuffle(p, r):
    """The seed notebook's formula (cell 132), verbatim."""
    return np.array(list(itertools.chain(*(range(i, p * r, r) for i in range(r)))))


def commutation_matrix(m, n):
    """Dense ``K_{m,n}`` with ``K @ A.flatten('F') == A.T.flatten('F')`` for A of shape (m, n)."""
    K = np.zeros((m * n, m * n))
    for i in range(m):
        for j in range(n):
            # A[i, j] sits at i + j*m in vec(A) and at j + i*n in vec(A.T)
            K[j + i * n, i + j * m] = 1.0
    return K


def shuffle(x, p, r, axis=0):
    """Entry ``k`` along ``axis`` of the result is entry ``perfect_shuffle(p, r)[k]`` of x."""
    x = np.asarray(x)
    axis = axis % x.ndim
    P = perfect_shuffle(p, r)
    out = np.empty_like(x)
    for k in range(p * r):
        index_out = (slice(None),) * axis + (k,)
        index_in = (slice(None),) * axis + (P[k],)
        out[index_out] = x[index_in]
    return out


def shuffle2(M, rows, cols):
    """``out[a, b] = M[perfect_shuffle(*rows)[a], perfect_shuffle(*cols)[b]]``, by loops."""
    M = np.asarray(M)
    P, Q = perfect_shuffle(*rows), perfect_shuffle(*cols)
    out = np.empty_like(M)
    for a in range(M.shape[0]):
        for b in range(M.shape[1]):
            out[a, b] = M[P[a], Q[b]]
    return out


# -------------------------------------------------------------- rearrange


def rearrange(M, first, second):
    """Row ``i + j*m1`` is vec (column-major) of block ``(i, j)`` of size ``m2 x n2`` of M."""
    M = np.asarray(M)
    (m1, n1), (m2, n2) = first, second
    R = np.empty((m1 * n1, m2 * n2), dtype=M.dtype)
    for i in range(m1):
        for j in range(n1):
            for k in range(m2):
                for l in range(n2):
                    R[i + j * m1, k + l * m2] = M[i * m2 + k, j * n2 + l]
    return R


def unrearrange(R, first, second):
    """The matrix M with ``rearrange(M, first, second) == R``, by the same loops."""
    R = np.asarray(R)
    (m1, n1), (m2, n2) = first, second
    M = np.empty((m1 * m2, n1 * n2), dtype=R.dtype)
    for i in range(m1):
        for j in range(n1):
            for k in range(m2):
                for l in range(n2):
                    M[i * m2 + k, j * n2 + l] = R[i + j * m1, k + l * m2]
    return M


def seed_RM_1(M, m1, n1, m2, n2):
    """The seed notebook's first rearrangement formula (cell 135), verbatim."""
    return M.reshape(m1, n1, m2 * n2, order='C').transpose(0, 2, 1).reshape(m1, m2, n1, n2, order='C').transpose(0, 1, 3, 2).reshape(m1 * n1, m2 * n2, order='F')  # noqa: E501


def seed_RM_2(M, m1, n1, m2, n2):
    """The seed notebook's second rearrangement formula (cell 136), verbatim."""
    return M.reshape(m2, m1, n2, n1, order='F').transpose(0, 2, 1, 3).reshape(m2 * n2, m1, n1, order='F').\
        transpose(1, 2, 0).reshape(m1 * n1, m2 * n2, order='F')  # noqa: E501


# ------------------------------------------------------- kpsvd / nearest_kron


def kpsvd(A, first, second, rank=None, tol=None):
    """``(s, B, C)`` with ``A = Σ_i s_i B_i ⊗ C_i``, from the full SVD of the looped rearrangement.

    ``vec(B_i)`` is the i-th left singular vector, ``vec(C_i)`` the i-th row of
    ``Vh``; terms with ``s_i <= tol * s_0`` are dropped (at least one kept;
    default tol ``max(m1*n1, m2*n2) * eps``), and each ``B_i`` is scaled by a
    unit phase so that its entry of largest modulus is real and positive.
    """
    A = dense(A)
    if A.dtype.kind not in "fc":
        A = A.astype(np.float64)
    (m1, n1), (m2, n2) = first, second
    U, s, Vh = np.linalg.svd(rearrange(A, first, second), full_matrices=False)
    if rank is not None:
        U, s, Vh = U[:, :rank], s[:rank], Vh[:rank]
    if tol is None:
        tol = max(m1 * n1, m2 * n2) * np.finfo(A.dtype).eps
    keep = max(1, int(np.sum(s > tol * s[0]))) if s[0] > 0 else 1
    B = np.empty((keep, m1, n1), dtype=U.dtype)
    C = np.empty((keep, m2, n2), dtype=Vh.dtype)
    for i in range(keep):
        u, v = U[:, i], Vh[i]
        piv = u[np.argmax(np.abs(u))]
        phase = piv / abs(piv) if piv != 0 else 1.0
        B[i] = (u * np.conj(phase)).reshape((m1, n1), order="F")
        C[i] = (v * phase).reshape((m2, n2), order="F")
    return s[:keep], B, C


def nearest_kron(A, first, second):
    """``(B, C)`` minimizing ``‖A - B ⊗ C‖_F``, from the leading term of kpsvd, balanced."""
    s, B, C = kpsvd(A, first, second, rank=1, tol=0)
    return np.sqrt(s[0]) * B[0], np.sqrt(s[0]) * C[0]
