"""``kronsolve bench``: the benchmark report.

Measures the machine's float64 matrix-multiply (GEMM) rate, then a curated set
of workloads over a range of sizes: at each size every alternative (NumPy,
opt_einsum, SciPy, peer libraries, the explicit dense matrix where it fits in
memory), then kronsolve, each row printed as soon as it is measured.  A
kronsolve row carries its speed-up over the fastest alternative measured at
that size (named) and over forming the explicit matrix.  Every result is checked
against kronsolve's; the run's memory stays under :data:`MEMORY_CAP` (methods
that would pass it are skipped, and their rows say so).

The workloads are declared once (:data:`WORKLOADS`) and serve both this report
and ``benchmarks/bench_workloads.py`` (one pytest-benchmark group per size).
A case builds its inputs only when :meth:`Case.setup` is called, and a method's
function only when :attr:`Method.make` is called, so that one size's arrays are
alive at a time.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import io
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, TextIO

import numpy as np

from ._plot import ALTERNATIVE, EXPLICIT, KRONSOLVE, PART, REFERENCE, caption
from ._timing import gemm_call

__all__: list[str] = []

MEMORY_CAP = 2 * 10**9  # bytes ("2 GB"): the run's peak resident memory stays below it
_MEMORY_MARGIN = 0.9  # a method starts only if the RSS now plus its estimate stay under 90%

BENCH_EXTRA = 'pip install -e ".[bench]"'
# module -> (method name, how to install it)
PEERS = {
    "pykronecker": ("pykronecker", BENCH_EXTRA),
    "tensorly": ("tensorly.multi_mode_dot", BENCH_EXTRA),
    "pyfastkron": ("pyfastkron", "pip install --no-deps pyfastkron  (its NumPy kernels need "
                                 "neither torch nor torchvision, which it requires)"),
}


@dataclass
class Method:
    """One way of computing a case's result.

    ``make(env)`` returns the function to time (inputs bound); ``None`` marks a
    composite row derived from its ``parts`` (the explicit ``np.kron``: build
    plus matvec, timed separately).
    """

    name: str
    make: Callable[[dict], Callable[[], Any]] | None
    role: str = ALTERNATIVE
    check: bool = True  # compare the result with kronsolve's
    nbytes: float = 0.0  # memory it needs beyond the case's inputs (estimate, bytes)
    structured: bool = True  # does the structured work (its GEMM share means something)
    parts: tuple[str, ...] = ()


@dataclass
class Case:
    """One size of a workload: inputs built by ``setup()``, the methods that use them."""

    size: str
    x: float
    flops: float | None
    setup: Callable[[], dict]
    methods: list[Method]
    missing: list[str] = field(default_factory=list)  # peer modules not installed
    tol: float = 1e-8

    @property
    def kronsolve(self) -> Method:
        return next(m for m in self.methods if m.role == KRONSOLVE)


@dataclass(frozen=True)
class Workload:
    key: str  # the name for --workloads
    title: str  # the plot panel's title and the report's section heading
    what: str  # what is computed, one line
    x_label: str  # the quantity on the plot's x-axis
    sizes: tuple[int, ...]
    quick: tuple[int, ...]
    case: Callable[[int], Case]


# ------------------------------------------------------------------ peers


def _have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _quiet_import(module: str, name: str) -> Any:
    with contextlib.redirect_stdout(io.StringIO()):  # pykronecker announces its backend
        return getattr(importlib.import_module(module), name)


@contextlib.contextmanager
def jax_float64() -> Iterator[None]:
    """JAX in float64 for the duration (pykronecker runs on JAX where JAX is installed,
    and JAX's default is float32); the setting is restored after."""
    if not (_have("pykronecker") and _have("jax")):
        yield
        return
    config = importlib.import_module("jax").config
    old = config.jax_enable_x64
    config.update("jax_enable_x64", True)
    try:
        yield
    finally:
        config.update("jax_enable_x64", old)


def _pykronecker(env: dict) -> Callable[[], Any]:
    P = _quiet_import("pykronecker", "KroneckerProduct")(env["F"])
    x = env["x"]
    # np.asarray waits for JAX's asynchronous result (and is free for a NumPy one)
    return lambda: np.asarray(P @ x)


def _tensorly(env: dict) -> Callable[[], Any]:
    multi_mode_dot = _quiet_import("tensorly.tenalg", "multi_mode_dot")
    X, F = env["X"], env["F"]
    return lambda: multi_mode_dot(X, F).reshape(-1)


def _pyfastkron(env: dict) -> Callable[[], Any]:
    fk = importlib.import_module("pyfastkron.fastkronnumpy")
    xr = env["x"].reshape(1, -1)
    # pyfastkron computes x @ kron(F); the transposes give kron(F) @ x
    FT = [np.ascontiguousarray(A.T) for A in env["F"]]
    return lambda: fk.gemkm(xr, FT).reshape(-1)


_PEER_MAKERS = {"pykronecker": _pykronecker, "tensorly": _tensorly, "pyfastkron": _pyfastkron}


# --------------------------------------------------------------- workloads


def _dense_kron(F: list[np.ndarray]) -> np.ndarray:
    D = F[0]
    for A in F[1:]:
        D = np.kron(D, A)
    return D


def _explicit_kron(N: int, k: int) -> list[Method]:
    """The seed notebook's cell: build ``np.kron`` explicitly, then multiply."""
    dense = 8.0 * N * N

    def build(env: dict) -> Callable[[], Any]:
        F = env["F"]
        return lambda: _dense_kron(F)

    def matvec(env: dict) -> Callable[[], Any]:
        D, x = _dense_kron(env["F"]), env["x"]
        return lambda: D @ x

    return [
        Method("np.kron (build)", build, PART, check=False, nbytes=dense, structured=False),
        Method("np.kron (matvec)", matvec, PART, nbytes=dense + 8.0 * N * max(k, 1),
               structured=False),
        Method("np.kron (build + matvec)", None, EXPLICIT, structured=False,
               parts=("np.kron (build)", "np.kron (matvec)")),
    ]


def _matvec_case(d: int, n: int, k: int = 0) -> Case:
    N = n**d
    letters = "abcdefgh"[:d]
    batch = "z" if k else ""
    outs = "".join(chr(ord(c) + 8) for c in letters)
    spec = (letters + batch + "," + ",".join(chr(ord(c) + 8) + c for c in letters)
            + "->" + outs + batch)

    def setup() -> dict:
        import opt_einsum

        rng = np.random.default_rng(n)
        F = [rng.standard_normal((n, n)) for _ in range(d)]
        x = rng.standard_normal((N, k) if k else N)
        X = x.reshape((n,) * d + ((k,) if k else ()))
        expr = opt_einsum.contract_expression(spec, X.shape, *[A.shape for A in F])
        return {"F": F, "x": x, "X": X, "expr": expr}

    def kronsolve_(env: dict) -> Callable[[], Any]:
        import kronsolve as ks

        K, x = ks.kron(*env["F"]), env["x"]
        return lambda: K @ x

    def einsum(env: dict) -> Callable[[], Any]:
        X, F, shape = env["X"], env["F"], env["x"].shape
        return lambda: np.einsum(spec, X, *F, optimize="optimal").reshape(shape)

    def contract(env: dict) -> Callable[[], Any]:
        X, F, e, shape = env["X"], env["F"], env["expr"], env["x"].shape
        return lambda: e(X, *F).reshape(shape)

    methods = [
        Method("kronsolve", kronsolve_, KRONSOLVE),
        Method("np.einsum(optimal)", einsum),
        Method("opt_einsum.contract_expression", contract),
    ]
    missing = []
    if not k:  # the peers take one vector
        for module, (name, _) in PEERS.items():
            if _have(module):
                methods.append(Method(name, _PEER_MAKERS[module]))
            else:
                missing.append(module)
    methods += _explicit_kron(N, k)
    return Case(f"n={n}", n, 2.0 * d * n ** (d + 1) * max(k, 1), setup, methods, missing)


def _spd_factor(rng: np.random.Generator, n: int) -> np.ndarray:
    A = rng.standard_normal((n, n))
    return A @ A.T / n + np.eye(n)


def _sylvester3d_case(n: int) -> Case:
    N = n**3

    def setup() -> dict:
        rng = np.random.default_rng(n)
        return {"A": _spd_factor(rng, n), "B": rng.standard_normal((n, n, n))}

    def kronsolve_(env: dict) -> Callable[[], Any]:
        import kronsolve as ks

        A, B = env["A"], env["B"]
        return lambda: ks.solve_sylvester3d(B, A)

    def handwritten(env: dict) -> Callable[[], Any]:
        A, B = env["A"], env["B"]

        def solve():
            S, U = np.linalg.eigh(A)
            X1 = np.einsum("abc,ia,jb,kc->ijk", B, U.T, U.T, U.T, optimize="optimal")
            X1 /= S[:, None, None] + S[None, :, None] + S[None, None, :]
            return np.einsum("abc,ia,jb,kc->ijk", X1, U, U, U, optimize="optimal")

        return solve

    def dense(env: dict) -> Callable[[], Any]:
        A, B = env["A"], env["B"]
        identity = np.eye(n)

        def solve():
            L = (np.kron(np.kron(A, identity), identity) + np.kron(np.kron(identity, A), identity)
                 + np.kron(np.kron(identity, identity), A))
            return np.linalg.solve(L, B.ravel()).reshape(B.shape)

        return solve

    methods = [
        Method("kronsolve.solve_sylvester3d", kronsolve_, KRONSOLVE),
        Method("eigh + np.einsum (by hand)", handwritten),
        # the three Kronecker terms, their sum and LAPACK's copy: about 5 N^2 doubles
        Method("np.linalg.solve (assembled)", dense, EXPLICIT, nbytes=5 * 8.0 * N * N,
               structured=False),
    ]
    return Case(f"n={n}", n, 4.0 * 3 * n**4, setup, methods)


def _sylvester2d_case(n: int) -> Case:
    def setup() -> dict:
        rng = np.random.default_rng(n)
        return {"a": _spd_factor(rng, n), "b": _spd_factor(rng, n),
                "q": rng.standard_normal((n, n))}

    def kronsolve_(env: dict) -> Callable[[], Any]:
        import kronsolve as ks

        a, b, q = env["a"], env["b"], env["q"]
        return lambda: ks.solve_sylvester(a, b, q)

    def scipy_(env: dict) -> Callable[[], Any]:
        import scipy.linalg

        a, b, q = env["a"], env["b"], env["q"]
        return lambda: scipy.linalg.solve_sylvester(a, b, q)

    def dense(env: dict) -> Callable[[], Any]:
        a, b, q = env["a"], env["b"], env["q"]
        identity = np.eye(n)

        def solve():  # a x + x b = q, row-major: (a (x) I + I (x) b^T) vec(x) = vec(q)
            L = np.kron(a, identity) + np.kron(identity, b.T)
            return np.linalg.solve(L, q.ravel()).reshape(q.shape)

        return solve

    methods = [
        Method("kronsolve.solve_sylvester", kronsolve_, KRONSOLVE),
        Method("scipy.linalg.solve_sylvester", scipy_),
        Method("np.linalg.solve (assembled)", dense, EXPLICIT, nbytes=4 * 8.0 * n**4,
               structured=False),
    ]
    return Case(f"n={n}", n, 4.0 * 2 * n**3, setup, methods)


def _perfect_shuffle_index(p: int, r: int) -> np.ndarray:
    return np.arange(p * r).reshape(p, r).T.ravel()


def _copy_reference(env: dict) -> Callable[[], Any]:
    M, out = env["M"], np.empty_like(env["M"])
    return lambda: np.copyto(out, M)


def _matrix_case(m: int, ks_name: str, ks_make: Callable[[dict], Callable[[], Any]],
                 alt_name: str, alt_make: Callable[[dict], Callable[[], Any]]) -> Case:
    """A case on one m x m matrix: kronsolve, one alternative, ``np.copyto`` as the bound."""
    size = 8.0 * m * m
    methods = [
        Method(ks_name, ks_make, KRONSOLVE, nbytes=size),
        Method(alt_name, alt_make, nbytes=2 * size),
        Method("np.copyto (a plain copy)", _copy_reference, REFERENCE, check=False, nbytes=size),
    ]
    return Case(f"{m}x{m}", m, None,
                lambda: {"M": np.random.default_rng(m).standard_normal((m, m))}, methods, tol=0.0)


def _shuffle2_case(m: int) -> Case:
    p, r = 4, m // 4

    def kronsolve_(env: dict) -> Callable[[], Any]:
        import kronsolve as ks

        M = env["M"]
        return lambda: ks.shuffle2(M, (p, r), (p, r))

    def fancy(env: dict) -> Callable[[], Any]:
        M, i = env["M"], _perfect_shuffle_index(p, r)
        return lambda: M[i, :][:, i]

    return _matrix_case(m, "kronsolve.shuffle2", kronsolve_, "M[perm, :][:, perm] (indexing)",
                        fancy)


def _rearrange_case(m: int) -> Case:
    m1 = n1 = 4
    m2 = n2 = m // 4

    def kronsolve_(env: dict) -> Callable[[], Any]:
        import kronsolve as ks

        M = env["M"]
        return lambda: ks.rearrange(M, (m1, n1), (m2, n2))

    def chain(env: dict) -> Callable[[], Any]:
        M = env["M"]  # the seed notebook's RM_2 reshape chain

        return lambda: (M.reshape(m2, m1, n2, n1, order="F").transpose(0, 2, 1, 3)
                        .reshape(m2 * n2, m1, n1, order="F").transpose(1, 2, 0)
                        .reshape(m1 * n1, m2 * n2, order="F"))

    return _matrix_case(m, "kronsolve.rearrange", kronsolve_, "reshape/transpose chain", chain)


_N_LABEL = "n (factors n × n)"
WORKLOADS: tuple[Workload, ...] = (
    Workload("matvec-d2", "Kronecker matvec, d = 2", "y = kron(A1, A2) @ x, random n x n factors",
             _N_LABEL + ", x of length n²", (32, 64, 96, 128, 256, 512, 1024), (32, 64, 256),
             lambda n: _matvec_case(2, n)),
    Workload("matvec-d3", "Kronecker matvec, d = 3",
             "y = kron(A1, A2, A3) @ x, random n x n factors", _N_LABEL + ", x of length n³",
             (8, 12, 16, 20, 25, 32, 48, 64, 96, 128), (8, 16, 32, 64),
             lambda n: _matvec_case(3, n)),
    Workload("matvec-d4", "Kronecker matvec, d = 4",
             "y = kron(A1, A2, A3, A4) @ x, random n x n factors", _N_LABEL + ", x of length n⁴",
             (4, 6, 8, 10, 16, 24, 32), (4, 8, 16), lambda n: _matvec_case(4, n)),
    Workload("matvec-rhs64", "Kronecker matvec, d = 3, 64 right-hand sides",
             "Y = kron(A1, A2, A3) @ X, X of shape (n³, 64)", _N_LABEL + ", X of shape (n³, 64)",
             (8, 12, 16, 20, 24, 32), (8, 16), lambda n: _matvec_case(3, n, 64)),
    Workload("sylvester3d", "3-D Sylvester solve (symmetric A)",
             "X x1 A + X x2 A + X x3 A = B, B of shape (n, n, n)", _N_LABEL + ", N = n³ unknowns",
             (8, 12, 16, 24, 32, 64, 128, 192), (8, 12, 32, 64), _sylvester3d_case),
    Workload("sylvester2d", "2-D Sylvester solve (symmetric a ≠ b)", "a X + X b = q",
             _N_LABEL + ", N = n² unknowns", (16, 32, 64, 128, 256, 512), (16, 32, 256),
             _sylvester2d_case),
    Workload("shuffle2", "Perfect shuffle of rows and columns",
             "shuffle2(M, (4, m/4), (4, m/4)), an m x m float64 matrix", "m (matrix m × m)",
             (256, 1024, 2048, 4000), (256, 1024), _shuffle2_case),
    Workload("rearrange", "Van Loan–Pitsianis rearrangement",
             "rearrange(M, (4, 4), (m/4, m/4)), an m x m float64 matrix", "m (matrix m × m)",
             (256, 1024, 2048, 4000), (256, 1024), _rearrange_case),
)
WORKLOAD_NAMES = tuple(w.key for w in WORKLOADS)


# ------------------------------------------------------------------ measuring


@dataclass(frozen=True)
class Settings:
    budget: float  # seconds of timed calls per method (about)
    samples: int
    max_time: float  # a slow method stops after this many seconds (at least 3 samples)
    gemm_n: int


QUICK = Settings(budget=0.1, samples=5, max_time=0.8, gemm_n=1024)
FULL = Settings(budget=0.5, samples=7, max_time=4.0, gemm_n=2048)


def _samples(fn: Callable[[], Any], s: Settings, keep: bool) -> tuple[list[float], Any]:
    """Per-call times of ``s.samples`` samples, each averaging enough calls to last
    ``s.budget / s.samples``, after one untimed call (whose result is returned if ``keep``)."""
    t0 = time.perf_counter()
    result = fn()
    first = time.perf_counter() - t0
    if not keep:
        result = None
    inner = max(1, int(s.budget / s.samples / max(first, 1e-9)))
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < s.samples:
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - t0) / inner)
        if len(times) >= 3 and time.perf_counter() - start > s.max_time:
            break
    return times, result


