"""The accuracy table of the README (non-symmetric factors): ``python benchmarks/accuracy.py``.

For each case a solution ``X`` is drawn, ``B = op(X)`` is formed with the
assembled matrix, and the relative forward errors of ``kronsolve.solve_kronsum``
(default method) and of ``np.linalg.solve`` on the assembled system are
printed side by side, with the condition number of the system and the
warnings kronsolve issued.  ``--method eig`` shows the eigenvector route (which
checks its residuals and falls back to the Schur route).
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np

import kronsolve as ks


def convection_diffusion(n: int, pe: float, scheme: str = "upwind") -> np.ndarray:
    """``(2I − E − Eᵀ)/h² + Pe·(I − E)/h`` (upwind) or ``+ Pe·(Eᵀ − E)/(2h)`` (central)."""
    h = 1.0 / (n + 1)
    E = np.eye(n, k=-1)
    A = (2 * np.eye(n) - E - E.T) / h**2
    if scheme == "upwind":
        return A + pe * (np.eye(n) - E) / h
    return A + pe * (E.T - E) / (2 * h)


def cases() -> list[tuple[str, int, list[np.ndarray]]]:
    rng = np.random.default_rng(0)
    out = [
        ("upwind, Pe = 100", 3, [convection_diffusion(16, 100.0)] * 3),
        ("upwind, Pe = 150", 3, [convection_diffusion(14, 150.0)] * 3),
        ("upwind, Pe = 1000", 3, [convection_diffusion(16, 1000.0)] * 3),
        ("upwind, Pe = 1e4", 3, [convection_diffusion(16, 1e4)] * 3),
        ("central, Pe = 1e4", 2, [convection_diffusion(40, 1e4, "central")] * 2),
        ("upwind, Pe = 10, 100, 1000", 3,
         [convection_diffusion(14, pe) for pe in (10.0, 100.0, 1000.0)]),
        ("pure upwind advection (I − E)/h (defective)", 3,
         [(np.eye(12) - np.eye(12, k=-1)) * 13.0] * 3),
        ("random non-symmetric", 4, [rng.standard_normal((7, 7)) + 3 * np.eye(7)
                                     for _ in range(4)]),
    ]
    return [(name, d, mats) for name, d, mats in out]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--method", default="auto", choices=["auto", "eig", "schur"])
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    print("| case | d, n | cond | kronsolve | dense `np.linalg.solve` | warned? |")
    print("|---|---|---|---|---|---|")
    for name, d, mats in cases():
        n = mats[0].shape[0]
        K = ks.kronsum(*mats).toarray()
        X = rng.standard_normal((n,) * d)
        B = (K @ X.ravel()).reshape(X.shape)
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            Xk = ks.solve_kronsum(B, mats, method=args.method)
        Xd = np.linalg.solve(K, B.ravel())
        err_k = np.linalg.norm(Xk - X) / np.linalg.norm(X)
        err_d = np.linalg.norm(Xd - X.ravel()) / np.linalg.norm(X)
        warned = "; ".join(sorted({type(x.message).__name__ for x in w})) or "no"
        print(f"| {name} | {d}, {n} | {np.linalg.cond(K):.2g} | {err_k:.1e} | {err_d:.1e} "
              f"| {warned} |")


if __name__ == "__main__":
    main()
