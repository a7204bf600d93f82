"""GPU benchmark (CuPy): kronsolve on CuPy arrays against NumPy and hand-written CuPy.

For a machine with an NVIDIA GPU and CuPy (``pip install cupy-cuda12x`` or
``cupy-cuda13x``, matching the CUDA driver).  In one run it

1. checks kronsolve's results on CuPy arrays against NumPy (mode products,
   Kronecker matvec, Kronecker-sum solves with symmetric and non-symmetric
   factors), and that the results stay CuPy arrays;
2. measures the GPU's float64 matrix-multiply rate (a 4096^3 GEMM);
3. times the d = 3 Kronecker matvec ``kron(A1, A2, A3) @ x`` at n = 256 and
   512, float64 and float32, and reports its flop rate as a share of the
   float64 GEMM rate (goal: at least 80% at n = 512, float64);
4. times the 3-D Sylvester solve ``solve_sylvester3d(B, A1, A2, A3)`` at
   n = 256 and 512 (float64) against a hand-written CuPy solve (``eigh`` of each
   factor, six mode products as plain GEMMs, one division), both including the
   eigendecompositions (goal: within 1.2x of the hand-written time);

and prints a table.  GPU times come from ``cupyx.profiler.benchmark`` (CUDA
events; the median of the repeats).  Without CuPy or a GPU it says so and exits
with status 0.  Run it as::

    python benchmarks/gpu.py            # or: --quick (n = 256 only)
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def _gpu_available() -> tuple[Any, str | None]:
    try:
        import cupy
    except ImportError:
        return None, ("CuPy is not installed: benchmarks/gpu.py needs an NVIDIA GPU and CuPy "
                      "(pip install cupy-cuda12x, or cupy-cuda13x for CUDA 13)")
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # no driver, no device
        return None, f"CuPy is installed but no CUDA GPU is usable: {exc}"
    if count < 1:
        return None, "CuPy is installed but no CUDA GPU is present"
    return cupy, None


def _median_gpu_ms(f: Any, repeat: int) -> float:
    """Median GPU time of ``f()`` in milliseconds (CUDA events)."""
    import numpy as np
    from cupyx.profiler import benchmark

    res = benchmark(f, n_repeat=repeat, n_warmup=3)
    return float(np.median(res.gpu_times[0])) * 1e3


def _gemm_rate(cp: Any, m: int, dtype: Any, repeat: int) -> float:
    """Flop rate of an m x m x m matrix product in ``dtype``."""
    a = cp.random.standard_normal((m, m)).astype(dtype)
    b = cp.random.standard_normal((m, m)).astype(dtype)
    t = _median_gpu_ms(lambda: a @ b, repeat)
    return 2 * m**3 / (t * 1e-3)


def _hand_matvec(cp: Any, mats: list, x: Any) -> Any:
    """``kron(A1, A2, A3) @ x`` by hand: three GEMMs that rotate the axes."""
    cur = x
    shape = tuple(A.shape[1] for A in mats)
    cur = cur.reshape(shape)
    for A in mats:
        n = cur.shape[0]
        cur = (cur.reshape(n, -1).T @ A.T).reshape(cur.shape[1:] + (A.shape[0],))
    return cur.reshape(-1)


def _hand_sylvester(cp: Any, B: Any, mats: list) -> Any:
    """Hand-written 3-D Sylvester solve: eigh, transform, divide, transform back."""
    lams, Vs = zip(*(cp.linalg.eigh(A) for A in mats))
    Y = B
    for V in Vs:  # Y x_k V_k^T, rotating the axes
        n = Y.shape[0]
        Y = (Y.reshape(n, -1).T @ V).reshape(Y.shape[1:] + (n,))
    Y /= lams[0][:, None, None] + lams[1][None, :, None] + lams[2][None, None, :]
    for V in Vs:
        n = Y.shape[0]
        Y = (Y.reshape(n, -1).T @ V.T).reshape(Y.shape[1:] + (n,))
    return Y


def _checks(cp: Any) -> list[tuple[str, bool, str]]:
    """kronsolve on CuPy against NumPy, small sizes."""
    import numpy as np

    import kronsolve as ks

    rng = np.random.default_rng(0)
    out = []

    def record(name: str, got: Any, ref: np.ndarray, tol: float = 1e-9) -> None:
        kind_ok = isinstance(got, cp.ndarray)
        g = cp.asnumpy(got) if kind_ok else np.asarray(got)
        err = float(np.max(np.abs(g - ref)) / max(1.0, float(np.max(np.abs(ref)))))
        out.append((name, kind_ok and err <= tol, f"max rel. error {err:.1e}"
                    + ("" if kind_ok else f", got {type(got).__name__}")))

    mats = [rng.standard_normal((n, n)) for n in (5, 6, 7)]
    X = rng.standard_normal((5, 6, 7))
    Xc, mats_c = cp.asarray(X), [cp.asarray(A) for A in mats]
    record("multi_mode_product", ks.multi_mode_product(Xc, mats_c),
           ks.multi_mode_product(X, mats))
    record("mode_product (NumPy factor)", ks.mode_product(cp.asarray(X), mats[1], 1),
           ks.mode_product(X, mats[1], 1))
    x = rng.standard_normal(210)
    record("kron(...) @ x", ks.kron(*[cp.asarray(A) for A in mats]) @ cp.asarray(x),
           ks.kron(*mats) @ x)
    spd = [A @ A.T + A.shape[0] * np.eye(A.shape[0]) for A in mats]
    record("solve_sylvester3d (symmetric)",
           ks.solve_sylvester3d(cp.asarray(X), *[cp.asarray(A) for A in spd], shift=0.5),
           ks.solve_sylvester3d(X, *spd, shift=0.5))
    gen = [A + 3 * A.shape[0] * np.eye(A.shape[0]) for A in mats]
    record("solve_kronsum (non-symmetric)",
           ks.solve_kronsum(cp.asarray(X), [cp.asarray(A) for A in gen]),
           ks.solve_kronsum(X, gen), tol=1e-8)
    solver = ks.KronSumSolver([cp.asarray(A) for A in spd])
    record("KronSumSolver.solve", solver.solve(cp.asarray(X), shift=2.0),
           ks.KronSumSolver(spd).solve(X, shift=2.0))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="n = 256 only, fewer repeats")
    args = p.parse_args(argv)
    cp, reason = _gpu_available()
    if cp is None:
        print(f"benchmarks/gpu.py: skipped. {reason}.")
        return 0
    import numpy as np

    import kronsolve as ks

    props = cp.cuda.runtime.getDeviceProperties(0)
    name = props["name"]
    name = name.decode() if isinstance(name, bytes) else str(name)
    print(f"GPU: {name}; CuPy {cp.__version__}; kronsolve {ks.__version__}")

    failed = False
    print("\ncorrectness against NumPy:")
    for what, ok, detail in _checks(cp):
        failed |= not ok
        print(f"  {'ok  ' if ok else 'FAIL'} {what:<34} {detail}")

    rep = 5 if args.quick else 20
    sizes = (256,) if args.quick else (256, 512)
    m = 4096
    gemm64 = _gemm_rate(cp, m, cp.float64, rep)
    gemm32 = _gemm_rate(cp, m, cp.float32, rep)
    print(f"\nGEMM {m}^3: float64 {gemm64 / 1e12:.1f} TFLOP/s, float32 {gemm32 / 1e12:.1f} "
          "TFLOP/s (the reference rate is float64's)")

    rows: list = []
    goals: list = []
    rng = cp.random.default_rng(1)
    for n in sizes:
        for dt in (cp.float64, cp.float32):
            mats = [rng.standard_normal((n, n)).astype(dt) for _ in range(3)]
            x = rng.standard_normal(n**3).astype(dt)
            K = ks.kron(*mats)
            y = K @ x
            ref = _hand_matvec(cp, mats, x)
            err = float(cp.linalg.norm(y - ref) / cp.linalg.norm(ref))
            tol = 1e-5 if dt == cp.float32 else 1e-12
            failed |= not (isinstance(y, cp.ndarray) and y.dtype == dt and err <= tol)
            t_ks = _median_gpu_ms(lambda K=K, x=x: K @ x, rep)
            t_hand = _median_gpu_ms(lambda mats=mats, x=x: _hand_matvec(cp, mats, x), rep)
            rate = 3 * 2 * n**4 / (t_ks * 1e-3)
            rows.append((f"kron matvec d=3 n={n} {np.dtype(dt).name}", t_ks, t_hand,
                         f"{rate / 1e12:.1f} TFLOP/s = {rate / gemm64:.0%} of f64 GEMM"))
            if dt == cp.float64:
                goals.append((f"matvec n={n} float64 >= 80% of the f64 GEMM rate",
                               rate / gemm64 >= 0.8, f"{rate / gemm64:.0%}"))
            del mats, x, K, y, ref
            cp.get_default_memory_pool().free_all_blocks()
    for n in sizes:
        def spd(n: int) -> Any:
            A = rng.standard_normal((n, n))
            return A @ A.T / n + cp.eye(n) * 2.0

        mats = [spd(n) for _ in range(3)]
        B = rng.standard_normal((n, n, n))
        X = ks.solve_sylvester3d(B, *mats)
        ref = _hand_sylvester(cp, B, mats)
        err = float(cp.linalg.norm(X - ref) / cp.linalg.norm(ref))
        failed |= not (isinstance(X, cp.ndarray) and err <= 1e-10)
        del X, ref
        t_ks = _median_gpu_ms(lambda B=B, mats=mats: ks.solve_sylvester3d(B, *mats), rep)
        t_hand = _median_gpu_ms(lambda B=B, mats=mats: _hand_sylvester(cp, B, mats), rep)
        rows.append((f"solve_sylvester3d n={n} float64", t_ks, t_hand,
                     f"{t_ks / t_hand:.2f}x the hand-written solve (goal <= 1.2x)"))
        goals.append((f"solve_sylvester3d n={n} within 1.2x of the hand-written solve",
                       t_ks <= 1.2 * t_hand, f"{t_ks / t_hand:.2f}x"))
        del mats, B
        cp.get_default_memory_pool().free_all_blocks()

    print(f"\n{'case':<34} {'kronsolve':>11} {'by hand':>11}  notes")
    for case, t_ks, t_hand, note in rows:
        print(f"{case:<34} {t_ks:>8.2f} ms {t_hand:>8.2f} ms  {note}")
    print("\ngoals (those at n = 512 are the issue's):")
    for what, met, value in goals:
        print(f"  {'met   ' if met else 'MISSED'} {what}: {value}")
    if failed:
        print("FAILED: a result differs from the reference (see above)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