def _status_bytes(field_name: str) -> int | None:
    """A ``kB`` field of /proc/self/status (VmRSS, VmHWM) in bytes; None off Linux."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _maxrss_bytes() -> int:
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r if sys.platform == "darwin" else r * 1024


def _rss_now() -> int:
    return _status_bytes("VmRSS") or _maxrss_bytes()


def _peak_rss() -> int:
    # the kernel's high-water mark, never reset: what /usr/bin/time and getrusage report
    return _status_bytes("VmHWM") or _maxrss_bytes()


def _close(a: Any, b: Any, tol: float) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return False
    if tol == 0.0:
        return bool(np.array_equal(a, b))
    scale = max(float(np.abs(b).max()) if b.size else 0.0, 1.0)
    return bool(np.abs(a - b).max() <= tol * scale) if a.size else True


def _gemm_rate(n: int, samples: int = 5) -> float:
    """float64 ``A @ B`` rate (flop/s): the best sample, the machine at its best."""
    fn, flops = gemm_call(n)
    times, _ = _samples(fn, Settings(budget=0.1 * samples, samples=samples, max_time=2.0,
                                     gemm_n=n), False)
    return flops / min(times)


# ------------------------------------------------------------------ the report


@dataclass
class Row:
    workload: str  # the workload's key
    size: str
    x: float
    method: str
    role: str
    median_s: float | None = None
    q1_s: float | None = None
    q3_s: float | None = None
    min_s: float | None = None
    max_s: float | None = None
    samples: int = 0
    speedup: float | None = None  # kronsolve rows: over the fastest alternative ...
    baseline: str = ""  # ... which is this one
    speedup_explicit: float | None = None  # kronsolve rows: over the explicit matrix
    gemm_share: float | None = None
    peak_rss_bytes: int | None = None
    note: str = ""


@dataclass
class Report:
    quick: bool = False
    machine: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)
    gemm_rate_flops: float = 0.0  # the highest measured so far (the GEMM shares use it)
    gemm_rate_start_flops: float = 0.0
    gemm_rate_end_flops: float = 0.0
    gemm_n: int = 0
    memory_cap_bytes: int = MEMORY_CAP
    peak_rss_bytes: int = 0
    total_s: float = 0.0
    not_installed: dict = field(default_factory=dict)  # module -> install command
    workloads: list = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)

    @property
    def differs(self) -> list[Row]:
        return [r for r in self.rows if "DIFFERS" in r.note]


def _machine() -> dict:
    info = {"platform": platform.platform(), "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next(line.split(":", 1)[1].strip() for line in f
                               if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    total = None
    try:
        with open("/proc/meminfo") as f:
            total = next(int(line.split()[1]) * 1024 for line in f
                         if line.startswith("MemTotal:"))
    except (OSError, StopIteration):
        pass
    info["memory_bytes"] = total
    return info


def _versions() -> dict:
    from ._version import __version__

    out = {"kronsolve": __version__, "python": platform.python_version()}
    out["peers"] = {}
    for pkg in ("numpy", "scipy", "numba", "opt_einsum", *PEERS):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            (out["peers"] if pkg in PEERS else out)[pkg] = importlib.metadata.version(pkg)
    with contextlib.suppress(Exception):  # the BLAS NumPy uses, as threadpoolctl sees it
        from threadpoolctl import threadpool_info

        blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        mine = [i for i in blas if "numpy" in i.get("filepath", "")] or blas
        if mine:
            out["blas"] = (f"{mine[0]['internal_api']} {mine[0].get('version', '')}, "
                           f"{mine[0]['num_threads']} threads")
    return out


def _num(v: float) -> str:
    """Three significant digits, without an exponent: 0.212, 57.7, 12,100."""
    return f"{v:,.0f}" if v >= 1000 else f"{v:.3g}"


def _fmt_time(t: float | None, unit: tuple[str, float] | None = None) -> str:
    if t is None:
        return "-"
    name, scale = unit or _unit(t)
    return f"{_num(t / scale)} {name}"


def _unit(t: float) -> tuple[str, float]:
    for name, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if t >= scale:
            return name, scale
    return "ns", 1e-9


def _fmt_ratio(r: float | None) -> str:
    if r is None:
        return ""
    if r >= 100:
        return f"{r:,.0f}x"
    return f"{r:.1f}x" if r >= 10 else f"{r:.2f}x"


def _fmt_bytes(b: float | None) -> str:
    if b is None:
        return ""
    return f"{_num(b / 1e9)} GB" if b >= 1e9 else f"{b / 1e6:.0f} MB"


class _Progress:
    """A one-line progress bar on stderr, redrawn in place; only on a terminal."""

    def __init__(self, total: int, enabled: bool, stream: TextIO = sys.stderr):
        self.total, self.done, self.text = total, 0, ""
        self.stream = stream
        self.on = enabled and stream.isatty()
        self.t0 = time.perf_counter()

    def show(self, text: str | None = None) -> None:
        if text is not None:
            self.text = text
        if not self.on:
            return
        width = 20
        k = int(width * self.done / max(self.total, 1))
        elapsed = time.perf_counter() - self.t0
        self.stream.write(f"\r\033[K[{'#' * k}{'.' * (width - k)}] {self.done}/{self.total} "
                          f"sizes, {elapsed:.0f} s: {self.text[:60]}")
        self.stream.flush()

    def clear(self) -> None:
        if self.on:
            self.stream.write("\r\033[K")
            self.stream.flush()


_COLUMNS = (("size", 9), ("method", 31), ("median", 9), ("IQR (25-75%)", 15),
            ("speed-up", 9), ("vs explicit", 11), ("GEMM", 5), ("peak RSS", 8), ("note", 0))


class _Table:
    """The report's text table, written row by row as the figures arrive."""

    def __init__(self, out: TextIO, progress: _Progress):
        self.out, self.progress = out, progress

    def write(self, text: str) -> None:
        self.progress.clear()
        self.out.write(text + "\n")
        self.out.flush()
        self.progress.show()

    def header(self, report: Report) -> None:
        data = {"machine": report.machine, "versions": report.versions, "gemm_n": report.gemm_n,
                "gemm_rate_gflops": report.gemm_rate_flops / 1e9}
        s = QUICK if report.quick else FULL
        self.write(
            f"kronsolve bench{' --quick' if report.quick else ''}: {caption(data)}\n"
            f"median: of up to {s.samples} samples, each averaging enough calls to last "
            f"{1e3 * s.budget / s.samples:.0f} ms (at least one); IQR: the samples' 25th to "
            "75th percentile\n"
            "speed-up: kronsolve's over the fastest alternative at that size (named in the "
            "note); vs explicit: over forming the explicit matrix (np.kron build + matvec, or "
            "the assembled dense solve) where it fits\n"
            "GEMM: the flop rate reached as a share of the highest GEMM rate measured so far "
            "(again before each workload); peak RSS: the process's peak resident memory "
            f"up to the end of the row (the run stays under "
            f"{MEMORY_CAP / 1e9:.0f} GB); every result is checked against kronsolve's")

    def section(self, wl: Workload, rate: float) -> None:
        names = "  ".join(f"{h:<{w}}" for h, w in _COLUMNS).rstrip()
        rule = "  ".join("-" * (w or 4) for _, w in _COLUMNS)
        self.write(f"\n{wl.title}: {wl.what}  (GEMM shares of {rate / 1e9:.0f} GFLOP/s, the "
                   f"highest rate so far)\n{names}\n{rule}")

    def row(self, r: Row) -> None:
        unit = _unit(r.median_s) if r.median_s else None
        iqr = ("" if r.q1_s is None else
               f"{_num(r.q1_s / unit[1])}-{_fmt_time(r.q3_s, unit)}")
        cells = (r.size, r.method, _fmt_time(r.median_s), iqr, _fmt_ratio(r.speedup),
                 _fmt_ratio(r.speedup_explicit),
                 "" if r.gemm_share is None else f"{r.gemm_share:.0%}",
                 _fmt_bytes(r.peak_rss_bytes), r.note)
        line = "  ".join(f"{c:<{w}}" if w else c
                         for c, (_, w) in zip(cells, _COLUMNS)).rstrip()
        self.write(line)


