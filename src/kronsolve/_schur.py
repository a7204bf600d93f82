"""The triangular (Schur) route of the Kronecker-sum solvers: generalized Bartels–Stewart.

With real Schur forms ``A_k = Q_k T_k Q_kᵀ`` (``Q_k`` orthogonal, ``T_k`` upper
quasi-triangular: 1 x 1 blocks for real eigenvalues, 2 x 2 blocks for complex
pairs; complex data use the complex Schur form, ``T_k`` triangular) the
equation ``X ×₁ A1 + ... + X ×_d Ad + shift·X = B`` becomes, after the
forward transform ``C = B ×₁ Q1ᵀ ... ×_d Qdᵀ``, the quasi-triangular tensor
equation ``Y ×₁ T1 + ... + Y ×_d Td + shift·Y = C``, solved here by
back-substitution; ``X = Y ×₁ Q1 ... ×_d Qd``.  Orthogonal transforms and a
back-substitution give a small residual, ``‖B − op(X)‖ = O(eps (Σ‖A_k‖ +
|shift|) ‖X‖)``, for defective and non-normal factors alike.

The back-substitution is recursive and blocked (level 3), as in Chen and
Kressner: split a triangular mode (the leading one still longer than a leaf,
never inside a 2 x 2 block); the
trailing part is an independent smaller equation; its solution enters the
leading part's right-hand side through one matrix product with the
off-diagonal block of that factor; then solve the leading part.  Leaves (every
triangular mode at most ``_LEAF`` long) go to a compiled kernel that walks the
blocks in reverse lexicographic order and solves a small dense system (at most
``2**d`` unknowns, Gaussian elimination with partial pivoting) per block.

Factors that were diagonalized (symmetric ones, by ``eigh``) take part as
diagonal modes, and leading batch dimensions as zero modes.

References
----------
M. Chen and D. Kressner, "Recursive blocked algorithms for linear systems with
Kronecker product structure", Numer. Algorithms 84 (2020), 1199–1216.
R. H. Bartels and G. W. Stewart, "Solution of the matrix equation AX + XB = C",
Comm. ACM 15 (1972), 820–826.
N. J. Higham, "Accuracy and Stability of Numerical Algorithms", 2nd ed., SIAM
(2002), §16.2 (the residual bound of Bartels–Stewart).
"""

from __future__ import annotations

import threading
from math import prod
from typing import Any

import numpy as np

from ._backends.numpy import _cores, _executor, _single_blas_thread
from ._kernels import _built_once, _compile_cached, _import_numba

__all__: list[str] = []

# Triangular modes are split until they are at most this long; the kernel then
# solves the leaf (a Python-level recursion step costs more than a small leaf).
_LEAF = 16

# Blocks of at least this many entries split two modes at once and solve the two
# independent quadrants in two threads (compiled leaves and BLAS release the GIL).
_PARALLEL_MIN = 1 << 16

# Mode kinds of the packed description
_DIAG, _TRI, _QUASI, _ZERO = 0, 1, 2, 3

_state: dict[str, Any] = {"kernel": None}
_lock = threading.Lock()


def _block_at(k, p, kinds, sub, lo, start, size):
    """Set ``start[k], size[k]`` to the diagonal block of mode ``k`` that ends at row ``p``."""
    if kinds[k] == 2 and p >= 1 and sub[k, lo[k] + p - 1] != 0:
        start[k] = p - 1
        size[k] = 2
    else:
        start[k] = p
        size[k] = 1


def _row_block(q, klast, sub, last, ll):
    """The first row of the last mode's diagonal block that ends at row ``q``."""
    if klast == 2 and q >= 1 and sub[last, ll + q - 1] != 0:
        return q - 1
    return q


def _solve2(m00, m01, m10, m11, v0, v1):
    """``[[m00, m01], [m10, m11]] x = v`` by elimination with partial pivoting."""
    if abs(m10) > abs(m00):
        m00, m01, m10, m11 = m10, m11, m00, m01
        v0, v1 = v1, v0
    f = m10 / m00
    x1 = (v1 - f * v0) / (m11 - f * m01)
    return (v0 - m01 * x1) / m00, x1


