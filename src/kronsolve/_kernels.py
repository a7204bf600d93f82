"""Tiled permuted-copy kernels behind ``shuffle``, ``shuffle2``, ``rearrange``...

Every perfect shuffle and every Van Loan–Pitsianis rearrangement is an axis
permutation of a reshaped array: ``out = x.reshape(in_shape).transpose(perm)``.
:func:`_permute` performs that copy.

* Numba path: one ``@njit(parallel=True, cache=True)`` kernel copies blocks of
  about 32 x 64 elements, so that both the reads and the writes use whole cache
  lines, with ``prange`` over the blocks.  The copy is bitwise, so every dtype
  whose items are 1, 2, 4, 8 or 16 bytes without Python objects (numbers, bools,
  datetimes, short strings...) goes through it, viewed as unsigned integers
  (16 bytes: as complex128).  Numba is imported, and the kernel compiled, on the
  first call that needs it, never at ``import kronsolve``.  A cache folder that
  cannot be written falls back to compiling without a cache.
* Large outputs (at least ``_STREAM_MIN_BYTES``) of 4- or 8-byte items are
  written with non-temporal ("streaming") stores on x86-64: they skip the
  read-for-ownership of each output cache line, a third of the memory traffic
  of a copy.  ``np.copyto`` (glibc's ``memcpy``) does the same above its own
  threshold.
* Threads: under Numba's ``workqueue`` threading layer (its fallback when
  neither TBB nor OpenMP loads), which aborts the process when two threads
  launch parallel regions at once, kernel launches are serialized by a lock;
  under OpenMP and TBB, threads call the kernel side by side (the first
  launch, which decides the layer, is serialized too).
* NumPy path: ``np.copyto`` of the transposed view.  Used for other dtypes
  (objects, odd item sizes), small arrays, and when Numba cannot be imported.
"""

from __future__ import annotations

import contextlib
import math
import platform
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

__all__: list[str] = []

# Replaced by ``numba.prange`` and ``numba.uint64`` when Numba is loaded (the kernel
# reads them at compile time).  Unsigned indices spare Numba's negative-index
# wraparound code in the inner loops, which halves their instruction count.
_prange = range
_uidx = int

# Below this many elements the NumPy path is faster than dispatching a parallel kernel.
_NUMBA_MIN_SIZE = 1 << 15

# Block sizes (elements) of the tiled copy, for 8-byte items.
_TILE_FAST = 64  # along the output's contiguous axis
_TILE_SLOW = 32  # along the input's contiguous axis
_ROW_BLOCK = 1 << 13  # elements per work item when input and output are both contiguous
_RUN = 512  # shortest source run (elements) worth blocking a second axis for
_WHOLE_BLOCK = 1 << 14  # largest contiguous-to-contiguous transpose copied as one block
# Streaming stores (measurements in the README, Performance): outputs of at least
# this many bytes, which no longer fit in a core's share of the last-level cache...
_STREAM_MIN_BYTES = 1 << 25
# ... output runs of at least this many bytes (shorter ones spend more on finding
# their whole cache lines than streaming saves) ...
_STREAM_MIN_RUN = 256
# ... and, where a block's output is one contiguous stretch, blocks of at least
# this many bytes (plain stores that fill whole lines in order are as fast below).
_STREAM_MIN_BLOCK = 28 << 10

_state: dict[str, Any] = {"kernel": None, "backend": "auto", "threadsafe": None}
_lock = threading.Lock()
# Serializes kernel launches until the threading layer is known to be thread-safe
# (always, under Numba's workqueue layer).
_launch_lock = threading.Lock()

_BIT_TYPES = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64, 16: np.complex128}


def _stream_store(out, i, v):
    """``out[i] = v``; a non-temporal store in the compiled kernel (x86-64)."""
    out[i] = v


def _stream_fence():
    """Orders the streaming stores before the kernel returns (``sfence`` on x86-64)."""