def _fill_stats(row: Row, times: list[float]) -> None:
    q1, med, q3 = np.percentile(times, [25, 50, 75])
    row.median_s, row.q1_s, row.q3_s = float(med), float(q1), float(q3)
    row.min_s, row.max_s, row.samples = min(times), max(times), len(times)


def _sum_parts(row: Row, parts: list[Row]) -> None:
    """A composite's figures: the sums of its parts' (a bound on the spread, not a sample)."""
    for attr in ("median_s", "q1_s", "q3_s", "min_s", "max_s"):
        setattr(row, attr, sum(getattr(p, attr) for p in parts))
    row.samples = min(p.samples for p in parts)
    row.peak_rss_bytes = max(p.peak_rss_bytes or 0 for p in parts) or None
    row.note = "the sum of its two parts above"


def _too_big(m: Method) -> str | None:
    """Why ``m`` is not run: the memory it needs would take the run past the cap."""
    if _rss_now() + m.nbytes <= _MEMORY_MARGIN * MEMORY_CAP:
        return None
    what = "the explicit matrix" if m.role in (PART, EXPLICIT) else "it"
    return (f"skipped: {what} needs about {_fmt_bytes(m.nbytes)}, over the run's "
            f"{MEMORY_CAP / 1e9:.0f} GB memory cap")