def _gepp(S, v, m):
    """Solve ``S[:m, :m] z = v[:m]`` in place (Gaussian elimination, partial pivoting)."""
    for c in range(m):
        piv = c
        big = abs(S[c, c])
        for r in range(c + 1, m):
            if abs(S[r, c]) > big:
                big = abs(S[r, c])
                piv = r
        if piv != c:
            for j in range(m):
                tmp = S[c, j]
                S[c, j] = S[piv, j]
                S[piv, j] = tmp
            tmp = v[c]
            v[c] = v[piv]
            v[piv] = tmp
        for r in range(c + 1, m):
            f = S[r, c] / S[c, c]
            if f != 0:
                for j in range(c + 1, m):
                    S[r, j] -= f * S[c, j]
                v[r] -= f * v[c]
    for c in range(m - 1, -1, -1):
        acc = v[c]
        for j in range(c + 1, m):
            acc -= S[c, j] * v[j]
        v[c] = acc / S[c, c]


def _coupled_fibers(Y, gb, T, dg, MG, S, v, sub, shift, G, L, ll, last, klast):  # noqa: C901
    """The fibers of one group, coupled by outer 2 x 2 blocks (``G`` of them)."""
    # fibers coupled by outer 2 x 2 blocks: per diagonal block of the last
    # mode, the rows' sums over the solved entries, then one small system
    # S = MG ⊗ I_t + I_G ⊗ T_block (at most 2**d unknowns)
    q = L - 1
    while q >= 0:
        q0 = _row_block(q, klast, sub, last, ll)
        t2 = q - q0 + 1
        m = G * t2
        for g in range(G):
            y = Y[gb[last, g]:gb[last, g] + L]
            for a in range(t2):
                acc = 0.0 * shift
                if klast == 1 or klast == 2:
                    row = T[last, ll + q0 + a]
                    for j in range(L - 1, q, -1):
                        acc += row[ll + j] * y[j]
                v[g * t2 + a] = y[q0 + a] - acc
        for r in range(m):
            for c in range(m):
                S[r, c] = 0.0
        for g in range(G):
            for h in range(G):
                for a in range(t2):
                    S[g * t2 + a, h * t2 + a] += MG[g, h]
            for a in range(t2):
                for c in range(t2):
                    if a == c:
                        if klast != 3:
                            S[g * t2 + a, g * t2 + a] += dg[last, ll + q0 + a]
                    else:
                        S[g * t2 + a, g * t2 + c] += T[last, ll + q0 + a, ll + q0 + c]
        # literal sizes for the common cases: the compiler unrolls them
        if m == 2:
            _gepp(S, v, 2)
        elif m == 4:
            _gepp(S, v, 4)
        elif m == 8:
            _gepp(S, v, 8)
        else:
            _gepp(S, v, m)
        for g in range(G):
            for a in range(t2):
                Y[gb[last, g] + q0 + a] = v[g * t2 + a]
        q = q0 - 1


