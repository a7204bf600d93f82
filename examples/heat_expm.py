"""The heat equation u' = Δu on the unit cube, stepped exactly with matrix exponentials.

With the second-order Laplacian on n interior points per axis, the semi-discrete
system u' = (T ⊕ T ⊕ T) u has the solution u(t) = exp(t·(T ⊕ T ⊕ T)) u0, and the
exponential of a Kronecker sum is the Kronecker product of the factor
exponentials: ``kronsum(T, T, T).expm(t)`` holds three n x n matrices, and
``expm_multiply(u0, times)`` gives u at many times with one forward transform.
The script checks the result against

* the exact decay of a discrete eigenmode (exp(-λ t) times the mode), and
* Crank–Nicolson with small steps (second order in time, converging to it),

and prints the time of one application of exp(tK) beside one Kronecker matvec.

Default n = 48 (110,592 unknowns); ``--quick`` uses n = 12.
"""

from __future__ import annotations

import numpy as np
from _checks import Checks, best_time, fmt_time, grid_size, laplacian_1d

import kronsolve as ks


def main() -> int:
    n = grid_size(__doc__, 48, quick=12)
    h = 1.0 / (n + 1)
    c = Checks(f"Heat equation on {n}^3 interior points, exact steps with expm")
    T = -laplacian_1d(n)
    K = ks.kronsum(T, T, T)
    x = np.linspace(h, 1 - h, n)
    sx, s2x = np.sin(np.pi * x), np.sin(2 * np.pi * x)
    mode = np.einsum("i,j,k->ijk", sx, s2x, sx).ravel()
    lam = 4 / h**2 * (2 * np.sin(np.pi * h / 2) ** 2 + np.sin(np.pi * h) ** 2)
    times = np.array([0.0, 0.002, 0.01, 0.05])

    c.section("1. an eigenmode decays as exp(-lambda t)")
    U = K.expm_multiply(mode, times)
    for i, t in enumerate(times):
        c.close(f"t = {t}: u(t) == exp(-lambda t) u0", U[i], np.exp(-lam * t) * mode,
                rtol=1e-10)

    c.section("2. a rough initial state against Crank-Nicolson")
    rng = np.random.default_rng(0)
    u0 = rng.standard_normal(n**3)
    t_end = 0.002
    E = K.expm(t_end)              # the three factor exponentials
    u_exact = E @ u0
    c.close("expm(t) @ u0 == expm_multiply(u0, t)", u_exact, K.expm_multiply(u0, t_end),
            rtol=1e-10)
    # Crank-Nicolson, each step a shifted Kronecker-sum solve: (I - dt/2 K) u+ = (I + dt/2 K) u
    errs = []
    for steps in (20, 40):
        dt = t_end / steps
        solver = ks.KronSumSolver([-0.5 * dt * T] * 3)
        u = u0.copy()
        for _ in range(steps):
            u = solver.solve(u + 0.5 * dt * (K @ u), shift=1.0)
        errs.append(np.linalg.norm(u - u_exact) / np.linalg.norm(u_exact))
        print(f"Crank-Nicolson, {steps} steps: relative difference {errs[-1]:.2e}")
    order = np.log2(errs[0] / errs[1])
    print(f"observed order in time: {order:.2f}")
    c.true("Crank-Nicolson converges to the exact step at second order", 1.7 < order < 2.3,
           f"order {order:.2f}")

    c.section("3. cost")
    t_apply = best_time(lambda: E @ u0)
    M = ks.kron(T, T, T)
    t_mv = best_time(lambda: M @ u0)
    print(f"exp(tK) @ u0: {fmt_time(t_apply)}; one Kronecker matvec: {fmt_time(t_mv)} "
          "(the timed goal lives in benchmarks/bench_spectral.py)")
    return c.finish()


if __name__ == "__main__":
    raise SystemExit(main())