def _run_method(m: Method, fn_env: dict, row: Row, s: Settings, ref: Any, tol: float) -> None:
    """Time one method into ``row`` (checking its result against ``ref``), or say why not."""
    too_big = _too_big(m)
    if too_big:
        row.note = too_big
        return
    try:
        fn = m.make(fn_env)
        keep = m.check and m.role != KRONSOLVE
        times, result = _samples(fn, s, keep)
    except Exception as exc:  # a peer failing is reported, not fatal
        row.note = f"failed: {type(exc).__name__}: {exc}"[:100]
        return
    finally:
        row.peak_rss_bytes = _peak_rss()
    _fill_stats(row, times)
    if keep and not _close(result, ref, tol):
        row.note = "RESULT DIFFERS from kronsolve's"


def _run_case(wl: Workload, case: Case, s: Settings, report: Report, table: _Table) -> None:
    env = case.setup()
    ks_method = case.kronsolve
    ref = ks_method.make(env)()  # the reference result (and kronsolve's first call)
    rows: dict[str, Row] = {}
    too_big = {m.name: _too_big(m) for m in case.methods if m.role == PART}
    # the alternatives first, kronsolve last: its row then names the fastest of them
    for m in [m for m in case.methods if m is not ks_method] + [ks_method]:
        if too_big.get(m.name):
            continue  # the composite's row says why
        row = Row(wl.key, case.size, case.x, m.name, m.role)
        rows[m.name] = row
        if m.make is None:
            parts = [rows.get(p) for p in m.parts]
            if all(p and p.median_s for p in parts):
                _sum_parts(row, parts)
            else:
                row.note = next(filter(None, [too_big.get(p) for p in m.parts]), None) or (
                    "not run: " + "; ".join(p.note for p in parts if p and p.note))
        else:
            _run_method(m, env, row, s, ref, case.tol)
        if row.median_s and case.flops and m.structured and m.role in (KRONSOLVE, ALTERNATIVE):
            row.gemm_share = case.flops / row.median_s / report.gemm_rate_flops
        if m is ks_method and row.median_s:
            _speedups(row, rows.values())
        report.rows.append(row)
        report.peak_rss_bytes = max(report.peak_rss_bytes, row.peak_rss_bytes or 0)
        table.row(row)
    del env, ref