def _leaf_solve(Y, off, shape, strides, T, lo, kinds, dg, sub, shift):  # noqa: C901
    """Solve the quasi-triangular tensor equation of one leaf in place.

    The leaf is ``Y[off + Σ i_k strides[k]]`` for ``0 <= i_k < shape[k]``; its
    factor blocks are ``T[k, lo[k]:, lo[k]:]`` (``dg[k, lo[k]:]`` their
    diagonals; ``sub[k, i] != 0`` when rows ``i, i+1`` form a 2 x 2 block).
    The last mode is contiguous (stride 1).

    The diagonal blocks of the outer modes are visited depth first in reverse
    order.  On entering a block of mode ``k`` the solved slabs of that mode are
    subtracted from the block's slab (whole contiguous fibers at a time); at the
    innermost level the group of fibers coupled by 2 x 2 blocks is solved by
    back-substitution along the last mode, one small dense system (Gaussian
    elimination with partial pivoting) per diagonal block.  Leaves are solved
    in two threads at once: all workspace is the call's own.
    """
    d = shape.shape[0]
    last = d - 1
    L = shape[last]
    ll = lo[last]
    klast = kinds[last]
    start = np.zeros(d, np.int64)
    size = np.ones(d, np.int64)
    gmax = 1 << last
    gb = np.zeros((d, gmax), np.int64)  # gb[k, c]: offset of combination c of modes < k
    ge = np.zeros((d, gmax, d), np.int64)  # its position within each mode's block
    gn = np.ones(d, np.int64)
    MG = np.zeros((gmax, gmax), Y.dtype)
    S = np.zeros((2 * gmax, 2 * gmax), Y.dtype)
    v = np.zeros(2 * gmax, Y.dtype)
    rec = np.empty(L, Y.dtype)
    # offsets of the fibers of the trailing modes k+1 .. last-1, per level k
    F = np.ones(d, np.int64)
    for k in range(last - 2, -1, -1):
        F[k] = F[k + 1] * shape[k + 1]
    foff = np.zeros((d, max(F[0], 1)), np.int64)
    for k in range(last - 2, -1, -1):
        n1 = shape[k + 1]
        f1 = F[k + 1]
        for i in range(n1):
            for r in range(f1):
                foff[k, i * f1 + r] = i * strides[k + 1] + foff[k + 1, r]
    gb[0, 0] = off
    k = 0
    _block_at(0, shape[0] - 1, kinds, sub, lo, start, size)
    while True:
        # enter the block of mode k: its combinations with the blocks of modes < k
        g0 = gn[k]
        sk = size[k]
        for c in range(g0):
            for a in range(sk):
                cc = c * sk + a
                gb[k + 1, cc] = gb[k, c] + (start[k] + a) * strides[k]
                for j in range(last):
                    ge[k + 1, cc, j] = ge[k, c, j]
                ge[k + 1, cc, k] = a
        gn[k + 1] = g0 * sk
        # subtract the solved slabs of mode k
        if (kinds[k] == 1 or kinds[k] == 2) and start[k] + sk < shape[k]:
            fk = F[k]
            sk_stride = strides[k]
            for cc in range(gn[k + 1]):
                i = start[k] + ge[k + 1, cc, k]
                dst = gb[k + 1, cc]
                for jj in range(start[k] + sk, shape[k]):
                    t = T[k, lo[k] + i, lo[k] + jj]
                    if t != 0:
                        src = dst + (jj - i) * sk_stride
                        for f in range(fk):
                            o = foff[k, f]
                            # 1-D views: the compiler vectorizes these loops
                            yd = Y[dst + o:dst + o + L]
                            ys = Y[src + o:src + o + L]
                            for l in range(L):
                                yd[l] -= t * ys[l]
        if k < last - 1:
            k += 1
            _block_at(k, shape[k] - 1, kinds, sub, lo, start, size)
            continue
        # the innermost level: G fibers coupled by the outer 2 x 2 blocks
        G = gn[last]
        if G == 1:
            acc = shift
            for kk in range(last):
                if kinds[kk] != 3:
                    acc += dg[kk, lo[kk] + start[kk]]
            MG[0, 0] = acc
            # reciprocals of the diagonal, computed together (divisions pipeline;
            # one at a time they would wait for each other)
            if klast == 3:
                for q in range(L):
                    rec[q] = 1.0 / acc
            else:
                for q in range(L):
                    rec[q] = 1.0 / (acc + dg[last, ll + q])
        for g in range(G if G > 1 else 0):
            for h in range(G):
                acc = shift if g == h else 0.0 * shift
                for kk in range(last):
                    if kinds[kk] == 3:
                        continue
                    same = True
                    for j in range(last):
                        if j != kk and ge[last, g, j] != ge[last, h, j]:
                            same = False
                    if not same:
                        continue
                    rg = lo[kk] + start[kk] + ge[last, g, kk]
                    rh = lo[kk] + start[kk] + ge[last, h, kk]
                    if rg == rh:
                        acc += dg[kk, rg]
                    elif kinds[kk] == 2:
                        acc += T[kk, rg, rh]
                MG[g, h] = acc
        if G == 1 and (klast == 0 or klast == 3):
            b0 = gb[last, 0]
            y = Y[b0:b0 + L]
            for q in range(L):
                y[q] = y[q] * rec[q]
        elif G == 1:
            # one fiber: row by row, each row's sum over the solved entries taken
            # in an order that leaves the newest entry last (a short dependency
            # chain from one row to the next)
            b0 = gb[last, 0]
            y = Y[b0:b0 + L]
            sg = MG[0, 0]
            q = L - 1
            while q >= 0:
                q0 = _row_block(q, klast, sub, last, ll)
                if q0 == q:
                    row = T[last, ll + q]
                    acc = 0.0 * shift
                    for j in range(L - 1, q, -1):
                        acc += row[ll + j] * y[j]
                    y[q] = (y[q] - acc) * rec[q]
                else:
                    r0 = T[last, ll + q0]
                    r1 = T[last, ll + q]
                    a0 = 0.0 * shift
                    a1 = 0.0 * shift
                    for j in range(L - 1, q, -1):
                        a0 += r0[ll + j] * y[j]
                        a1 += r1[ll + j] * y[j]
                    m00 = sg + r0[ll + q0]
                    m01 = r0[ll + q]
                    m10 = r1[ll + q0]
                    m11 = sg + r1[ll + q]
                    v0 = y[q0] - a0
                    v1 = y[q] - a1
                    y[q0], y[q] = _solve2(m00, m01, m10, m11, v0, v1)
                q = q0 - 1
        elif G == 2 and (klast == 1 or klast == 2):
            # two fibers coupled by one outer 2 x 2 block (the common case):
            # their sums taken together, the 2- or 4-unknown systems written out
            y0 = Y[gb[last, 0]:gb[last, 0] + L]
            y1 = Y[gb[last, 1]:gb[last, 1] + L]
            g00, g01, g10, g11 = MG[0, 0], MG[0, 1], MG[1, 0], MG[1, 1]
            q = L - 1
            while q >= 0:
                q0 = _row_block(q, klast, sub, last, ll)
                if q0 == q:
                    row = T[last, ll + q]
                    a0 = 0.0 * shift
                    a1 = 0.0 * shift
                    for j in range(L - 1, q, -1):
                        t = row[ll + j]
                        a0 += t * y0[j]
                        a1 += t * y1[j]
                    dq = row[ll + q]
                    m00 = g00 + dq
                    m01 = g01
                    m10 = g10
                    m11 = g11 + dq
                    v0 = y0[q] - a0
                    v1 = y1[q] - a1
                    y0[q], y1[q] = _solve2(m00, m01, m10, m11, v0, v1)
                else:
                    r0 = T[last, ll + q0]
                    r1 = T[last, ll + q]
                    a00 = 0.0 * shift
                    a01 = 0.0 * shift
                    a10 = 0.0 * shift
                    a11 = 0.0 * shift
                    for j in range(L - 1, q, -1):
                        u0 = y0[j]
                        u1 = y1[j]
                        a00 += r0[ll + j] * u0
                        a01 += r1[ll + j] * u0
                        a10 += r0[ll + j] * u1
                        a11 += r1[ll + j] * u1
                    t00 = r0[ll + q0]
                    t01 = r0[ll + q]
                    t10 = r1[ll + q0]
                    t11 = r1[ll + q]
                    # S = MG ⊗ I2 + I2 ⊗ T_block, unknowns (fiber, row) = 2 g + a
                    S[0, 0] = g00 + t00
                    S[0, 1] = t01
                    S[0, 2] = g01
                    S[0, 3] = 0.0
                    S[1, 0] = t10
                    S[1, 1] = g00 + t11
                    S[1, 2] = 0.0
                    S[1, 3] = g01
                    S[2, 0] = g10
                    S[2, 1] = 0.0
                    S[2, 2] = g11 + t00
                    S[2, 3] = t01
                    S[3, 0] = 0.0
                    S[3, 1] = g10
                    S[3, 2] = t10
                    S[3, 3] = g11 + t11
                    v[0] = y0[q0] - a00
                    v[1] = y0[q] - a01
                    v[2] = y1[q0] - a10
                    v[3] = y1[q] - a11
                    _gepp(S, v, 4)
                    y0[q0] = v[0]
                    y0[q] = v[1]
                    y1[q0] = v[2]
                    y1[q] = v[3]
                q = q0 - 1
        elif G == 4:
            # two outer modes in 2 x 2 blocks at once: the same code with G a
            # constant the compiler unrolls
            _coupled_fibers(Y, gb, T, dg, MG, S, v, sub, shift, 4, L, ll, last, klast)
        else:
            _coupled_fibers(Y, gb, T, dg, MG, S, v, sub, shift, G, L, ll, last, klast)
        # the next block, depth first in reverse order
        while k >= 0:
            if start[k] > 0:
                _block_at(k, start[k] - 1, kinds, sub, lo, start, size)
                break
            k -= 1
        if k < 0:
            return