def _permute_copy_py(src, base, out, d0, d1, d2, d3, s0, s1, s2, s3, o0, o1, o2, t1, t2, t3,
                     h3, line, lead):
    """``out[i0*o0 + i1*o1 + i2*o2 + i3] = src[base + i0*s0 + i1*s1 + i2*s2 + i3*s3]``.

    The (i1, i2, i3) box is cut into ``t1 x t2 x t3`` blocks (along axis 3 the
    first block has ``h3`` more elements, ``0 <= h3 < t3``); the work items
    (i0, block) run in parallel.  With ``line`` (the items per 64-byte cache
    line; 0 for none) the whole cache lines of the output are written with
    streaming stores; ``lead`` is the position of ``out[0]`` in its line.
    Compiled by Numba (see :func:`_get_kernel`).
    """
    n1 = (d1 + t1 - 1) // t1
    n2 = (d2 + t2 - 1) // t2
    n3 = (d3 - h3 + t3 - 1) // t3
    mask = line - 1  # line is a power of two
    nwork = d0 * n1 * n2 * n3
    # Work items go in chunks of consecutive items (as a static schedule would
    # give them to the threads); a chunk ends with one fence for its streaming stores.
    nchunk = min(nwork, 256)
    for c in _prange(nchunk):
        for w in range(c * nwork // nchunk, (c + 1) * nwork // nchunk):
            k3 = w % n3
            q = w // n3
            k2 = q % n2
            q = q // n2
            k1 = q % n1
            i0 = q // n1
            a1 = k1 * t1
            b1 = min(a1 + t1, d1)
            a2 = k2 * t2
            b2 = min(a2 + t2, d2)
            a3 = 0 if k3 == 0 else h3 + k3 * t3
            b3 = min(h3 + (k3 + 1) * t3, d3)
            for i1 in range(a1, b1):
                ob0 = i0 * o0 + i1 * o1
                sb0 = base + i0 * s0 + i1 * s1
                if line:
                    # Streaming stores for the cache lines that the block writes whole,
                    # plain ones at the ends of its output runs: a partial line that
                    # another work item completes later would be written to memory
                    # twice.  Runs that continue one another (whole rows, contiguous
                    # in the output) form one stretch, with plain stores at its ends.
                    joined = a3 == 0 and b3 == d3 and o2 == d3
                    for i2 in range(a2, b2):
                        ob = ob0 + i2 * o2
                        sb = sb0 + i2 * s2
                        lo = a3
                        if i2 == a2 or not joined:
                            lo = min(a3 + (-(ob + a3 + lead) & mask), b3)
                        hi = b3
                        if i2 == b2 - 1 or not joined:
                            hi = lo + ((b3 - lo) & ~mask)
                        for i3 in range(a3, lo):
                            out[_uidx(ob + i3)] = src[_uidx(sb + i3 * s3)]
                        for i3 in range(lo, hi):
                            _stream_store(out, _uidx(ob + i3), src[_uidx(sb + i3 * s3)])
                        for i3 in range(hi, b3):
                            out[_uidx(ob + i3)] = src[_uidx(sb + i3 * s3)]
                elif s3 == 1:
                    for i2 in range(a2, b2):
                        ob = ob0 + i2 * o2
                        sb = sb0 + i2 * s2
                        for i3 in range(a3, b3):
                            out[_uidx(ob + i3)] = src[_uidx(sb + i3)]
                else:
                    for i2 in range(a2, b2):
                        ob = ob0 + i2 * o2
                        sb = sb0 + i2 * s2
                        for i3 in range(a3, b3):
                            out[_uidx(ob + i3)] = src[_uidx(sb + i3 * s3)]
        if line:
            _stream_fence()


def _compile(numba: Any, cache: bool) -> Any:
    return numba.njit(parallel=True, cache=cache, nogil=True, boundscheck=False)(
        _permute_copy_py
    )


def _load_streaming(numba: Any) -> None:
    """Replace ``_stream_store``/``_stream_fence`` by Numba intrinsics on x86-64.

    The store carries LLVM's ``!nontemporal`` hint (``movnti`` for 4- and 8-byte
    integers; other item types get a plain store); the fence is ``sfence``, which
    makes the weakly ordered stores visible before the kernel returns.
    Elsewhere both stay plain Python (a normal store, no fence).
    """
    global _stream_store, _stream_fence
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return
    from llvmlite import ir
    from numba.core import cgutils
    from numba.extending import intrinsic

    @intrinsic
    def store(typingctx, arr, idx, val):
        def codegen(context, builder, sig, args):
            arrty, idxty, valty = sig.args
            ary = context.make_array(arrty)(context, builder, args[0])
            i = context.cast(builder, args[1], idxty, numba.intp)
            ptr = cgutils.get_item_pointer(context, builder, arrty, ary, [i],
                                           wraparound=False, boundscheck=False)
            st = builder.store(context.cast(builder, args[2], valty, arrty.dtype), ptr)
            if isinstance(arrty.dtype, numba.types.Integer) and arrty.dtype.bitwidth in (32, 64):
                st.set_metadata("nontemporal", builder.module.add_metadata([ir.IntType(32)(1)]))
            return context.get_dummy_value()

        return numba.void(arr, idx, val), codegen

    @intrinsic
    def fence(typingctx):
        def codegen(context, builder, sig, args):
            fn = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(ir.VoidType(), []), "llvm.x86.sse.sfence"
            )
            builder.call(fn, [])
            return context.get_dummy_value()

        return numba.void(), codegen

    _stream_store, _stream_fence = store, fence


