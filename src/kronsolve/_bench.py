"""``kronsolve bench``: the benchmark report.

Measures the machine's float64 matrix-multiply rate, then a curated set of
workloads, each method against its baselines in the same run, and prints a table:
workload, size, method, median time, speed-up over the explicit baseline
(``np.kron``, the dense solve or fancy indexing) and the share of the machine's
matrix-multiply rate reached.  The rate is measured at the start and at the end
of the run, and the higher of the two is used: on a shared machine a single
measurement that caught a slow moment would inflate every share.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ._timing import gemm_rate, timeit_median

__all__: list[str] = []

DENSE_CAP_BYTES = 2 << 30  # explicit np.kron / dense solves only where the matrix fits


@dataclass
class Method:
    name: str
    fn: Callable[[], Any] | None  # None: not run, see ``note``
    note: str = ""
    check: bool = True  # compare the result with the kronsolve result


@dataclass
class Case:
    workload: str
    size: str
    x: float  # numeric size, for the plot
    flops: float | None
    baseline: str | None  # method name (or "a+b") the speed-up is measured against
    methods: list[Method]
    tol: float = 1e-8


@dataclass
class Row:
    workload: str
    size: str
    method: str
    median_s: float | None
    speedup: float | None = None
    gemm_share: float | None = None
    note: str = ""
    x: float = 0.0


@dataclass
class Report:
    machine: dict = field(default_factory=dict)
    gemm_rate_flops: float = 0.0
    rows: list[Row] = field(default_factory=list)


# ------------------------------------------------------------------ peers


def _have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _missing(name: str, module: str, how: str) -> Method:
    return Method(name, None, f"not installed ({how})")


def _kron_peers(F: list[np.ndarray], x: np.ndarray) -> list[Method]:
    """Peer libraries for ``kron(F) @ x``; missing ones are reported, not dropped."""
    d = len(F)
    n = F[0].shape[0]
    out = []
    if _have("pykronecker"):
        with contextlib.redirect_stdout(io.StringIO()):  # it announces its backend
            from pykronecker import KroneckerProduct

        P = KroneckerProduct(F)
        out.append(Method("pykronecker", lambda: P @ x))
    else:
        out.append(_missing("pykronecker", "pykronecker", 'pip install -e ".[bench]"'))
    if _have("tensorly"):
        with contextlib.redirect_stdout(io.StringIO()):
            from tensorly.tenalg import multi_mode_dot

        X = x.reshape((n,) * d)
        out.append(Method("tensorly.multi_mode_dot", lambda: multi_mode_dot(X, F).reshape(-1)))
    else:
        out.append(_missing("tensorly.multi_mode_dot", "tensorly", 'pip install -e ".[bench]"'))
    if _have("pyfastkron"):
        try:
            from pyfastkron import fastkronnumpy as fk

            xr = x.reshape(1, -1)
            # pyfastkron computes x @ kron(F); pass the transposes for kron(F) @ x
            FT = [np.ascontiguousarray(A.T) for A in F]
            fk.gemkm(xr, FT)
            out.append(Method("pyfastkron", lambda: fk.gemkm(xr, FT).reshape(-1)))
        except Exception as exc:  # pragma: no cover - depends on the install
            out.append(Method("pyfastkron", None, f"failed: {exc}"[:60]))
    else:
        out.append(_missing("pyfastkron", "pyfastkron", "pip install --no-deps pyfastkron"))
    return out


# --------------------------------------------------------------- workloads


def _matvec_cases(d: int, sizes: list[int], k: int = 0) -> Iterator[Case]:
    for n in sizes:
        yield _matvec_case(d, n, k)


def _matvec_case(d: int, n: int, k: int) -> Case:
    import opt_einsum

    import kronsolve as ks

    letters = "abcdefgh"
    if True:
        rng = np.random.default_rng(n)
        F = [rng.standard_normal((n, n)) for _ in range(d)]
        N = n**d
        x = rng.standard_normal((N, k) if k else N)
        K = ks.kron(*F)
        ins = letters[:d] + ("z" if k else "")
        outs = "".join(chr(ord(c) + 8) for c in letters[:d]) + ("z" if k else "")
        spec = ins + "," + ",".join(chr(ord(c) + 8) + c for c in letters[:d]) + "->" + outs
        X = x.reshape((n,) * d + ((k,) if k else ()))
        expr = opt_einsum.contract_expression(spec, X.shape, *[A.shape for A in F])
        methods = [
            Method("kronsolve", lambda K=K, x=x: K @ x),
            Method("np.einsum(optimal)",
                   lambda X=X, F=F, spec=spec: np.einsum(spec, X, *F, optimize="optimal")
                   .reshape(x.shape)),
            Method("opt_einsum.contract_expression",
                   lambda X=X, F=F, e=expr: e(X, *F).reshape(x.shape)),
        ]
        if N * N * 8 <= DENSE_CAP_BYTES:
            dense: dict[str, np.ndarray] = {}

            def build(F=F, dense=dense):
                D = F[0]
                for A in F[1:]:
                    D = np.kron(D, A)
                dense["D"] = D
                return None

            build()
            methods.append(Method("np.kron (build)", build, check=False))
            methods.append(Method("np.kron (matvec)", lambda dense=dense, x=x: dense["D"] @ x))
            baseline = "np.kron (build)+np.kron (matvec)"
        else:
            too_big = f"dense matrix over {DENSE_CAP_BYTES >> 30} GiB"
            methods.append(Method("np.kron", None, too_big))
            baseline = None
        if not k:
            methods.extend(_kron_peers(F, x))
        flops = 2.0 * d * n ** (d + 1) * max(k, 1)
        name = f"kron matvec d={d}" + (f", {k} rhs" if k else "")
        return Case(name, f"n={n}", n, flops, baseline, methods)


def _sylvester3d_cases(sizes: list[int]) -> Iterator[Case]:
    for n in sizes:
        yield _sylvester3d_case(n)


def _sylvester3d_case(n: int) -> Case:
    import kronsolve as ks

    if True:
        rng = np.random.default_rng(n)
        A = rng.standard_normal((n, n))
        A = A @ A.T / n + np.eye(n)
        B = rng.standard_normal((n, n, n))
        methods = [
            Method("kronsolve.solve_sylvester3d", lambda A=A, B=B: ks.solve_sylvester3d(B, A))
        ]

        def handwritten(A=A, B=B):
            S, U = np.linalg.eigh(A)
            X1 = np.einsum("abc,ia,jb,kc->ijk", B, U.T, U.T, U.T, optimize="optimal")
            X1 /= S[:, None, None] + S[None, :, None] + S[None, None, :]
            return np.einsum("abc,ia,jb,kc->ijk", X1, U, U, U, optimize="optimal")

        methods.append(Method("eigh + np.einsum (seed)", handwritten))
        N = n**3
        if N * N * 8 <= min(DENSE_CAP_BYTES, 1 << 29):
            I = np.eye(n)

            def dense_solve(A=A, B=B, I=I):
                L = (np.kron(np.kron(A, I), I) + np.kron(np.kron(I, A), I)
                     + np.kron(np.kron(I, I), A))
                return np.linalg.solve(L, B.ravel()).reshape(B.shape)

            methods.append(Method("np.linalg.solve (assembled)", dense_solve))
            baseline = "np.linalg.solve (assembled)"
        else:
            methods.append(Method("np.linalg.solve (assembled)", None, "n^3 x n^3 too large"))
            baseline = None
        flops = 4.0 * 3 * n**4  # two transforms of three mode products
        return Case("sylvester 3d (A sym.)", f"n={n}", n, flops, baseline, methods)


def _sylvester2d_cases(sizes: list[int]) -> Iterator[Case]:
    import scipy.linalg

    import kronsolve as ks

    for n in sizes:
        rng = np.random.default_rng(n)
        a = rng.standard_normal((n, n))
        a = a @ a.T / n + np.eye(n)
        b = rng.standard_normal((n, n))
        b = b @ b.T / n + np.eye(n)
        q = rng.standard_normal((n, n))
        methods = [
            Method("kronsolve.solve_sylvester", lambda a=a, b=b, q=q: ks.solve_sylvester(a, b, q)),
            Method("scipy.linalg.solve_sylvester",
                   lambda a=a, b=b, q=q: scipy.linalg.solve_sylvester(a, b, q)),
        ]
        yield Case("sylvester 2d (sym.)", f"n={n}", n, 4.0 * 2 * n**3,
                   "scipy.linalg.solve_sylvester", methods)


def _perfect_shuffle_index(p: int, r: int) -> np.ndarray:
    return np.arange(p * r).reshape(p, r).T.ravel()


def _shuffle_cases(sizes: list[int]) -> Iterator[Case]:
    for m in sizes:
        yield from _shuffle_case(m)


def _shuffle_case(m: int) -> Iterator[Case]:
    import kronsolve as ks

    if True:
        p1, r1 = 4, m // 4
        rng = np.random.default_rng(m)
        M = rng.standard_normal((m, m))
        rows = _perfect_shuffle_index(p1, r1)
        out = np.empty_like(M)
        methods = [
            Method("kronsolve.shuffle2", lambda M=M: ks.shuffle2(M, (p1, r1), (p1, r1))),
            Method("M[perm, :][:, perm] (seed)", lambda M=M, i=rows: M[i, :][:, i]),
            Method("np.copyto (bandwidth bound)", lambda M=M, o=out: np.copyto(o, M) or o,
                   check=False),
        ]
        yield Case("shuffle2 (rows+cols)", f"{m}x{m}", m, None, "M[perm, :][:, perm] (seed)",
                   methods, tol=0.0)
        m1, n1, m2, n2 = 4, 4, m // 4, m // 4

        def seed_rearrange(M=M, m1=m1, n1=n1, m2=m2, n2=n2):
            return (M.reshape(m2, m1, n2, n1, order="F").transpose(0, 2, 1, 3)
                    .reshape(m2 * n2, m1, n1, order="F").transpose(1, 2, 0)
                    .reshape(m1 * n1, m2 * n2, order="F"))

        methods = [
            Method("kronsolve.rearrange", lambda M=M: ks.rearrange(M, (m1, n1), (m2, n2))),
            Method("reshape chain (seed RM_2)", seed_rearrange),
            Method("np.copyto (bandwidth bound)", lambda M=M, o=out: np.copyto(o, M) or o,
                   check=False),
        ]
        yield Case("rearrange", f"{m}x{m}", m, None, "reshape chain (seed RM_2)", methods, tol=0.0)


def _workloads(quick: bool) -> dict[str, Callable[[], Iterator[Case]]]:
    if quick:
        return {
            "matvec-d2": lambda: _matvec_cases(2, [64, 256]),
            "matvec-d3": lambda: _matvec_cases(3, [8, 16, 32, 64]),
            "matvec-d4": lambda: _matvec_cases(4, [8]),
            "matvec-rhs64": lambda: _matvec_cases(3, [16], k=64),
            "sylvester3d": lambda: _sylvester3d_cases([8, 12, 32, 64]),
            "sylvester2d": lambda: _sylvester2d_cases([64, 256]),
            "shuffle": lambda: _shuffle_cases([1024]),
        }
    return {
        "matvec-d2": lambda: _matvec_cases(2, [64, 128, 256, 512, 1024]),
        "matvec-d3": lambda: _matvec_cases(3, [8, 16, 25, 32, 64, 96, 128]),
        "matvec-d4": lambda: _matvec_cases(4, [8, 12, 16, 24]),
        "matvec-rhs64": lambda: _matvec_cases(3, [16, 32], k=64),
        "sylvester3d": lambda: _sylvester3d_cases([8, 12, 16, 32, 64, 128, 192]),
        "sylvester2d": lambda: _sylvester2d_cases([64, 128, 256, 512]),
        "shuffle": lambda: _shuffle_cases([1024, 4000]),
    }


WORKLOAD_NAMES = tuple(_workloads(True))


# ------------------------------------------------------------------ running


def _progress(i: int, total: int, label: str, stream) -> None:
    if stream is None:
        return
    width = 24
    done = int(width * i / max(total, 1))
    stream.write(f"\r[{'#' * done}{'.' * (width - done)}] {i}/{total} {label[:50]:<50}")
    stream.flush()
    if i == total:
        stream.write("\n")


def _machine() -> dict:
    info = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
    }
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return info


def _close(a: Any, b: Any, tol: float) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return False
    if tol == 0.0:
        return bool(np.array_equal(a, b))
    scale = max(float(np.abs(b).max()) if b.size else 0.0, 1.0)
    return bool(np.abs(a - b).max() <= tol * scale) if a.size else True


def run(selected: list[str], quick: bool, progress=sys.stderr) -> Report:
    """Run the selected workloads; return every figure."""
    report = Report(machine=_machine())
    gemm_n = 1024 if quick else 2048
    rate = gemm_rate(gemm_n)
    min_time = 0.03 if quick else 0.15
    max_time = 1.0 if quick else 6.0
    repeat = 3 if quick else 5
    wl = _workloads(quick)
    if any(name.startswith("sylvester") for name in selected):
        # Steady state, as in a long-running process: the compiled tier of small
        # eigendecompositions loaded (a process loads it by itself once small
        # LAPACK decompositions have taken about as long; see _smalleig).
        from . import _smalleig

        _smalleig._get_kernel()
    cases = [c for name in selected for c in wl[name]()]
    total = sum(len(c.methods) for c in cases)
    i = 0
    for case in cases:
        times: dict[str, float] = {}
        ref = None
        for m in case.methods:
            _progress(i, total, f"{case.workload} {case.size} {m.name}", progress)
            i += 1
            row = Row(case.workload, case.size, m.name, None, note=m.note, x=case.x)
            report.rows.append(row)
            if m.fn is None:
                continue
            try:
                result = m.fn()
            except Exception as exc:  # a peer failing is reported, not fatal
                row.note = f"failed: {type(exc).__name__}: {exc}"[:80]
                continue
            if ref is None:
                ref = result
            elif m.check and not _close(result, ref, case.tol):
                row.note = "RESULT DIFFERS from kronsolve"
            t = timeit_median(m.fn, min_time=min_time, repeat=repeat, max_time=max_time)
            row.median_s = t
            times[m.name] = t
            if case.flops is not None and m.check:
                row.gemm_share = case.flops / t  # flop/s for now; a share below
        base = None
        if case.baseline is not None:
            parts = case.baseline.split("+")
            if all(p in times for p in parts):
                base = sum(times[p] for p in parts)
        for row in report.rows:
            if row.workload == case.workload and row.size == case.size and row.median_s:
                if base is not None:
                    row.speedup = base / row.median_s
    rate = max(rate, gemm_rate(gemm_n))  # again at the end: the higher of the two
    report.gemm_rate_flops = rate
    for row in report.rows:
        if row.gemm_share is not None:
            row.gemm_share /= rate
    _progress(total, total, "done", progress)
    return report


def _fmt_time(t: float | None) -> str:
    if t is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if t >= scale:
            return f"{t / scale:.3g} {unit}"
    return f"{t / 1e-9:.3g} ns"


def format_table(report: Report) -> str:
    """The report as a fixed-width text table."""
    head = ("workload", "size", "method", "median", "speed-up", "GEMM share", "note")
    lines = []
    for r in report.rows:
        lines.append((
            r.workload, r.size, r.method, _fmt_time(r.median_s),
            "-" if r.speedup is None else f"{r.speedup:,.3g}x",
            "-" if r.gemm_share is None else f"{r.gemm_share:.0%}",
            r.note,
        ))
    widths = [max(len(h), *(len(row[j]) for row in lines)) if lines else len(h)
              for j, h in enumerate(head)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [
        f"machine: {report.machine.get('cpu', report.machine.get('processor'))}, "
        f"{report.machine.get('cpus')} CPUs; float64 GEMM rate "
        f"{report.gemm_rate_flops / 1e9:.1f} GFLOP/s (the higher of the start and the end)",
        "speed-up: over explicit np.kron (build + matvec), the dense solve, SciPy's "
        "solve_sylvester or NumPy fancy indexing, in the same run",
        "",
        fmt.format(*head).rstrip(),
        fmt.format(*("-" * w for w in widths)),
    ]
    prev = None
    for row, r in zip(lines, report.rows):
        if prev is not None and (r.workload, r.size) != prev:
            out.append("")
        prev = (r.workload, r.size)
        out.append(fmt.format(*row).rstrip())
    return "\n".join(out)


def write_json(report: Report, path: str) -> None:
    data = {
        "machine": report.machine,
        "gemm_rate_gflops": report.gemm_rate_flops / 1e9,
        "rows": [asdict(r) for r in report.rows],
    }
    with open(path, "w") as f:
        json.dump(data, f, indent=1)


def write_plot(report: Report, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    workloads = list(dict.fromkeys(r.workload for r in report.rows))
    cols = min(3, len(workloads))
    rows = (len(workloads) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.8 * rows), squeeze=False)
    for ax, wl in zip(axes.flat, workloads):
        sel = [r for r in report.rows if r.workload == wl and r.speedup is not None]
        for method in dict.fromkeys(r.method for r in sel):
            pts = sorted((r.x, r.speedup) for r in sel if r.method == method)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=method)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(wl)
        ax.set_xlabel("size (n)")
        ax.set_ylabel("speed-up over baseline")
        ax.grid(True, which="both", alpha=0.3)
        if sel:
            ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(workloads):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


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
    for opt in ("json", "plot"):
        path = getattr(args, opt)
        if path:
            problem = _check_writable(path)
            if problem:
                print(f"kronsolve bench: --{opt}: {problem}", file=sys.stderr)
                return 2
    if args.plot and not _have("matplotlib"):
        print("kronsolve bench: --plot needs matplotlib (pip install matplotlib)", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    report = run(selected, args.quick, progress=None if args.no_progress else sys.stderr)
    print(format_table(report))
    print(f"\ntotal time {time.perf_counter() - t0:.1f} s")
    try:
        if args.json:
            write_json(report, args.json)
            print(f"figures written to {args.json}")
        if args.plot:
            write_plot(report, args.plot)
            print(f"plot written to {args.plot}")
    except OSError as exc:
        print(f"kronsolve bench: cannot write the output: {exc}", file=sys.stderr)
        return 1
    return 0
