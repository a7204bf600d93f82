"""Fused Kronecker-product kernels for small factors (compiled with Numba).

A product ``(A_1 ⊗ … ⊗ A_d ⊗ I_k) X`` made of ``d`` GEMMs reads and writes the
whole tensor once per mode, and each GEMM has an inner dimension of only
``n_j``: for small factors the BLAS runs far below its rate.  The kernels here
apply several modes to a *block* of the tensor that stays in cache, one mode
after another, so that the tensor crosses memory once or twice whatever ``d``:

* the modes are split in two groups at ``s``; pass one applies the trailing
  modes ``s, …, d-1`` to each slab ``X[l, …, c0:c1]`` (``l`` a leading index,
  ``c0:c1`` a tile of the right-hand sides), pass two the leading modes to
  each tile of columns of the result;
* when the whole tensor of one item fits in a block there is one pass
  (``s = 0``), and items with factors of their own (the spectral-element
  pattern) are each one block;
* inside a block each mode is a sum of ``n_j`` scaled rows,
  ``Y[p, i, q, :] = Σ_j A[i, j] X[p, j, q, :]`` with the inner loop over the
  contiguous axis, which LLVM vectorizes; four terms are summed per sweep so
  that each sweep loads four rows for one store.  A mode with no contiguous
  axis left (the last mode of one vector) runs as ``Y[p, :] = Σ_j X[p, j] Aᵀ[j, :]``.

Blocks are independent, so the passes split them between threads (each with
its own scratch).  The planning (which split, which tiles, how many threads,
and whether the fused kernel beats the GEMM schemes at all) is in
:func:`fused_plan`; the rules are measured ones and live only there.

Nothing is compiled at import: the kernel is built on first use and cached on
disk (``cache=True``); where Numba is missing or its cache cannot be written
and compilation fails, callers keep the GEMM schemes.
"""

from __future__ import annotations

import os
import threading
from math import prod
from typing import Any, NamedTuple

import numpy as np

from ._kernels import _built_once, _compile_cached, _import_numba

__all__ = ["warm_up"]

_state: dict[str, Any] = {"kernel": None}
# (dtype name, kernel): True, False (failed) or "compiling"
_compiled: dict[tuple, Any] = {}
_lock = threading.Lock()

# A block (bytes) that stays in a core's L2 cache with its two scratch arrays.
_BLOCK_BYTES = 1 << 18
# The narrowest tile of columns worth a pass (a vector register's worth)...
_MIN_TILE = 8
# ... and the narrowest worth reading at a stride from memory: shorter runs
# defeat the hardware prefetcher, and a second pass is cheaper.
_MIN_RUN = 64
# Factors up to this order: beyond it the GEMM schemes run near the BLAS rate.
_MAX_ORDER = 64
# Products of at least this many flops split their blocks between threads
# (below it, starting a thread costs more than it saves).
_THREADS_MIN_FLOPS = 4e5
# meta layout: per mode 4 entries (n, m, offset of A, offset of Aᵀ) in F
_PER_MODE = 4


# ------------------------------------------------------------------ kernels
# Written in plain Python so that they run (slowly) without Numba; the
# builder compiles them, inlining the helpers into the entry points.


def _sum1_py(dst, do, V, vo, vs, S, so, ss, n, L):
    """``dst[do:do+L] = Σ_j S[so + j·ss] · V[vo + j·vs : … + L]``: one row.

    Four terms per sweep: four loads and one store per four multiply-adds.
    """
    # unsigned indices (no negative-index wraparound code in the loops)
    do, vo, vs, so, ss, n, L = _u(do), _u(vo), _u(vs), _u(so), _u(ss), _u(n), _u(L)
    for c in range(L):
        dst[do + c] = 0
    j = _u(0)
    while j + _u(4) <= n:
        a0 = S[so + j * ss]
        a1 = S[so + (j + _u(1)) * ss]
        a2 = S[so + (j + _u(2)) * ss]
        a3 = S[so + (j + _u(3)) * ss]
        v0 = vo + j * vs
        v1 = v0 + vs
        v2 = v1 + vs
        v3 = v2 + vs
        for c in range(L):
            dst[do + c] += a0 * V[v0 + c] + a1 * V[v1 + c] + a2 * V[v2 + c] + a3 * V[v3 + c]
        j += _u(4)
    while j < n:
        a0 = S[so + j * ss]
        v0 = vo + j * vs
        for c in range(L):
            dst[do + c] += a0 * V[v0 + c]
        j += _u(1)