def _speedups(ks_row: Row, rows: Iterable[Row]) -> None:
    alternatives = [r for r in rows if r.role in (ALTERNATIVE, EXPLICIT) and r.median_s]
    if alternatives:
        best = min(alternatives, key=lambda r: r.median_s)
        ks_row.speedup = best.median_s / ks_row.median_s
        ks_row.baseline = best.method
        ks_row.note = f"over {best.method}" + (ks_row.note and f"; {ks_row.note}")
    explicit = [r for r in alternatives if r.role == EXPLICIT]
    if explicit:
        ks_row.speedup_explicit = explicit[0].median_s / ks_row.median_s


def _run_workloads(wls: list[Workload], s: Settings, report: Report, table: _Table,
                   bar: _Progress) -> None:
    loaded_small_eigh = False
    for wl in wls:
        report.workloads.append({"key": wl.key, "title": wl.title, "what": wl.what,
                                 "x_label": wl.x_label})
        if report.rows:  # again between workloads: the shares use the highest rate so far
            rate = _gemm_rate(s.gemm_n, samples=3)
            report.gemm_rate_flops = max(report.gemm_rate_flops, rate)
        table.section(wl, report.gemm_rate_flops)
        # the fused small-factor kernels compiled (or loaded from the disk cache)
        # before timing, as in a process that has run for a while (see _fused)
        from ._fused import warm_up

        warm_up(("float64",), solves=wl.key.startswith("sylvester"))
        if wl.key.startswith("sylvester") and not loaded_small_eigh:
            # steady state, as in a long-running process: the compiled tier of small
            # eigendecompositions loaded (a process loads it by itself once small
            # LAPACK decompositions have taken about as long; see _smalleig)
            from . import _smalleig

            _smalleig._get_kernel()
            loaded_small_eigh = True
        for n in (wl.quick if report.quick else wl.sizes):
            case = wl.case(n)
            for module in case.missing:
                report.not_installed[module] = PEERS[module][1]
            bar.show(f"{wl.title}, {case.size}")
            _run_case(wl, case, s, report, table)
            bar.done += 1