def _import_numba() -> Any:
    """The ``numba`` module, or None where it cannot be imported or JIT is disabled."""
    try:
        import numba
    except Exception:  # ImportError, or a Numba broken by its environment
        return None
    if numba.config.DISABLE_JIT:  # pure-Python kernels would be far too slow
        return None
    return numba


def _compile_cached(compile_: Any) -> Any:
    """``compile_(cache=True)``, or without the cache where no folder is writable."""
    try:
        return compile_(cache=True)
    except (RuntimeError, OSError):  # no writable cache folder anywhere
        return compile_(cache=False)


def _built_once(state: dict, lock: Any, build: Any) -> Any:
    """``state["kernel"]``, made by ``build()`` on first use (once, under ``lock``)."""
    kern = state["kernel"]
    if kern is not None:
        return kern
    with lock:
        if state["kernel"] is None:
            state["kernel"] = build()
        return state["kernel"]


def _build() -> Any:
    global _prange, _uidx
    numba = _import_numba()
    if numba is None:
        return False
    _prange = numba.prange
    _uidx = numba.uint64
    _load_streaming(numba)
    return _compile_cached(lambda cache: _compile(numba, cache))


def _get_kernel() -> Any:
    """The compiled kernel, or ``False`` when Numba cannot be imported."""
    return _built_once(_state, _lock, _build)


def _layer_is_threadsafe() -> bool:
    """Whether the threading layer that Numba loaded may be entered from several threads.

    The ``workqueue`` layer (Numba's fallback when neither TBB nor OpenMP loads)
    aborts the process when two threads launch parallel regions at once.
    """
    import numba

    try:
        return numba.threading_layer() != "workqueue"
    except ValueError:  # no parallel region has run yet
        return False


def _run_kernel(*args: Any) -> None:
    """Run the parallel kernel; launches are serialized under a non-thread-safe layer."""
    safe = _state.get("threadsafe")
    if safe:
        _call_kernel(*args)
        return
    with _launch_lock:
        _call_kernel(*args)
        if safe is None:
            _state["threadsafe"] = _layer_is_threadsafe()