def _sums_py(dst, do, dstep, V, vo, vs, S, so, sstep, ss, n, L, rows):
    """``rows`` rows of :func:`_sum1_py` (the edges of the 4 × 8 tiles)."""
    for r in range(rows):
        _sum1(dst, do + r * dstep, V, vo, vs, S, so + r * sstep, ss, n, L)


def _load8_py(V, o):
    """Eight consecutive entries as a tuple (values, not memory: they live in registers)."""
    return (V[o], V[o + _u(1)], V[o + _u(2)], V[o + _u(3)],
            V[o + _u(4)], V[o + _u(5)], V[o + _u(6)], V[o + _u(7)])


def _axpy8_py(c, a, x):
    """``c + a·x`` lane by lane, on tuples of eight."""
    return (c[0] + a * x[0], c[1] + a * x[1], c[2] + a * x[2], c[3] + a * x[3],
            c[4] + a * x[4], c[5] + a * x[5], c[6] + a * x[6], c[7] + a * x[7])


def _scale8_py(a, x):
    return (a * x[0], a * x[1], a * x[2], a * x[3], a * x[4], a * x[5], a * x[6], a * x[7])


def _store8_py(dst, o, c):
    dst[o] = c[0]
    dst[o + _u(1)] = c[1]
    dst[o + _u(2)] = c[2]
    dst[o + _u(3)] = c[3]
    dst[o + _u(4)] = c[4]
    dst[o + _u(5)] = c[5]
    dst[o + _u(6)] = c[6]
    dst[o + _u(7)] = c[7]


def _tile_py(dst, do, dstep, V, vo, vs, S, so, sstep, ss, n):
    """A 4 × 8 tile of :func:`_sums_py` (``n ≥ 1``), its 32 sums held in registers.

    Written lane by lane (tuples of eight, inlined) for LLVM's SLP vectorizer,
    which packs each row's eight sums into vector registers: one load of ``V``
    per eight lanes and one broadcast of ``S`` per row, per term.
    """
    do, dstep, vo, vs, ss, s0 = _u(do), _u(dstep), _u(vo), _u(vs), _u(ss), _u(so)
    s1 = s0 + _u(sstep)
    s2 = s1 + _u(sstep)
    s3 = s2 + _u(sstep)
    x = _load8(V, vo)
    r0 = _scale8(S[s0], x)
    r1 = _scale8(S[s1], x)
    r2 = _scale8(S[s2], x)
    r3 = _scale8(S[s3], x)
    for j in range(_u(1), _u(n)):
        x = _load8(V, vo + j * vs)
        t = j * ss
        r0 = _axpy8(r0, S[s0 + t], x)
        r1 = _axpy8(r1, S[s1 + t], x)
        r2 = _axpy8(r2, S[s2 + t], x)
        r3 = _axpy8(r3, S[s3 + t], x)
    _store8(dst, do, r0)
    _store8(dst, do + dstep, r1)
    _store8(dst, do + _u(2) * dstep, r2)
    _store8(dst, do + _u(3) * dstep, r3)


