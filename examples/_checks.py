"""Tiny PASS/FAIL bookkeeping, grid matrices and the seed's data, shared by the example scripts.

Not an example itself; the tests read the seed data from here too.
"""

from __future__ import annotations

import sys
import time

import numpy as np


class Checks:
    """Collect named checks, print each as ``[PASS]``/``[FAIL]``, exit non-zero on failure."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.failed: list[str] = []
        self.count = 0
        print(f"=== {title} ===")

    def section(self, heading: str) -> None:
        print(f"\n--- {heading} ---")

    def true(self, name: str, ok: bool, detail: str = "") -> bool:
        """Record a boolean check (an exact comparison or a bound already evaluated)."""
        ok = bool(ok)
        self.count += 1
        if not ok:
            self.failed.append(name)
        print(f"[{'PASS' if ok else 'FAIL'}] {name}" + (f": {detail}" if detail else ""))
        return ok

    def close(self, name: str, got, want, rtol: float = 1e-6) -> bool:
        """Check ``||got - want|| <= rtol * max(||want||, 1)`` and print the relative error."""
        got = np.asarray(got)
        want = np.asarray(want)
        if got.shape != want.shape:
            return self.true(name, False, f"shape {got.shape} != {want.shape}")
        err = float(np.linalg.norm(got - want)) / max(float(np.linalg.norm(want)), 1.0)
        return self.true(name, err <= rtol, f"relative error {err:.2e} (tolerance {rtol:.0e})")

    def equal(self, name: str, got, want) -> bool:
        """Exact (element-wise ==) comparison, for integer, string and permutation results."""
        got = np.asarray(got)
        want = np.asarray(want)
        ok = got.shape == want.shape and bool(np.all(got == want))
        return self.true(name, ok, "exactly equal" if ok else "NOT equal")

    def finish(self) -> int:
        print()
        if self.failed:
            print(f"{self.title}: {len(self.failed)} of {self.count} checks FAILED:")
            for name in self.failed:
                print(f"  - {name}")
            return 1
        print(f"{self.title}: all {self.count} checks PASSED")
        return 0


def grid_size(doc: str, default: int, quick: int) -> int:
    """The ``--n`` of a script's command line (``--quick``: ``quick``)."""
    import argparse

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--n", type=int, default=default,
                        help=f"interior points per axis (default {default})")
    parser.add_argument("--quick", action="store_true", help=f"n = {quick}")
    args = parser.parse_args()
    return quick if args.quick else args.n


def best_time(fn, repeat: int = 3) -> float:
    """Best wall time of ``repeat`` calls of ``fn()`` in seconds (like ``%timeit``'s best)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def fmt_time(t: float) -> str:
    if t >= 1:
        return f"{t:.3f} s"
    if t >= 1e-3:
        return f"{t * 1e3:.3f} ms"
    return f"{t * 1e6:.1f} us"


def second_difference(n: int) -> np.ndarray:
    """``tridiag(-1, 2, -1)``, the n x n second-difference matrix (Dirichlet ends)."""
    return 2 * np.eye(n) - np.eye(n, k=1) - np.eye(n, k=-1)


def laplacian_1d(n: int) -> np.ndarray:
    """Second-order finite differences for -u'' on n interior points of (0, 1)."""
    return second_difference(n) * (n + 1) ** 2


def require(*names: str) -> None:
    """Exit with a clear message (status 2) when kronsolve lacks one of ``names``."""
    import kronsolve

    missing = [n for n in names if not hasattr(kronsolve, n)]
    if missing:
        have = f"kronsolve {kronsolve.__version__}"
        print(f"{have} lacks {', '.join(missing)}; cannot run this example")
        sys.exit(2)


def seed_cell117() -> tuple[np.ndarray, list[np.ndarray], tuple[int, int], tuple[int, int]]:
    """The seed's cell 117: ``A = kron(B1, C1) + kron(B2, C2)``, a 12 x 6 integer matrix.

    Returns ``A``, ``[B1, C1, B2, C2]``, ``(m1, n1)`` and ``(m2, n2)``.
    """
    m1, m2, n1, n2 = 4, 3, 3, 2
    A = np.array([[i + j for i in range(1, n1 * n2 + 1)] for j in range(1, m1 * m2 + 1)])
    B1 = np.ones((m1, n1), dtype=int)
    C1 = np.array([[i + j for j in range(1, n2 + 1)] for i in range(1, m2 + 1)])
    B2 = np.array([[m2 * i + n2 * j for j in range(n1)] for i in range(m1)])
    C2 = np.ones((m2, n2), dtype=int)
    return A, [B1, C1, B2, C2], (m1, n1), (m2, n2)