def run(selected: list[str], quick: bool, out: TextIO = sys.stdout,
        progress: bool = True) -> Report:
    """Run the selected workloads, printing each row as it is measured; return every figure."""
    t_start = time.perf_counter()
    s = QUICK if quick else FULL
    wls = [w for w in WORKLOADS if w.key in selected]
    bar = _Progress(sum(len(w.quick if quick else w.sizes) for w in wls), progress)
    table = _Table(out, bar)
    report = Report(quick=quick, machine=_machine(), versions=_versions(), gemm_n=s.gemm_n)
    bar.show(f"the GEMM rate (A @ B, n = {s.gemm_n})")
    report.gemm_rate_flops = report.gemm_rate_start_flops = _gemm_rate(s.gemm_n)
    table.header(report)
    with jax_float64():
        _run_workloads(wls, s, report, table, bar)
    bar.show("the GEMM rate again")
    report.gemm_rate_end_flops = _gemm_rate(s.gemm_n)
    report.gemm_rate_flops = max(report.gemm_rate_flops, report.gemm_rate_end_flops)
    report.peak_rss_bytes = max(report.peak_rss_bytes, _peak_rss())
    report.total_s = time.perf_counter() - t_start
    bar.clear()
    return report


def report_dict(report: Report) -> dict:
    """The report as plain data (the JSON file's content, the plot's input)."""
    d = asdict(report)
    for which in ("", "_start", "_end"):
        d[f"gemm_rate{which}_gflops"] = d.pop(f"gemm_rate{which}_flops") / 1e9
    return d