_block_at_py = _block_at
_gepp_py = _gepp
_coupled_fibers_py = _coupled_fibers
_row_block_py = _row_block
_solve2_py = _solve2


def _build() -> Any:
    numba = _import_numba()
    if numba is None:
        return _leaf_solve

    def compile_(cache: bool) -> Any:
        global _block_at, _gepp, _coupled_fibers, _row_block, _solve2
        inline = {"cache": cache, "inline": "always"}
        _block_at = numba.njit(**inline)(_block_at_py)
        _row_block = numba.njit(**inline)(_row_block_py)
        # IEEE division (inf, nan) rather than ZeroDivisionError
        _gepp = numba.njit(error_model="numpy", **inline)(_gepp_py)
        _solve2 = numba.njit(error_model="numpy", **inline)(_solve2_py)
        _coupled_fibers = numba.njit(error_model="numpy", **inline)(_coupled_fibers_py)
        return numba.njit(cache=cache, nogil=True, boundscheck=False,
                          error_model="numpy")(_leaf_solve)

    return _compile_cached(compile_)


def _get_kernel() -> Any:
    """The compiled leaf kernel, or the Python function where Numba is unavailable."""
    return _built_once(_state, _lock, _build)


# ------------------------------------------------------------- factorization


class Triangular:
    """The packed quasi-triangular factors of one solve, in one dtype.

    ``kinds[k]``: diagonal (``eigh`` modes), triangular, quasi-triangular (with
    2 x 2 blocks) or zero (a batch mode).  Mode 0 is always the batch mode.
    """

    __slots__ = ("T", "dg", "sub", "kinds", "Ts", "subs")

    def __init__(self, blocks: list, dtype: np.dtype):
        # blocks[k]: ("diag", lam) or ("tri", T, sub) of the d factor modes
        ns = [b[1].shape[0] for b in blocks]
        tri = [k for k, b in enumerate(blocks) if b[0] == "tri"]
        nT = max([ns[k] for k in tri], default=1)
        D = len(blocks) + 1
        self.T = np.zeros((D, nT, nT), dtype)
        self.dg = np.zeros((D, max(ns + [1])), dtype)
        self.sub = np.zeros((D, nT), np.uint8)
        self.kinds = np.full(D, _ZERO, np.int64)
        self.Ts: list = [None] * D
        self.subs: list = [None] * D
        for k, b in enumerate(blocks):
            n = ns[k]
            if b[0] == "diag":
                self.kinds[k + 1] = _DIAG
                self.dg[k + 1, :n] = b[1]
                continue
            T, sub = b[1], b[2]
            self.kinds[k + 1] = _QUASI if sub.any() else _TRI
            self.T[k + 1, :n, :n] = T
            self.dg[k + 1, :n] = np.diagonal(T)
            self.sub[k + 1, :n] = sub
            self.Ts[k + 1] = self.T[k + 1, :n, :n]
            self.subs[k + 1] = sub