def _call_kernel(*args: Any) -> None:
    kern = _get_kernel()
    try:
        kern(*args)
    except OSError:
        # The cache folder became unwritable after the kernel was set up: the
        # compiled code could not be saved.  Compile again without the cache.
        import numba

        with _lock:
            kern = _compile(numba, cache=False)
            _state["kernel"] = kern
        kern(*args)


@contextlib.contextmanager
def _use_backend(name: str) -> Iterator[None]:
    """Force ``"numba"``, ``"numpy"`` or ``"auto"`` inside a ``with`` block (tests)."""
    if name not in ("auto", "numba", "numpy"):
        raise ValueError(f"backend must be 'auto', 'numba' or 'numpy', got {name!r}")
    old = _state["backend"]
    _state["backend"] = name
    try:
        yield
    finally:
        _state["backend"] = old


def _numba_ok(x: np.ndarray) -> bool:
    backend = _state["backend"]
    if backend == "numpy":
        return False
    if x.dtype.hasobject or x.dtype.itemsize not in _BIT_TYPES:
        return False
    if any(s % x.itemsize for s in x.strides):
        return False
    if backend == "auto" and x.size < _NUMBA_MIN_SIZE:
        return False
    return _get_kernel() is not False


def _simplify(shape: Sequence[int], strides: Sequence[int]) -> tuple[list[int], list[int]]:
    """Drop length-1 axes and merge neighbours that stay contiguous in the source.

    The output is C-contiguous, so two neighbouring output axes merge whenever
    their source strides do too.
    """
    dims: list[int] = []
    sts: list[int] = []
    for n, s in zip(shape, strides, strict=True):
        if n == 1:
            continue
        if dims and sts[-1] == s * n:
            dims[-1] *= n
            sts[-1] = s
        else:
            dims.append(n)
            sts.append(s)
    return dims, sts