def _footer(report: Report) -> str:
    lines = [
        "",
        f"peak memory (RSS) of the run: {_fmt_bytes(report.peak_rss_bytes)} (cap "
        f"{MEMORY_CAP / 1e9:.0f} GB; rows that would pass it were skipped and say so)",
        f"GEMM rate: {report.gemm_rate_flops / 1e9:.0f} GFLOP/s, the highest measured (at the "
        f"start {report.gemm_rate_start_flops / 1e9:.0f}, at the end "
        f"{report.gemm_rate_end_flops / 1e9:.0f}); a share uses the highest before its row",
    ]
    if report.not_installed:
        lines.append("peers not installed (left out of every row):")
        by_cmd: dict[str, list[str]] = {}
        for module, cmd in report.not_installed.items():
            by_cmd.setdefault(cmd, []).append(module)
        lines += [f"  {', '.join(mods)}: {cmd}" for cmd, mods in by_cmd.items()]
    bad = report.differs
    if bad:
        lines.append(f"ERROR: {len(bad)} results differ from kronsolve's: "
                     + "; ".join(f"{r.workload} {r.size} {r.method}" for r in bad))
    lines.append(f"total time {report.total_s:.1f} s")
    return "\n".join(lines)


# ------------------------------------------------------------------ the command


DEFAULT_JSON = "kronsolve-bench.json"