def trisolve(Y: np.ndarray, b: int, tri: Triangular, shift: Any) -> np.ndarray:
    """Overwrite ``Y`` (C-contiguous, ``b`` batch axes) with the solution of the
    quasi-triangular equation ``Σ_k Y ×_k T_k + shift·Y = Y``."""
    d = Y.ndim - b
    ns = Y.shape[b:]
    nb = prod(Y.shape[:b])
    Yv = Y.reshape((nb,) + tuple(ns))
    D = d + 1
    kinds = tri.kinds
    tri_modes = [k for k in range(1, D) if kinds[k] in (_TRI, _QUASI)]
    strides = np.array([s // Y.itemsize for s in Yv.strides], np.int64)
    flat = Yv.reshape(-1)
    dt = Y.dtype
    shift = dt.type(shift)
    kern = _get_kernel()
    T, dg, sub = tri.T, tri.dg, tri.sub

    def leaf(lo: list, hi: list) -> None:
        off = sum(lo[k] * int(strides[k]) for k in range(D))
        shape = np.array([hi[k] - lo[k] for k in range(D)], np.int64)
        kern(flat, off, shape, strides, T, np.array(lo, np.int64), kinds, dg, sub, shift)

    # views for the updates ``dst -= src ×_k T12``: the axes after k merged (one
    # GEMM per leading index) where the block spans them whole, else axis k
    # moved next to the last (a stack of GEMMs)
    merged = [Yv.reshape(Yv.shape[:k + 1] + (prod(Yv.shape[k + 1:]),)) for k in range(D)]
    perms = [tuple(j for j in range(D - 1) if j != k) + (k, D - 1) for k in range(D - 1)]
    moved = [Yv.transpose(p) for p in perms]
    full = Yv.shape

    def update(lo: list, hi: list, k: int, h: int, T12: np.ndarray) -> None:
        if k == D - 1:
            head = tuple(slice(a, z) for a, z in zip(lo[:-1], hi[:-1]))
            dst = Yv[head + (slice(lo[k], h),)]
            dst -= np.matmul(Yv[head + (slice(h, hi[k]),)], T12.T)
            return
        if all(lo[j] == 0 and hi[j] == full[j] for j in range(k + 1, D)):
            head = tuple(slice(a, z) for a, z in zip(lo[:k], hi[:k]))
            M = merged[k]
            dst = M[head + (slice(lo[k], h),)]
            dst -= np.matmul(T12, M[head + (slice(h, hi[k]),)])
            return
        p = perms[k]
        head = tuple(slice(lo[j], hi[j]) for j in p[:-2])
        last = slice(lo[D - 1], hi[D - 1])
        P = moved[k]
        dst = P[head + (slice(lo[k], h), last)]
        dst -= np.matmul(T12, P[head + (slice(h, hi[k]), last)])

    # a 2 x 2 block cannot be split; splits moved past one may leave halves a row
    # or two longer than _LEAF, which should not split again into tiny leaves
    leaf_max = max(_LEAF, 2) + 2 if _LEAF >= 8 else max(_LEAF, 2)

    def split(k: int, lo: list, hi: list) -> int:
        h = lo[k] + (hi[k] - lo[k]) // 2
        if kinds[k] == _QUASI and tri.subs[k][h - 1]:
            h += 1  # rows h-1, h form a 2 x 2 block: keep them together
        return h

    def rec(lo: list, hi: list, par: bool) -> None:
        # the leading modes first: the trailing ones stay whole for longer, and
        # the updates merge them into fewer, larger GEMMs
        cand = [(hi[k] - lo[k], k) for k in tri_modes if hi[k] - lo[k] > leaf_max]
        if not cand:
            leaf(lo, hi)
            return
        k = cand[0][1]
        if par and len(cand) > 1 and prod(z - a for a, z in zip(lo, hi)) >= _PARALLEL_MIN:
            # split two modes: the off-diagonal quadrants are independent once the
            # trailing one is solved, and are solved side by side
            j = cand[1][1]
            hk, hj = split(k, lo, hi), split(j, lo, hi)
            q22 = list(lo)
            q22[k], q22[j] = hk, hj
            rec(q22, hi, True)
            lo12, lo21 = list(lo), list(lo)
            lo12[j] = hj
            lo21[k] = hk
            update(lo12, hi, k, hk, tri.Ts[k][lo[k]:hk, hk:hi[k]])
            update(lo21, hi, j, hj, tri.Ts[j][lo[j]:hj, hj:hi[j]])
            hi12, hi21 = list(hi), list(hi)
            hi12[k] = hk
            hi21[j] = hj
            with _single_blas_thread():
                other = _executor().submit(rec, lo12, hi12, False)
                rec(lo21, hi21, False)
                other.result()
            hi11 = list(hi12)
            hi11[j] = hj
            update(lo, hi12, j, hj, tri.Ts[j][lo[j]:hj, hj:hi[j]])
            update(lo, hi21, k, hk, tri.Ts[k][lo[k]:hk, hk:hi[k]])
            rec(lo, hi11, True)
            return
        h = split(k, lo, hi)
        lo2 = list(lo)
        lo2[k] = h
        rec(lo2, hi, par)
        hi1 = list(hi)
        hi1[k] = h
        update(lo, hi, k, h, tri.Ts[k][lo[k]:h, h:hi[k]])
        rec(lo, hi1, par)

    if nb and prod(ns):
        par = _cores() > 1 and _get_kernel() is not _leaf_solve
        rec([0] * D, [nb] + list(ns), par)
    return Y


def schur(A: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(T, Q, sub, lam)`` with ``A = Q T Qᴴ``: the real Schur form of real ``A``
    (2 x 2 blocks marked in ``sub``), the complex one of complex ``A``; ``lam``
    the eigenvalues in the order of ``T``'s diagonal."""
    from scipy.linalg import schur as _schur

    cplx = A.dtype.kind == "c"
    T, Q = _schur(A, output="complex" if cplx else "real", check_finite=False)
    n = T.shape[0]
    sub = np.zeros(n, np.uint8)
    if not cplx and n > 1:
        s = np.diagonal(T, -1) != 0
        sub[:-1] = s
        # LAPACK leaves exact zeros below the blocks
        T = np.triu(T, -1)
    else:
        T = np.triu(T)
    lam = np.diagonal(T).astype(np.result_type(T.dtype, np.complex64) if sub.any()
                                else T.dtype)
    for i in np.flatnonzero(sub):
        blk = T[i:i + 2, i:i + 2]
        s = float(np.abs(blk).max())  # scaled: no overflow or underflow in b·c
        a, b, c, e = (blk / s).ravel()
        mid = (a + e) / 2
        disc = np.sqrt(complex(((a - e) / 2) ** 2 + b * c))
        lam[i], lam[i + 1] = s * (mid + disc), s * (mid - disc)
    return T, Q, sub, lam
