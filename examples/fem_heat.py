"""The heat equation with finite elements: mass matrices, ``shift`` and backward Euler.

Linear (P1) finite elements on a uniform mesh of the unit cube, u = 0 on the
boundary, n interior nodes per axis (h = 1 / (n + 1)).  In 1-D the stiffness and
mass matrices are

    K1 = tridiag(-1, 2, -1) / h,        M1 = h tridiag(1, 4, 1) / 6,

and in 3-D (tensor-product elements) the stiffness matrix is
``K = K1⊗M1⊗M1 + M1⊗K1⊗M1 + M1⊗M1⊗K1`` and the mass matrix ``M = M1⊗M1⊗M1``.
The semi-discrete heat equation M u' + K u = 0 stepped by backward Euler is

    (K + M / dt) u_new = M u / dt,

the generalized (finite-element) Kronecker-sum form with ``shift = 1 / dt``:
``KronSumSolver([K1, K1, K1], masses=[M1, M1, M1])`` factorizes once (three
generalized eigenproblems of size n), and every step, for any ``dt``, is one
``solve(..., shift=1 / dt)``: two tensor transforms and a division.  The script
checks

1. one step against ``np.linalg.solve`` of the assembled matrix (small mesh,
   a different size per axis);
2. the lowest eigenmode, which backward Euler damps by exactly 1 / (1 + dt λ_h)
   per step, and λ_h against the PDE's 3π²;
3. a rough initial state against the exact semi-discrete solution
   ``exp(-t M⁻¹K) u0`` (the Kronecker product of three n x n exponentials):
   first order in dt, with two step sizes on one factorization;

and prints the time of the factorization beside that of a step.

Default n = 64 (262,144 unknowns); ``--quick`` uses n = 10.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.linalg
from _checks import Checks, fmt_time, second_difference

import kronsolve as ks


def p1_matrices(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Stiffness and mass matrices of linear elements on n interior nodes of (0, 1)."""
    h = 1.0 / (n + 1)
    K1 = second_difference(n) / h
    M1 = h / 6 * (4 * np.eye(n) + np.eye(n, k=1) + np.eye(n, k=-1))
    return K1, M1


def dense_step(sizes, dt: float, rhs: np.ndarray) -> np.ndarray:
    """Backward-Euler solve (K + M/dt) u = rhs with the assembled N x N matrices."""
    Ks, Ms = zip(*(p1_matrices(n) for n in sizes))
    K = (np.kron(np.kron(Ks[0], Ms[1]), Ms[2]) + np.kron(np.kron(Ms[0], Ks[1]), Ms[2])
         + np.kron(np.kron(Ms[0], Ms[1]), Ks[2]))
    M = np.kron(np.kron(Ms[0], Ms[1]), Ms[2])
    return np.linalg.solve(K + M / dt, rhs)


def backward_euler(solver, mass, u0: np.ndarray, dt: float, steps: int) -> np.ndarray:
    """``steps`` backward-Euler steps of M u' + K u = 0, one shifted solve each."""
    u = u0
    for _ in range(steps):
        u = solver.solve(mass @ u / dt, shift=1.0 / dt)
    return u


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64, help="interior nodes per axis (default 64)")
    parser.add_argument("--steps", type=int, default=40,
                        help="backward-Euler steps to t = 0.02 (default 40; then twice as many)")
    parser.add_argument("--quick", action="store_true", help="n = 10")
    args = parser.parse_args()
    if args.n < 2 or args.steps < 1:
        parser.error(f"need --n >= 2 and --steps >= 1, got --n {args.n} --steps {args.steps}")
    n = 10 if args.quick else args.n
    steps, t_end = args.steps, 0.02
    h = 1.0 / (n + 1)
    c = Checks(f"Heat equation, P1 finite elements on {n}^3 nodes, backward Euler")

    c.section("1. one step against the assembled dense system")
    sizes = (5, 6, 7)
    dt = t_end / steps
    small = ks.KronSumSolver([p1_matrices(m)[0] for m in sizes],
                             masses=[p1_matrices(m)[1] for m in sizes])
    rhs = np.random.default_rng(1).standard_normal(sizes)
    c.close(f"KronSumSolver(masses=...).solve(b, shift=1/dt), sizes {sizes}, vs np.linalg.solve",
            small.solve(rhs, shift=1 / dt).ravel(), dense_step(sizes, dt, rhs.ravel()),
            rtol=1e-12)

    K1, M1 = p1_matrices(n)
    t0 = time.perf_counter()
    solver = ks.KronSumSolver([K1, K1, K1], masses=[M1, M1, M1])
    t_factor = time.perf_counter() - t0
    mass = ks.kron(M1, M1, M1)
    print(f"{n}^3 = {n**3:,} unknowns; factorized once in {fmt_time(t_factor)}")

    c.section("2. the lowest eigenmode decays by 1 / (1 + dt lambda_h) per step")
    x = np.arange(1, n + 1) * h
    s = np.sin(np.pi * x)
    mode = np.einsum("i,j,k->ijk", s, s, s).ravel()   # flat vectors, C order
    lam = 3 * 6 * (1 - np.cos(np.pi * h)) / (h**2 * (2 + np.cos(np.pi * h)))
    u = backward_euler(solver, mass, mode, dt, steps)
    c.close(f"{steps} steps: u == (1 + dt lambda_h)^-{steps} u0", u,
            (1 + dt * lam) ** -steps * mode, rtol=1e-10)
    pde = np.exp(-3 * np.pi**2 * t_end)
    print(f"lambda_h = {lam:.6f}, the PDE's 3 pi^2 = {3 * np.pi**2:.6f}; at t = {t_end}: "
          f"discrete amplitude {(1 + dt * lam) ** -steps:.6f}, PDE exp(-3 pi^2 t) = {pde:.6f}")
    c.true("lambda_h approximates 3 pi^2 to O(h^2)",
           abs(lam / (3 * np.pi**2) - 1) <= np.pi**2 * h**2 / 6,
           f"relative difference {abs(lam / (3 * np.pi**2) - 1):.2e}, h^2 = {h**2:.2e}")

    c.section("3. a rough initial state against exp(-t M^-1 K) u0")
    u0 = np.random.default_rng(0).standard_normal(n**3)
    C1 = scipy.linalg.solve(M1, K1)          # M^-1 K = C1 (+) C1 (+) C1
    u_exact = ks.kronsum(C1, C1, C1).expm(-t_end) @ u0
    errs, elapsed = [], 0.0
    for m in (steps, 2 * steps):             # two step sizes, the same factorization
        t0 = time.perf_counter()
        u = backward_euler(solver, mass, u0, t_end / m, m)
        elapsed += time.perf_counter() - t0
        errs.append(np.linalg.norm(u - u_exact) / np.linalg.norm(u_exact))
        print(f"dt = {t_end / m:.2e} ({m} steps): relative difference {errs[-1]:.3e}")
    order = np.log2(errs[0] / errs[1])
    print(f"observed order in time: {order:.2f}")
    c.true("backward Euler converges at first order", 0.8 < order < 1.2, f"order {order:.2f}")

    c.section("4. cost")
    print(f"factorization (once, for every dt): {fmt_time(t_factor)}; {3 * steps} steps "
          f"(mass product + shifted solve each) in {fmt_time(elapsed)}, "
          f"{fmt_time(elapsed / (3 * steps))} per step")
    return c.finish()


if __name__ == "__main__":
    raise SystemExit(main())
