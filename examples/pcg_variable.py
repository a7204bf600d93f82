"""Conjugate gradients for a variable-coefficient problem, preconditioned by a Kronecker sum.

    -div(k(x, y, z) grad u) = 1  on (0, 1)^3,   u = 0 on the boundary,

with the coefficient k = c^(s/2), s = sin(2πx) sin(3πy) sin(πz + 0.3), varying
between 1/√c and √c (c, the contrast, is 10 by default).  Finite volumes on n^3
interior points give a sparse symmetric positive definite matrix
``A = Σ_k D_kᵀ diag(k on the faces) D_k / h²`` (a ``scipy.sparse`` matrix), which is
not a Kronecker sum.  The constant-coefficient Laplacian ``P = T ⊕ T ⊕ T`` is one,
and ``KronSumSolver([T, T, T]).aslinearoperator()`` applies ``P⁻¹`` in two tensor
transforms: the preconditioner of ``scipy.sparse.linalg.cg``.

Because ``xᵀAx / xᵀPx`` lies between the smallest and largest face coefficient,
the preconditioned system has condition number at most their ratio whatever n:
the number of iterations stays flat as the mesh is refined, while plain CG's
grows like n.  The script prints both counts and times for each n, checks that
both solutions have a small residual, that the preconditioned count is within
CG's textbook bound, and that the solution equals ``scipy.sparse.linalg.spsolve``'s
at small n.

Default sizes 16 32 64 (up to 262,144 unknowns); ``--quick`` uses 8 16.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from _checks import Checks, fmt_time, laplacian_1d

import kronsolve as ks

RTOL = 1e-8


def coefficient(x, y, z, contrast: float) -> np.ndarray:
    s = np.sin(2 * np.pi * x) * np.sin(3 * np.pi * y) * np.sin(np.pi * z + 0.3)
    return contrast ** (s / 2)


def variable_operator(n: int, contrast: float) -> tuple[sp.csr_matrix, float]:
    """The finite-volume matrix of -div(k grad u) on n^3 points, and max/min face k."""
    h = 1.0 / (n + 1)
    nodes = np.arange(1, n + 1) * h
    faces = (np.arange(n + 1) + 0.5) * h
    # D: (n + 1) x n differences across the faces, the boundary faces included
    D = sp.eye(n + 1, n, format="csr") - sp.eye(n + 1, n, k=-1, format="csr")
    I = sp.eye(n, format="csr")
    A = sp.csr_matrix((n**3, n**3))
    kmin, kmax = np.inf, 0.0
    for axis in range(3):
        ops = [I, I, I]
        ops[axis] = D
        Dk = sp.kron(sp.kron(ops[0], ops[1]), ops[2], format="csr")
        grids = [nodes, nodes, nodes]
        grids[axis] = faces
        kf = coefficient(*np.meshgrid(*grids, indexing="ij"), contrast).ravel()
        kmin, kmax = min(kmin, kf.min()), max(kmax, kf.max())
        A = A + Dk.T @ sp.diags(kf) @ Dk
    return (A / h**2).tocsr(), kmax / kmin


def cg_bound(kappa_pre: float, kappa_a: float) -> int:
    """Iterations after which CG's error bound guarantees ||r|| <= RTOL ||b|| (x0 = 0).

    ``||e_k||_A <= 2 q^k ||x||_A`` with ``q = (√κ - 1) / (√κ + 1)`` for the
    preconditioned condition number κ, and ``||r|| / ||b|| <= √cond(A) ||e||_A / ||x||_A``.
    """
    q = (np.sqrt(kappa_pre) - 1) / (np.sqrt(kappa_pre) + 1)
    return int(np.ceil(np.log(2 * np.sqrt(kappa_a) / RTOL) / -np.log(q)))


def run_cg(A, b, M=None) -> tuple[np.ndarray, int, float]:
    count = [0]

    def callback(_xk):
        count[0] += 1

    t0 = time.perf_counter()
    x, info = spla.cg(A, b, rtol=RTOL, atol=0.0, maxiter=20 * b.size, M=M, callback=callback)
    elapsed = time.perf_counter() - t0
    if info != 0:
        raise RuntimeError(f"cg did not converge (info = {info})")
    return x, count[0], elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[16, 32, 64],
                        help="interior points per axis (default 16 32 64)")
    parser.add_argument("--contrast", type=float, default=10.0,
                        help="max k / min k of the coefficient (default 10)")
    parser.add_argument("--quick", action="store_true", help="sizes 8 16")
    args = parser.parse_args()
    sizes = [8, 16] if args.quick else sorted(args.sizes)
    if min(sizes) < 2 or args.contrast < 1:
        parser.error(f"need sizes >= 2 and --contrast >= 1, got {sizes} and {args.contrast}")
    c = Checks(f"-div(k grad u) = 1 with contrast {args.contrast:g}: CG with and without "
               "a Kronecker-sum preconditioner")
    print(f"{'n':>4} {'unknowns':>9}  {'plain CG':>8} {'time':>10}  {'with P':>6} {'time':>10}  "
          f"{'bound':>5}  {'residual':>8}")
    counts = []
    for n in sizes:
        A, kappa_pre = variable_operator(n, args.contrast)
        b = np.ones(n**3)
        T = laplacian_1d(n)
        P = ks.KronSumSolver([T, T, T]).aslinearoperator()
        x_plain, it_plain, t_plain = run_cg(A, b)
        x_pre, it_pre, t_pre = run_cg(A, b, M=P)
        # cond(A) <= kappa_pre * cond(T (+) T (+) T) = kappa_pre * cot^2(pi h / 2)
        bound = cg_bound(kappa_pre, kappa_pre / np.tan(np.pi / (2 * (n + 1))) ** 2)
        res = np.linalg.norm(b - A @ x_pre) / np.linalg.norm(b)
        counts.append(it_pre)
        print(f"{n:>4} {n**3:>9,}  {it_plain:>8} {fmt_time(t_plain):>10}  {it_pre:>6} "
              f"{fmt_time(t_pre):>10}  {bound:>5}  {res:>8.1e}")
        c.true(f"n = {n}: preconditioned residual below {RTOL:.0e}", res <= RTOL)
        c.true(f"n = {n}: {it_pre} preconditioned iterations within CG's bound {bound}",
               it_pre <= bound)
        c.true(f"n = {n}: the preconditioner saves iterations", it_pre < it_plain,
               f"{it_pre} against {it_plain}")
        c.close(f"n = {n}: plain and preconditioned CG agree", x_pre, x_plain, rtol=1e-6)
        if n <= 20:
            c.close(f"n = {n}: preconditioned CG == scipy.sparse.linalg.spsolve", x_pre,
                    spla.spsolve(A.tocsc(), b), rtol=1e-6)
    print(f"\npreconditioned iterations {counts}: flat in n (the bound depends on n only "
          "through log cond(A))")
    return c.finish()


if __name__ == "__main__":
    raise SystemExit(main())