def _kernel_copy(xt: np.ndarray, out: np.ndarray) -> bool:
    """Copy the (strided) view ``xt`` into the C-contiguous ``out`` with the kernel.

    Returns ``False`` (nothing done) when the problem has more than four axes
    that cannot be merged.
    """
    item = xt.itemsize
    estr = [s // item for s in xt.strides]
    dims, sts = _simplify(xt.shape, estr)
    if len(dims) > 4:
        return False
    # Flat 1-D view of the source memory, from its lowest address; ``base`` is
    # the position of xt[0, ..., 0] in it (negative strides count down from it).
    flip = tuple(slice(None, None, -1) if s < 0 else slice(None) for s in xt.strides)
    low = xt[flip]
    span = 1 + sum((n - 1) * abs(s) for n, s in zip(xt.shape, estr, strict=True))
    base = sum((n - 1) * -s for n, s in zip(xt.shape, estr, strict=True) if s < 0)
    bits = _BIT_TYPES[item]
    # Always read-only, so that writeable and read-only inputs share one compiled kernel.
    src = np.lib.stride_tricks.as_strided(
        low, shape=(span,), strides=(item,), writeable=False
    ).view(bits)
    dst = out.reshape(-1).view(bits)
    if not dims:
        dims, sts = [1], [1]
    nd = len(dims)
    ost = [math.prod(dims[k + 1 :]) for k in range(nd)]
    # The source's fastest axis goes second to last, next to the output's
    # contiguous (last) axis; the others lead, in output order.
    fast = min(range(nd), key=lambda k: (abs(sts[k]), -k))
    order = list(range(nd)) if fast == nd - 1 else [k for k in range(nd - 1) if k != fast] + [
        fast,
        nd - 1,
    ]
    if fast != nd - 1 and nd >= 4:
        # Of the two leading axes, the one that continues the source's fastest
        # axis in memory goes second: a block along it makes longer source runs.
        if abs(sts[order[0]]) < abs(sts[order[1]]):
            order[0], order[1] = order[1], order[0]
    pad = 4 - nd
    D = [1] * pad + [dims[k] for k in order]
    S = [0] * pad + [sts[k] for k in order]
    O = [0] * pad + [ost[k] for k in order]
    scale = max(1, 8 // item)
    t1 = 1
    if fast == nd - 1:  # rows: contiguous on both sides
        t3 = min(D[3], _ROW_BLOCK * scale)
        t2 = min(D[2], max(1, _ROW_BLOCK * scale // t3))
    else:
        area = _TILE_FAST * _TILE_SLOW * scale
        if D[2] < _RUN * scale and S[1] == D[2] * S[2] and D[1] > 1:
            # Short source runs along axis 2 that axis 1 continues in memory:
            # block axis 1 too, so that the reads run on.
            t2 = D[2]
            t1 = min(D[1], _RUN * scale // D[2])
            # output pieces of whole cache lines where the split allows (80 -> 40 + 40)
            t3 = min(D[3], _TILE_FAST * scale)
        elif D[2] < _RUN * scale and S[3] == D[2] * S[2]:
            # Short runs along axis 2 that the output's axis 3 continues: take
            # axis 2 whole, so that a block reads one contiguous stretch.
            t2 = D[2]
            t3 = min(D[3], _TILE_FAST * scale)
            if S[1] == D[3] * S[3] and D[2] * D[3] <= _WHOLE_BLOCK * scale:
                # (axes 2, 3) is a small matrix contiguous in the source and in the
                # output (a batch of transposes, as in shuffle2): copy it whole
                t3 = D[3]
        else:
            t3 = min(D[3], _TILE_FAST * scale)
            t2 = min(D[2], max(_TILE_SLOW, area // t3))
            t3 = min(D[3], max(t3, area // t2))
    # Even blocks: 100 in blocks of 25, rather than 32 + 32 + 32 + 4.
    t1 = -(-D[1] // -(-D[1] // t1))
    t2 = -(-D[2] // -(-D[2] // t2))
    t3 = -(-D[3] // -(-D[3] // t3))
    h3 = line = lead = 0
    joined = t3 == D[3] and O[2] == D[3]  # a block's output is one contiguous stretch
    if (out.nbytes >= _STREAM_MIN_BYTES and item in (4, 8) and t3 * item >= _STREAM_MIN_RUN
            and (not joined or t1 * t2 * t3 * item >= _STREAM_MIN_BLOCK)):
        line = 64 // item
        lead = dst.ctypes.data % 64 // item
        if t3 < D[3] and not (O[0] % line or O[1] % line or O[2] % line):
            # every run along axis 3 starts at the same place in a line: cut the
            # blocks at line boundaries (the first block takes the head)
            h3 = (line - lead) % line
            h3 = h3 if h3 < t3 else 0
    _run_kernel(src, base, dst, *D, *S, *O[:3], t1, t2, t3, h3, line, lead)
    return True


def _permute(
    x: np.ndarray,
    in_shape: tuple[int, ...],
    perm: tuple[int, ...],
    out_shape: tuple[int, ...],
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Return ``x.reshape(in_shape).transpose(perm).reshape(out_shape)`` as a new copy.

    ``x.reshape(in_shape)`` must only split axes (then it is a view).  ``out``,
    when given, is a checked array of shape ``out_shape`` that receives the
    result (any layout, overlap with ``x`` and dtype casts allowed).
    """
    xt = x.reshape(in_shape).transpose(perm)
    direct = (
        out is not None
        and out.dtype == x.dtype
        and out.flags.c_contiguous
        and out.flags.writeable
        and not np.may_share_memory(out, x)
    )
    res = out if direct else np.empty(out_shape, dtype=x.dtype)
    if x.size:
        done = False
        if _numba_ok(x):
            done = _kernel_copy(xt, res)
            if not done:  # too many axes in a strided input: go through a C copy
                xc = np.ascontiguousarray(x).reshape(in_shape).transpose(perm)
                done = _kernel_copy(xc, res)
        if not done:
            np.copyto(res.reshape(xt.shape), xt)
    if out is not None and not direct:
        np.copyto(out, res, casting="same_kind")
        return out
    return res
