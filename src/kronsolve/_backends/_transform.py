"""The tensor transform: successive mode products, planned once, run by any backend.

A transform applies ``mats[i]`` along axis ``modes[i]`` of a tensor for every
``i``.  :func:`plan` decides how (the one rule, used by every product and
every solve of every backend) and :func:`transform` runs it (the one loop),
with two primitives that the backend passes in:

* ``matmul(a, b, out)``: ``a @ b``, written into ``out`` when the backend
  keeps buffers (NumPy) and ``out`` is not None;
* ``product(cur, A, p, n, q, m, out)``: the tensor seen as ``(p, n, q)`` times
  ``A`` along its middle axis (NumPy's handles scipy.sparse factors too).

and ``dest(step, shape)``, which gives the buffer that step ``step`` writes
(or None: a new array).

Schemes, for a tensor of shape ``(n1, ..., nd)`` and square dense factors on
every axis (a full Kronecker matvec):

* ``"front"``: step ``k`` multiplies the *first* axis and moves it to the
  back, ``(n, rest) -> (rest, m)`` as ``cur.reshape(n, rest).T @ Aᵀ`` with a
  contiguous ``Aᵀ`` on the right: the fastest GEMM layout for small factors;
* ``"back"``: step ``i`` multiplies the *last* axis and moves it to the front,
  ``A @ cur.reshape(rest, n).T``, from the last factor to the first: the
  fastest for large tensors;
* ``"std"``: one product per mode in place (no rotation), the first axis as
  ``A @ X.reshape(n, -1)``, the last as ``X.reshape(-1, n) @ A.T``, a middle one
  batched; modes in the order that needs the fewest flops (rectangular
  factors, partial products, batch axes);
* ``"slabs"`` (NumPy only, many right-hand sides as a trailing axis): the
  trailing modes slab by slab in cache, then the first mode over everything.

After a rotating scheme's ``d`` steps the axes are back in order.  The
measurements behind the limits are in ``benchmarks/`` and the README.
"""

from __future__ import annotations

from math import prod
from typing import Any, NamedTuple

__all__: list[str] = []

# "auto" picks per case; "gemm" as "auto" without the fused kernels (NumPy);
# "std", "front", "back", "slabs" and "fused" force one scheme
_STRATEGY = ["auto"]
# rotating schemes: front for factors up to this order, back from this tensor size
_FRONT_MAX = 32
_ROTATE_MIN_SIZE = 1 << 16
# the two-pass scheme: slabs of at most this many bytes, tensors of at least this many
_SLAB_MAX_BYTES = 1 << 20
_SLAB_MIN_BYTES = 1 << 23

def strategy() -> str:
    """The scheme in force (read at each call: tests replace ``_STRATEGY``)."""
    return _STRATEGY[0]


_PLAN_CACHE: dict[tuple, Plan] = {}
_PLAN_CACHE_MAX = 512


class Plan(NamedTuple):
    """How to run a transform: scheme, ``(index, p, n, q, m)`` steps, output shape."""

    scheme: str
    steps: tuple
    shape_out: tuple
    slabs: tuple | None  # the steps within one slab ("slabs" scheme)


def _order_modes(sizes: list, modes: list[int]) -> list[int]:
    """Products that shrink the tensor most first (fewest flops); ties from the last axis."""
    order = list(range(len(modes)))
    order.sort(key=lambda i: (sizes[i][0] / sizes[i][1] if sizes[i][1] else 1.0, -modes[i]))
    return order


def _steps(shape: tuple, sizes: list, modes: list[int]) -> tuple[tuple, tuple]:
    cur = list(shape)
    steps = []
    for i in _order_modes(sizes, modes):
        k = modes[i]
        m, n = sizes[i]
        steps.append((i, prod(cur[:k]), n, prod(cur[k + 1:]), m))
        cur[k] = m
    return tuple(steps), tuple(cur)


def _scheme(shape: tuple, sizes: list, modes: list[int], dense: bool, slabs_ok: bool,
            itemsize: int) -> str:
    strategy = "auto" if _STRATEGY[0] == "gemm" else _STRATEGY[0]
    d = len(sizes)
    square = dense and modes == list(range(d)) and all(m == n for m, n in sizes)
    if square and d >= 1 and len(shape) == d:
        if strategy in ("front", "back"):
            return strategy
        if strategy != "auto":
            return "std"
        if max(shape) <= _FRONT_MAX:
            return "front"
        return "back" if d >= 2 and prod(shape) >= _ROTATE_MIN_SIZE else "std"
    if square and slabs_ok and d >= 3 and len(shape) == d + 1 and strategy in ("auto", "slabs"):
        slab = prod(shape[1:]) * itemsize
        if strategy == "slabs" or (slab <= _SLAB_MAX_BYTES
                                   and slab * shape[0] >= _SLAB_MIN_BYTES):
            return "slabs"
    return "std"


def plan(shape: tuple, sizes: tuple, modes: tuple, *, dense: bool = True,
         slabs_ok: bool = False, itemsize: int = 8) -> Plan:
    """The plan of a transform (cached per shapes, modes and kind of factors)."""
    key = (shape, sizes, modes, dense, slabs_ok, itemsize, _STRATEGY[0])
    p = _PLAN_CACHE.get(key)
    if p is not None:
        return p
    steps, shape_out = _steps(shape, list(sizes), list(modes))
    scheme = _scheme(shape, list(sizes), list(modes), dense, slabs_ok, itemsize)
    slabs = None
    if scheme == "slabs":
        slabs = _steps(shape[1:], list(sizes[1:]), list(range(len(sizes) - 1)))[0]
    p = Plan(scheme, steps, shape_out, slabs)
    if len(_PLAN_CACHE) >= _PLAN_CACHE_MAX:
        _PLAN_CACHE.clear()
    _PLAN_CACHE[key] = p
    return p


def transform(cur: Any, mats: Any, p: Plan, matmul: Any, product: Any, dest: Any,
              trans: Any = None, offset: int = 0) -> Any:
    """Run the plan ``p`` on the C-contiguous tensor ``cur``; returns the result tensor.

    ``trans[i]`` is a contiguous ``mats[i].T`` (the right operand of the front
    scheme; made on the fly when None).  ``offset`` numbers the steps for
    ``dest`` (a solve runs two transforms over the same pair of buffers).
    """
    scheme = p.scheme
    if scheme == "front":
        size = prod(cur.shape)
        for s, A in enumerate(mats):
            G = trans[s] if trans is not None and trans[s] is not None else A.T
            n, m = G.shape
            rest = size // n
            cur = matmul(cur.reshape(n, rest).T, G, dest(offset + s, (rest, m)))
            size = rest * m
        return cur.reshape(p.shape_out)
    if scheme == "back":
        size = prod(cur.shape)
        d = len(mats)
        for s in range(d):
            A = mats[d - 1 - s]
            m, n = A.shape
            rest = size // n
            cur = matmul(A, cur.reshape(rest, n).T, dest(offset + s, (m, rest)))
            size = rest * m
        return cur.reshape(p.shape_out)
    for s, (i, pp, n, q, m) in enumerate(p.steps):
        cur = product(cur, mats[i], pp, n, q, m, dest(offset + s, (pp, m, q)))
    return cur.reshape(p.shape_out)