def _check_writable(path: str) -> str | None:
    """Why ``path`` cannot be written, or None (checked by creating it)."""
    if os.path.isdir(path):
        return f"{path} is a directory"
    existed = os.path.exists(path)
    try:
        with open(path, "a"):
            pass
    except OSError as exc:
        return f"cannot write {path}: {exc.strerror or exc}"
    if not existed:
        os.remove(path)
    return None


def plot_path(args) -> str | None:
    """Where the plot goes: ``--plot``, else next to the JSON file; None with ``--no-plot``."""
    if args.no_plot:
        return None
    return args.plot or os.path.splitext(args.json)[0] + ".png"


def main_bench(args) -> int:
    """Entry point of ``kronsolve bench`` (``args`` from argparse)."""
    if args.workloads:
        selected = [w.strip() for w in args.workloads.split(",") if w.strip()]
        unknown = [w for w in selected if w not in WORKLOAD_NAMES]
        if unknown:
            print(f"kronsolve bench: unknown workload {', '.join(unknown)} "
                  f"(choose from {', '.join(WORKLOAD_NAMES)})", file=sys.stderr)
            return 2
    else:
        selected = list(WORKLOAD_NAMES)
    if args.plot and args.no_plot:
        print("kronsolve bench: --plot and --no-plot contradict each other", file=sys.stderr)
        return 2
    png = plot_path(args)
    for opt, path in (("json", args.json), ("plot", png)):
        problem = path and _check_writable(path)
        if problem:
            print(f"kronsolve bench: --{opt}: {problem}", file=sys.stderr)
            return 2
    plot_skipped = None
    if png and not _have("matplotlib"):
        if args.plot:
            print(f"kronsolve bench: --plot needs matplotlib ({BENCH_EXTRA})", file=sys.stderr)
            return 2
        png, plot_skipped = None, f"plot not written: matplotlib is not installed ({BENCH_EXTRA})"
    report = run(selected, args.quick, progress=not args.no_progress)
    print(_footer(report))
    data = report_dict(report)
    try:
        with open(args.json, "w") as f:
            json.dump(data, f, indent=1)
        print(f"figures written to {args.json}")
        if png:
            from ._plot import write_plot

            write_plot(data, png)
            print(f"plot written to {png}")
        elif plot_skipped:
            print(plot_skipped)
    except OSError as exc:
        print(f"kronsolve bench: cannot write the output: {exc}", file=sys.stderr)
        return 1
    return 1 if report.differs else 0