def _tiled_py(dst, do, dstep, V, vo, vs, S, so, sstep, ss, n, L, rows, vouter):
    """:func:`_sums_py` in 4 × 8 tiles, the edges by the row sums.

    ``vouter``: the tiles go column by column (each ``n × 8`` slice of ``V``
    read once, ``S`` again for each), else row by row (``S`` read once): the
    operand read again is the small one, the factor, which stays in L1.
    Each helper has one call site, so that all of them inline into one
    function without doubling its compile time.
    """
    r4 = rows - rows % 4 if n > 0 else 0
    c8 = L - L % 8 if n > 0 else 0
    nr = r4 // 4
    nc = c8 // 8
    for t in range(nr * nc):
        if vouter:
            c = (t // nr) * 8
            r = (t - (t // nr) * nr) * 4
        else:
            r = (t // nc) * 4
            c = (t - (t // nc) * nc) * 8
        _tile(dst, do + r * dstep + c, dstep, V, vo + c, vs, S, so + r * sstep,
              sstep, ss, n)
    # the edges: the columns past c8 of the first r4 rows, then the rows past r4
    for e in range(2):
        if e == 0:
            eo, ev, es, eL, erows = do + c8, vo + c8, so, L - c8, r4
        else:
            eo, ev, es, eL, erows = do + r4 * dstep, vo, so + r4 * sstep, L, rows - r4
        if eL > 0 and erows > 0:
            _sums(dst, eo, dstep, V, ev, vs, S, es, sstep, ss, n, eL, erows)


def _mode_py(dst, do, drs, src, so, srs, F, fa, fat, P, n, m, Q, w):
    """One mode of a block: ``(P, n, Q, w) -> (P, m, Q, w)``, rows ``w`` contiguous.

    ``srs``/``drs`` are the strides of a ``w``-row (the tile's row stride);
    ``fa``/``fat`` the offsets of ``A`` and ``Aᵀ`` in ``F``.
    """
    if srs == w and drs == w:  # both contiguous: one row of Q·w
        w = Q * w
        srs = w
        drs = w
        Q = 1
    cols = w == 1 and srs == 1 and drs == 1
    count = 1 if cols else P * Q
    for t in range(count):
        if cols:  # no contiguous axis: Y[p, :] = Σ_j X[p, j] Aᵀ[j, :]
            V, vo, vs, S, sb, db, dstep, L, rows = F, fat, m, src, so, do, m, m, P
        else:  # Y[p, i, q, :] = Σ_j A[i, j] X[p, j, q, :]
            p = t // Q
            q = t - p * Q
            V, vo, vs, S, sb = src, so + (p * n * Q + q) * srs, Q * srs, F, fa
            db, dstep, L, rows = do + (p * m * Q + q) * drs, Q * drs, w, m
        _tiled(dst, db, dstep, V, vo, vs, S, sb, n, 1, n, L, rows, not cols and vs == L)


def _block_py(dst, do, drs, src, so, srs, s1, s2, F, meta, g, fshift, w):
    """All ``g`` modes of one block, the last mode first, ping-ponging in ``s1``/``s2``."""
    inp, io, irs = src, so, srs
    flip = False
    Q = 1  # the modes after ``a`` are done: output sizes; those before are not
    for a in range(g - 1, -1, -1):
        n = meta[_PER_MODE * a]
        m = meta[_PER_MODE * a + 1]
        P = 1
        for b in range(a):
            P *= meta[_PER_MODE * b]
        if a == 0:
            out, oo, ors = dst, do, drs
        else:
            out, oo, ors = (s2 if flip else s1), 0, w
        _mode(out, oo, ors, inp, io, irs, F, meta[_PER_MODE * a + 2] + fshift,
              meta[_PER_MODE * a + 3] + fshift, P, n, m, Q, w)
        inp, io, irs = out, 0, w
        flip = not flip
        Q *= m


def _pass_py(dst, src, s1, s2, F, meta, g, outer, C, tile, fstride, b0, b1):
    """Blocks ``b0 .. b1-1`` of one pass (block ``b`` = outer index, column tile).

    The pass applies the ``g`` modes of ``meta`` to ``src`` of shape
    ``(outer, n_1…n_g, C)`` giving ``dst`` of shape ``(outer, m_1…m_g, C)``;
    item ``l`` reads its factors at ``F[l·fstride + …]``.
    """
    nin = 1
    nout = 1
    for a in range(g):
        nin *= meta[_PER_MODE * a]
        nout *= meta[_PER_MODE * a + 1]
    ntiles = (C + tile - 1) // tile
    for b in range(b0, b1):
        lo = b // ntiles
        t = b - lo * ntiles
        c0 = t * tile
        w = min(tile, C - c0)
        _block(dst, lo * nout * C + c0, C, src, lo * nin * C + c0, C, s1, s2,
               F, meta, g, lo * fstride, w)


def _items_py(dst, src, s1, s2, s3, F, metaf, metab, g, lam, N, fstride, lstride, b0, b1):
    """Items ``b0 .. b1-1`` of a per-item solve: transform, divide, transform back.

    Item ``b`` is ``src[b·N : (b+1)·N]`` (a tensor of ``g`` modes), its factors
    at ``F[b·fstride + …]`` (forward ``metaf``, backward ``metab``) and its
    eigenvalues at ``lam[b·lstride + …]`` (mode after mode, the shift added to
    the first mode's); the transformed item stays in ``s3`` between the two
    transforms.
    """
    idx = np.zeros(max(g, 1), dtype=np.int64)
    nl = metaf[_PER_MODE * (g - 1)]
    for b in range(b0, b1):
        for phase in range(2):  # one call site of _block: it inlines once
            if phase == 0:
                out, oo, inp, io, meta = s3, 0, src, b * N, metaf
            else:
                # s3 /= Σ_k lam_k[i_k]: a prefix sum per row of the last mode
                lb = b * lstride
                for k in range(g):
                    idx[k] = 0
                t = 0
                while t < N:
                    ps = lam[lb] * 0
                    off = lb
                    for k in range(g - 1):
                        ps += lam[off + idx[k]]
                        off += metaf[_PER_MODE * k]
                    for i in range(nl):
                        s3[t + i] = s3[t + i] / (ps + lam[off + i])
                    t += nl
                    k = g - 2
                    while k >= 0:
                        idx[k] += 1
                        if idx[k] < metaf[_PER_MODE * k]:
                            break
                        idx[k] = 0
                        k -= 1
                out, oo, inp, io, meta = dst, b * N, s3, 0, metab
            _block(out, oo, 1, inp, io, 1, s1, s2, F, meta, g, b * fstride, 1)


_u = int  # numba.uint64 once compiled: no negative-index wraparound in the loops
_sum1 = _sum1_py
_sums = _sums_py
_load8 = _load8_py
_axpy8 = _axpy8_py
_scale8 = _scale8_py
_store8 = _store8_py
_tile = _tile_py
_tiled = _tiled_py
_mode = _mode_py
_block = _block_py


def _build(cache: bool | None = None) -> Any:
    """The kernels, with Numba's disk cache where a folder is writable (or as ``cache``)."""
    numba = _import_numba()
    if numba is None:
        return False

    def compile_(cache: bool) -> Any:
        global _sum1, _sums, _tile, _tiled, _mode, _block, _u
        global _load8, _axpy8, _scale8, _store8
        _u = numba.uint64
        # contraction into FMAs only: no reassociation, results stay those of
        # the written order to roundoff
        opts = {"cache": cache, "boundscheck": False, "fastmath": {"contract"}}
        _sum1 = numba.njit(inline="always", **opts)(_sum1_py)
        inline = {"inline": "always", **opts}
        _sums = numba.njit(**inline)(_sums_py)
        _load8 = numba.njit(**inline)(_load8_py)
        _axpy8 = numba.njit(**inline)(_axpy8_py)
        _scale8 = numba.njit(**inline)(_scale8_py)
        _store8 = numba.njit(**inline)(_store8_py)
        _tile = numba.njit(**inline)(_tile_py)
        _tiled = numba.njit(**inline)(_tiled_py)
        _mode = numba.njit(**inline)(_mode_py)
        _block = numba.njit(**inline)(_block_py)
        return (numba.njit(nogil=True, **opts)(_pass_py),
                numba.njit(nogil=True, error_model="numpy", **opts)(_items_py))

    return _compile_cached(compile_) if cache is None else compile_(cache)


def _get_kernel() -> Any:
    """The kernels ``(pass, items)`` (compiled per dtype on first use), or ``False``."""
    return _built_once(_state, _lock, _build)


_DTYPES = ("float32", "float64", "complex64", "complex128")


def _compile_for(dtype: np.dtype, kind: int) -> None:
    """Compile (or load from Numba's disk cache) kernel ``kind`` (0 pass, 1 items).

    The compilation runs with LLVM's SLP vectorizer on (Numba leaves it off):
    it is what packs :func:`_tile_py`'s lanes into vector registers, worth
    about 5× in cache.  ``numba.config.SLP_VECTORIZE`` is read per compilation,
    so it is switched on only for this one (under the lock).
    """
    import numba

    kern = _get_kernel()[kind]
    arr = numba.types.Array(numba.from_dtype(dtype), 1, "C")
    ints = numba.types.Array(numba.int64, 1, "C")
    i64 = numba.int64
    if kind == 0:
        sig = (arr,) * 5 + (ints,) + (i64,) * 7
    else:
        sig = (arr,) * 6 + (ints, ints, i64, arr) + (i64,) * 5
    with _lock:
        before = numba.config.SLP_VECTORIZE
        numba.config.SLP_VECTORIZE = True
        try:
            try:
                kern.compile(sig)
            except OSError:  # the cache folder turned unwritable: compile without it
                _compiled.clear()
                _state["kernel"] = _build(cache=False)
                _state["kernel"][kind].compile(sig)
        finally:
            numba.config.SLP_VECTORIZE = before
        _compiled[dtype.name, kind] = True


def _join_compilations() -> None:
    """At exit, let a compilation under way finish, so that its cache file is written."""
    for t in threading.enumerate():
        if t.name == "kronsolve-compile":
            t.join()


_MODES = ("auto", "sync", "off")


def _mode_from_env() -> str:
    """``KRONSOLVE_FUSED`` (read once): ``"auto"`` (default) compiles the kernels in
    the background, ``"sync"`` on first use, ``"off"`` never uses them."""
    raw = os.environ.get("KRONSOLVE_FUSED", "auto")
    mode = raw.strip().lower() or "auto"
    if mode not in _MODES:
        raise ValueError(f"the environment variable KRONSOLVE_FUSED must be one of {_MODES}, "
                         f"got {raw!r}")
    _state["mode"] = mode
    return mode


def ready(dtype: Any, wait: bool = False, kind: int = 0) -> bool:
    """Whether kernel ``kind`` (0: products, 1: per-item solves) for ``dtype`` can run now.

    If it is not compiled yet, it is compiled in a background thread (callers
    keep the GEMM schemes meanwhile), or now with ``wait=True`` or
    ``KRONSOLVE_FUSED=sync``.  False where Numba is unavailable, with
    ``KRONSOLVE_FUSED=off``, or for dtypes other than float and complex ones.
    """
    dtype = np.dtype(dtype)
    key = (dtype.name, kind)
    state = _compiled.get(key)
    if state is True:
        return True
    mode = _state.get("mode") or _mode_from_env()
    if state is False or mode == "off" or dtype.name not in _DTYPES or not _get_kernel():
        return False
    if wait or mode == "sync":
        try:
            _compile_for(dtype, kind)
        except Exception:  # the GEMM schemes stay in use
            _compiled[key] = False
            return False
        return True
    if state is None:
        _compiled[key] = "compiling"

        def work() -> None:
            try:
                _compile_for(dtype, kind)
            except Exception:  # the GEMM schemes stay in use
                _compiled[key] = False

        if not _state.get("atexit"):
            import atexit

            atexit.register(_join_compilations)
            _state["atexit"] = True
        threading.Thread(target=work, name="kronsolve-compile", daemon=True).start()
    return False


def warm_up(dtypes: Any = ("float64",), solves: bool = True) -> bool:
    """Compile the fused small-factor kernels now (or load them from Numba's cache).

    Products and solves with small factors (up to order 64) run faster through
    kernels that kronsolve compiles with Numba on first use, in a background
    thread, while the first calls take the BLAS route; the compiled code is
    cached on disk, so this happens once per machine and version (about 5–10 s
    per kernel and dtype, then 0.2–0.3 s to load in a new process).  Call this
    at start-up to have them from the first call on, for instance in a
    benchmark or before timing.  The environment variable ``KRONSOLVE_FUSED``
    sets the policy: ``auto`` (the default, as above), ``sync`` (compile on
    first use, the caller waiting: one path from the first call, results
    reproducible bit for bit within a run) or ``off`` (never the kernels).

    Parameters
    ----------
    dtypes : sequence of dtypes, optional
        The dtypes to prepare (float32, float64, complex64, complex128).
    solves : bool, optional
        Also prepare the kernel of solves with per-item factors.

    Returns
    -------
    bool
        Whether the kernels are available (False where Numba is not).

    Examples
    --------
    >>> import kronsolve as ks
    >>> ks.warm_up()  # doctest: +SKIP
    True
    """
    ok = True
    for dt in dtypes:
        for kind in ((0, 1) if solves else (0,)):
            ok = ready(dt, wait=True, kind=kind) and ok
    return ok


# ------------------------------------------------------------------ planning


class Pass(NamedTuple):
    """One pass: ``g`` modes (``meta``) over ``(outer, n…, C)`` in tiles of ``tile`` columns."""

    meta: np.ndarray
    g: int
    outer: int
    C: int
    tile: int
    blocks: int
    scratch: int  # elements of each of the two scratch arrays


class FusedPlan(NamedTuple):
    """How the fused kernel runs a product: one or two passes."""

    passes: tuple
    tmp: int  # elements of the intermediate between the passes (0: one pass)
    size_out: int
    flops: float
    shape_out: tuple = ()  # the result's shape (for the caller)


def _meta(ns: tuple, ms: tuple, offs: tuple) -> np.ndarray:
    meta = np.empty(_PER_MODE * len(ns), dtype=np.int64)
    for a, (n, m, o) in enumerate(zip(ns, ms, offs)):
        meta[_PER_MODE * a:_PER_MODE * (a + 1)] = (n, m, o, o + n * m)
    return meta


def _tile_width(span: int, C: int, itemsize: int, least: int) -> int:
    """Columns per block for a group of modes of ``span`` rows, or 0 if under ``least``."""
    limit = _BLOCK_BYTES // itemsize
    if span * C <= limit:
        return C
    t = (limit // span) // _MIN_TILE * _MIN_TILE
    return t if t >= min(least, C) and t > 0 else 0


def _scratch(ns: tuple, ms: tuple, tile: int) -> int:
    """The largest intermediate of a block (modes applied last to first)."""
    big = 0
    for a in range(len(ns) - 1, 0, -1):  # after mode a: ns[:a] untouched, ms[a:] done
        big = max(big, prod(ns[:a]) * prod(ms[a:]))
    return big * tile


def _pass(ns: tuple, ms: tuple, offs: tuple, outer: int, C: int, tile: int) -> Pass:
    return Pass(_meta(ns, ms, offs), len(ns), outer, C, tile,
                outer * -(-C // tile), _scratch(ns, ms, tile))


def _wins(ns: tuple, ms: tuple, C: int) -> bool:
    """Whether the fused kernel beats the GEMM schemes (measured: README, Performance).

    It does for whole products of at most 4096 elements (where the GEMM
    schemes pay a BLAS call and its overhead per mode) and for many
    right-hand sides with four or more factors of order 8 or less; elsewhere
    the BLAS runs closer to its rate than this kernel.
    """
    N = max(prod(ns), prod(ms))
    if C == 1:
        return N <= 4096
    return C >= 256 and len(ns) >= 4 and max(ns + ms) <= 8


def fused_plan(outer: int, ns: tuple, ms: tuple, C: int, itemsize: int,
               force: bool = False) -> FusedPlan | None:
    """The fused kernel's plan for ``(outer, n_1…n_d, C) -> (outer, m_1…m_d, C)``, or None.

    None where the GEMM schemes are the better choice (unless ``force``) or
    where no split keeps the blocks in cache.
    """
    d = len(ns)
    if d == 0 or 0 in ns or 0 in ms or outer * C == 0 or max(ns + ms) > _MAX_ORDER:
        return None
    span = [max(n, m) for n, m in zip(ns, ms)]
    offs = tuple(int(x) for x in np.cumsum((0,) + tuple(2 * n * m for n, m in zip(ns, ms)))[:-1])
    flops = 2.0 * outer * C * sum(prod(ms[:a]) * m * prod(ns[a:]) for a, m in enumerate(ms))
    size_out = outer * prod(ms) * C
    if not force and not _wins(ns, ms, C):
        return None
    t = _tile_width(prod(span), C, itemsize, _MIN_RUN)
    if t:
        return FusedPlan((_pass(ns, ms, offs, outer, C, t),), 0, size_out, flops)
    for s in range(1, d):  # trailing modes s.. in pass one, leading ones in pass two
        t1 = _tile_width(prod(span[s:]), C, itemsize, _MIN_RUN)
        C2 = prod(ms[s:]) * C
        t2 = _tile_width(prod(span[:s]), C2, itemsize, _MIN_TILE)
        if t1 and t2:
            one = _pass(ns[s:], ms[s:], offs[s:], outer * prod(ns[:s]), C, t1)
            two = _pass(ns[:s], ms[:s], offs[:s], outer, C2, t2)
            return FusedPlan((one, two), outer * prod(ns[:s]) * C2, size_out, flops)
    return None


def pack(mats: Any, dtype: Any, batch: tuple | None = None) -> np.ndarray:
    """The factors as the kernel reads them: ``A_1, A_1ᵀ, A_2, A_2ᵀ, …`` in one array.

    With ``batch``, the factors are stacks broadcast to ``batch`` items, and
    the result holds each item's factors in turn (``F.size // prod(batch)`` apart).
    """
    E = 1 if batch is None else prod(batch)
    size = sum(2 * A.shape[-1] * A.shape[-2] for A in mats)
    F = np.empty((E, size), dtype=dtype)
    o = 0
    for A in mats:
        m, n = A.shape[-2:]
        for M in (A, np.swapaxes(A, -1, -2)):
            shape = M.shape[-2:]
            F[:, o:o + m * n].reshape((E,) + shape)[...] = (
                M if batch is None else np.broadcast_to(M, batch + shape).reshape((E,) + shape))
            o += m * n
    return F.reshape(-1)


_local = threading.local()


def _scratch_pair(size: int, dtype: np.dtype) -> tuple:
    """This thread's two scratch arrays of at least ``size`` elements (kept: they are small)."""
    pair = getattr(_local, "pair", None)
    if pair is None or pair[0].size < size or pair[0].dtype is not dtype:
        pair = _local.pair = (np.empty(max(size, 1), dtype), np.empty(max(size, 1), dtype))
    return pair


def _blocks(dst: np.ndarray, src: np.ndarray, F: np.ndarray, p: Pass, fstride: int,
            b0: int, b1: int) -> None:
    s1, s2 = _scratch_pair(p.scratch, dst.dtype)
    _state["kernel"][0](dst, src, s1, s2, F, p.meta, p.g, p.outer, p.C, p.tile, fstride,
                        b0, b1)


def run(X: np.ndarray, F: np.ndarray, fp: FusedPlan, out: np.ndarray | None = None,
        tmp: np.ndarray | None = None, threads: int = 1, submit: Any = None,
        fstride: int = 0) -> np.ndarray:
    """Run ``fp`` on the C-contiguous ``X``: the flat result (``out`` if given).

    ``threads > 1`` splits each pass's blocks between the calling thread and
    ``threads - 1`` tasks given to ``submit`` (an executor's ``submit``).
    """
    src = X.reshape(-1)
    if not src.flags.writeable:  # the kernel is compiled for writable arrays
        src = src.copy()
    dst = np.empty(fp.size_out, dtype=X.dtype) if out is None else out.reshape(-1)
    if fp.tmp == 0 and (threads <= 1 or fp.flops < _THREADS_MIN_FLOPS):
        p = fp.passes[0]  # the common small case, straight to the kernel
        s1, s2 = _scratch_pair(p.scratch, dst.dtype)
        _state["kernel"][0](dst, src, s1, s2, F, p.meta, p.g, p.outer, p.C, p.tile, fstride,
                            0, p.blocks)
        return dst
    if len(fp.passes) == 2:
        mid = np.empty(fp.tmp, dtype=X.dtype) if tmp is None else tmp.reshape(-1)[:fp.tmp]
        stages = ((src, mid, fp.passes[0]), (mid, dst, fp.passes[1]))
    else:
        stages = ((src, dst, fp.passes[0]),)
    if fp.flops < _THREADS_MIN_FLOPS:
        threads = 1
    for a, b, p in stages:
        k = min(threads, p.blocks)
        if k <= 1:
            _blocks(b, a, F, p, fstride, 0, p.blocks)
            continue
        cuts = [p.blocks * i // k for i in range(k + 1)]
        futs = [submit(_blocks, b, a, F, p, fstride, cuts[i], cuts[i + 1]) for i in range(1, k)]
        _blocks(b, a, F, p, fstride, cuts[0], cuts[1])
        for f in futs:
            f.result()
    return dst


# ------------------------------------------------------------------ per-item solves


class ItemsPlan(NamedTuple):
    """A per-item solve: modes of sizes ``ns``, each item one block in cache."""

    metaf: np.ndarray
    metab: np.ndarray
    fstride: int  # elements of packed factors per item
    N: int
    scratch: int


def items_plan(ns: tuple, itemsize: int) -> ItemsPlan | None:
    """The per-item solve's plan for items of shape ``ns``, or None if an item
    does not fit in a block (the stacked GEMM route then runs)."""
    N = prod(ns)
    if not ns or N == 0 or max(ns) > _MAX_ORDER or N * itemsize > _BLOCK_BYTES:
        return None
    offs, o = [], 0
    for n in ns:
        offs.append(o)
        o += 4 * n * n
    metaf = _meta(ns, ns, tuple(offs))
    metab = _meta(ns, ns, tuple(x + 2 * n * n for x, n in zip(offs, ns)))
    return ItemsPlan(metaf, metab, o, N, N)


def items_win(ns: tuple, batch: int) -> bool:
    """Whether the per-item kernel beats the GEMM schemes for a solve whose
    problems (``batch`` of them) share their factors (measured rule)."""
    N = prod(ns)
    return len(ns) >= 5 or 1024 <= N <= 8192


def pack_items(fwd: list, bwd: list, batch: tuple, dtype: Any) -> np.ndarray:
    """Per item and mode ``fwd_k, fwd_kᵀ, bwd_k, bwd_kᵀ`` (stacks broadcast to ``batch``)."""
    return pack([M for pair in zip(fwd, bwd) for M in pair], dtype, batch)


def run_items(B: np.ndarray, F: np.ndarray, lam: np.ndarray, ip: ItemsPlan,
              threads: int = 1, submit: Any = None, out: np.ndarray | None = None,
              shared: bool = False) -> np.ndarray:
    """Solve every item of ``B`` (shape ``(E, N)``, C order) into ``out`` (or a new array).

    ``lam`` is ``(E, Σ n_k)``: each item's eigenvalues mode after mode (the
    shift included in the first mode's); ``F`` from :func:`pack_items`.  With
    ``shared``, every item uses the first item's factors and eigenvalues.
    ``out`` may be ``B`` itself (each item is read before it is written).
    """
    E = B.shape[0]
    src = B.reshape(-1)
    if not src.flags.writeable:  # the kernel is compiled for writable arrays
        src = np.array(src)
    dst = np.empty_like(src) if out is None else out.reshape(-1)
    lam = np.ascontiguousarray(lam, dtype=B.dtype).reshape(-1)
    lstride = 0 if shared else lam.size // max(E, 1)
    fstride = 0 if shared else ip.fstride

    def part(b0: int, b1: int) -> None:
        s1, s2 = _scratch_pair(ip.scratch, B.dtype)
        s3 = np.empty(ip.N, dtype=B.dtype)
        _state["kernel"][1](dst, src, s1, s2, s3, F, ip.metaf, ip.metab, len(ip.metaf) // 4,
                            lam, ip.N, fstride, lstride, b0, b1)

    k = max(1, min(threads, E))
    cuts = [E * i // k for i in range(k + 1)]
    futs = [submit(part, cuts[i], cuts[i + 1]) for i in range(1, k)]
    part(cuts[0], cuts[1])
    for f in futs:
        f.result()
    return dst.reshape(B.shape)
