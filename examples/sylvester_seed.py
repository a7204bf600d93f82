"""Seed notebook, cells 123-127: the tensor Sylvester equation through kronsolve.

The seed builds B = X x1 A + X x2 A + X x3 A for a random X and a symmetric A
(cell 123), then recovers X by hand with the fast diagonalization method
(cells 125-127): eigendecompose A = U diag(S) U^T, transform B by U^T in every
mode, divide by the sums S_i + S_j + S_k, transform back by U.  Here the same is
done by ``kronsolve.solve_sylvester3d`` (and ``solve_kronsum`` / ``kronsum``),
and the seed's own hand-written steps are kept as the reference.  Cell 124 (the
diagonal-scaling identities the division relies on) is checked too.

Finally the solve of a 3-D Kronecker sum is timed against ``np.linalg.solve`` of
the assembled n^3 x n^3 system.

Run:  python examples/sylvester_seed.py [--n 16] [--quick]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from _checks import Checks, best_time, fmt_time, require

import kronsolve
from kronsolve import multi_mode_product


def sylvester_op(X, A1, A2, A3):
    """X x1 A1 + X x2 A2 + X x3 A3 with kronsolve mode products."""
    return (
        multi_mode_product(X, [A1], modes=[0])
        + multi_mode_product(X, [A2], modes=[1])
        + multi_mode_product(X, [A3], modes=[2])
    )


def spd(n, rng, lo=1.0, hi=2.0):
    """Q diag(lam) Q^T with eigenvalues in [lo, hi]: a well-conditioned factor."""
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return (Q * rng.uniform(lo, hi, n)) @ Q.T


def cells123_127(c: Checks, rng) -> None:
    n = 4
    c.section(f"cell 123: B = X x1 A + X x2 A + X x3 A, n = {n}, A = A^T random")
    X = rng.standard_normal((n, n, n))
    A = rng.standard_normal((n, n))
    A = A + A.T
    I = np.eye(n)
    # the seed's einsum construction of B
    B = (
        np.einsum("abc,ia,jb,kc->ijk", X, A, I, I, optimize="optimal")
        + np.einsum("abc,ia,jb,kc->ijk", X, I, A, I, optimize="optimal")
        + np.einsum("abc,ia,jb,kc->ijk", X, I, I, A, optimize="optimal")
    )
    c.close("seed einsum B == X x1 A + X x2 A + X x3 A (multi_mode_product)",
            sylvester_op(X, A, A, A), B, 1e-13)
    K = kronsolve.kronsum(A, A, A)
    c.close("kronsum(A, A, A) @ X.ravel() == B.ravel()", K @ X.ravel(), B.ravel(), 1e-13)
    dense = np.kron(np.kron(A, I), I) + np.kron(np.kron(I, A), I) + np.kron(np.kron(I, I), A)
    c.close("kronsum(A, A, A).toarray() == A(x)I(x)I + I(x)A(x)I + I(x)I(x)A",
            K.toarray(), dense, 1e-14)

    c.section("cell 124: diagonal scaling without forming diag(d)")
    d = rng.standard_normal(n)
    C = rng.standard_normal((n, n))
    c.close("C @ diag(d) == C * d", C * d, C @ np.diag(d), 1e-15)
    c.close("diag(d) @ C == (C.T * d[None, :]).T", (C.T * d[None, :]).T, np.diag(d) @ C, 1e-15)

    c.section("cells 125-127: fast diagonalization, the seed's way and kronsolve's")
    S, U = np.linalg.eigh(A)
    sums = S[:, None, None] + S[None, :, None] + S[None, None, :]
    print(f"eigenvalues of A: {np.round(S, 4)}; "
          f"smallest |S_i + S_j + S_k| = {np.abs(sums).min():.3e}")
    # the seed, verbatim (Fortran-order vec, explicit n^3 x n^3 diagonal)
    X1 = np.einsum("abc,ia,jb,kc->ijk", B, U.T, U.T, U.T, optimize="optimal")
    D = (np.kron(np.kron(I, I), np.diag(S)) + np.kron(np.kron(I, np.diag(S)), I)
         + np.kron(np.kron(np.diag(S), I), I))
    X2 = ((np.diagonal(D) ** -1) * X1.flatten("F")).reshape(n, n, n, order="F")
    X_seed = np.einsum("abc,ia,jb,kc->ijk", X2, U, U, U, optimize="optimal")
    c.close("seed's hand-written fast diagonalization recovers X", X_seed, X, 1e-9)
    # the same three steps with kronsolve's mode products, no n^3 x n^3 matrix
    X_modes = multi_mode_product(
        multi_mode_product(B, [U, U, U], transpose=True) / sums, [U, U, U]
    )
    c.close("the same steps with multi_mode_product recover X", X_modes, X, 1e-9)
    # and in one call
    X_found = kronsolve.solve_sylvester3d(B, A)
    c.close("kronsolve.solve_sylvester3d(B, A) recovers X", X_found, X, 1e-9)
    c.close("kronsolve.solve_kronsum(B, [A, A, A]) recovers X",
            kronsolve.solve_kronsum(B, [A, A, A]), X, 1e-9)
    c.close("kronsum(A, A, A).solve(B.ravel()) recovers X.ravel()",
            K.solve(B.ravel()), X.ravel(), 1e-9)
    c.close("kronsum(A, A, A).eigvals() == the sums S_i + S_j + S_k",
            np.sort(K.eigvals().real), np.sort(sums.ravel()), 1e-12)
    B_before = B.copy()
    kronsolve.solve_sylvester3d(B, A)
    c.equal("the caller's B is left untouched", B, B_before)


def distinct_factors(c: Checks, rng, n: int) -> None:
    c.section(f"distinct factors and a shift, n = {n}: against the assembled dense system")
    A1, A2, A3 = spd(n, rng), spd(n + 1, rng), spd(n + 2, rng)
    X = rng.standard_normal((n, n + 1, n + 2))
    shift = 0.5
    B = sylvester_op(X, A1, A2, A3) + shift * X
    Kd = kronsolve.kronsum(A1, A2, A3).toarray() + shift * np.eye(X.size)
    c.close("kronsum(A1, A2, A3) @ X.ravel() + shift X == B",
            kronsolve.kronsum(A1, A2, A3) @ X.ravel() + shift * X.ravel(), B.ravel(), 1e-13)
    x_dense = np.linalg.solve(Kd, B.ravel()).reshape(X.shape)
    c.close("np.linalg.solve of the assembled system recovers X", x_dense, X, 1e-10)
    c.close("solve_sylvester3d(B, A1, A2, A3, shift=0.5) recovers X",
            kronsolve.solve_sylvester3d(B, A1, A2, A3, shift=shift), X, 1e-10)
    c.close("solve_kronsum(B, [A1, A2, A3], shift=0.5) recovers X",
            kronsolve.solve_kronsum(B, [A1, A2, A3], shift=shift), X, 1e-10)


def timing(c: Checks, rng, n: int) -> None:
    c.section(f"timing, n = {n}: dense solve of the n^3 x n^3 system vs solve_sylvester3d")
    A = spd(n, rng)
    X = rng.standard_normal((n, n, n))
    B = sylvester_op(X, A, A, A)
    Kd = kronsolve.kronsum(A, A, A).toarray()
    t_dense = best_time(lambda: np.linalg.solve(Kd, B.ravel()), repeat=1)
    t_fast = best_time(lambda: kronsolve.solve_sylvester3d(B, A), repeat=10)
    c.close("solve_sylvester3d(B, A) recovers X", kronsolve.solve_sylvester3d(B, A), X, 1e-10)
    print(f"  np.linalg.solve, assembled {n**3} x {n**3} matrix  {fmt_time(t_dense):>12}")
    print(f"  kronsolve.solve_sylvester3d(B, A)                 {fmt_time(t_fast):>12}"
          f"   ({t_dense / t_fast:,.0f}x faster)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=16, help="size for the timing (dense is O(n^9))")
    parser.add_argument("--quick", action="store_true", help="n = 8")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    require("solve_sylvester3d", "solve_kronsum", "kronsum")
    n = 8 if args.quick else args.n
    rng = np.random.default_rng(args.seed)
    c = Checks("Sylvester solve (seed cells 123-127)")
    cells123_127(c, rng)
    distinct_factors(c, rng, 5)
    timing(c, rng, n)
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())
