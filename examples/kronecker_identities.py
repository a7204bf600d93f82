"""Seed notebook, cells 117-120 and 128: Kronecker-product identities through kronsolve.

* Cell 117: a 12 x 6 integer matrix that is exactly kron(B1, C1) + kron(B2, C2),
  held as a lazy ``KronProductSum``.  (Its Kronecker-product SVD, which recovers
  the rank 2, is in ``shuffle_rearrange.py``.)
* Cells 118-120: ``kron(U, U, U)^T vec(B)`` equals a three-mode product of B.  The
  seed forms the n^3 x n^3 matrix with ``np.kron`` (2 s at n = 25); kronsolve
  never forms it.  Both are timed and printed.
* Cell 128: ``U B U^T == B x1 U x2 U``, i.e. ``kron(U, U) @ B.ravel()``.

Conventions: kronsolve vectorizes tensors in C order (``X.ravel()``),
``kron(A1, ..., Ad) @ X.ravel() == multi_mode_product(X, [A1, ..., Ad]).ravel()``;
the seed uses Fortran order (``flatten('F')``).  Both are checked below.

Run:  python examples/kronecker_identities.py [--n 16] [--quick]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from _checks import Checks, best_time, fmt_time, seed_cell117

import kronsolve
from kronsolve import kron, multi_mode_product


def cell117(c: Checks) -> None:
    c.section("cell 117: A = kron(B1, C1) + kron(B2, C2), lazily")
    A, (B1, C1, B2, C2), (m1, n1), (m2, n2) = seed_cell117()
    K = kron(B1, C1) + kron(B2, C2)
    print(f"A ({A.shape[0]} x {A.shape[1]}):\n{A}\nlazy sum: {K!r}")
    c.equal("np.kron(B1, C1) + np.kron(B2, C2) == A (the seed's check)",
            np.kron(B1, C1) + np.kron(B2, C2), A)
    c.equal("(kron(B1, C1) + kron(B2, C2)).toarray() == A", K.toarray(), A)
    x = np.arange(1.0, n1 * n2 + 1)
    c.close("(kron(B1, C1) + kron(B2, C2)) @ x == A @ x", K @ x, A @ x, 1e-14)


def cells118_120(c: Checks, n: int, rng) -> None:
    c.section(f"cells 118-120: kron(U, U, U)^T vec(B) as a mode product, n = {n}")
    B = rng.standard_normal((n, n, n))
    U = rng.standard_normal((n, n))

    # The seed (Fortran-order vec): y1 = kron(U, U, U)^T vec_F(B),
    # y2 = B x1 U^T x2 U^T x3 U^T by einsum, and y1 == vec_F(y2).
    def explicit():
        return np.kron(np.kron(U, U), U).T @ B.flatten("F")

    def einsum():
        return np.einsum("abc,ia,jb,kc->ijk", B, U.T, U.T, U.T, optimize="optimal")

    y1 = explicit()
    y2 = einsum()
    print(f"y1.shape = {y1.shape}")
    c.close("seed: np.kron(np.kron(U, U), U).T @ B.flatten('F') == y2.flatten('F')",
            y1, y2.flatten("F"), 1e-12)

    # kronsolve (C-order vec): the lazy product and the mode product, never n^3 x n^3.
    K = kron(U, U, U)

    def lazy():
        return K.T @ B.ravel()

    def modes():
        return multi_mode_product(B, [U, U, U], transpose=True)

    c.close("kron(U, U, U).T @ B.ravel() == y2.ravel()", lazy(), y2.ravel(), 1e-12)
    c.close("multi_mode_product(B, [U, U, U], transpose=True) == y2", modes(), y2, 1e-12)
    c.close("kronsolve.kron_matvec([U.T, U.T, U.T], B.ravel()) == y2.ravel()",
            kronsolve.kron_matvec([U.T, U.T, U.T], B.ravel()), y2.ravel(), 1e-12)

    # With distinct factors the orders matter: a Fortran-order vec is a C-order vec
    # of the transposed tensor, and the factor order reverses.
    U1, U2, U3 = (rng.standard_normal((n, n)) for _ in range(3))
    seed_f = np.kron(np.kron(U1, U2), U3).T @ B.flatten("F")
    c.close("distinct factors: np.kron(np.kron(U1,U2),U3).T @ B.flatten('F') "
            "== kron(U1,U2,U3).T @ B.transpose().ravel()",
            seed_f, kron(U1, U2, U3).T @ B.transpose().ravel(), 1e-12)
    c.close("  ... == multi_mode_product(B, [U3, U2, U1], transpose=True).flatten('F')",
            seed_f, multi_mode_product(B, [U3, U2, U1], transpose=True).flatten("F"), 1e-12)

    t_explicit = best_time(explicit, repeat=1 if n > 20 else 3)
    t_einsum = best_time(einsum, repeat=5)
    t_lazy = best_time(lazy, repeat=20)
    t_modes = best_time(modes, repeat=20)
    nbytes = (n**3) ** 2 * 8
    print(f"\ntiming, n = {n} (N = n^3 = {n**3}), best of several runs:")
    print(f"  explicit np.kron(np.kron(U, U), U).T @ vec(B)  {fmt_time(t_explicit):>12}"
          f"   (forms a {nbytes / 2**20:.0f} MiB matrix)")
    print(f"  np.einsum(..., optimize='optimal')            {fmt_time(t_einsum):>12}")
    print(f"  kronsolve kron(U, U, U).T @ B.ravel()         {fmt_time(t_lazy):>12}"
          f"   ({t_explicit / t_lazy:,.0f}x faster than explicit)")
    print(f"  kronsolve multi_mode_product(..., transpose)  {fmt_time(t_modes):>12}"
          f"   ({t_explicit / t_modes:,.0f}x faster than explicit)")


def cell128(c: Checks, rng) -> None:
    n = 100
    c.section(f"cell 128: U B U^T as a two-mode product, n = {n}")
    U = rng.standard_normal((n, n))
    B = rng.standard_normal((n, n))
    ref = U @ B @ U.T
    c.close("U @ B @ U.T == np.einsum('ab,ia,jb->ij', B, U, U) (the seed's check)",
            np.einsum("ab,ia,jb->ij", B, U, U), ref, 1e-12)
    c.close("U @ B @ U.T == multi_mode_product(B, [U, U])",
            multi_mode_product(B, [U, U]), ref, 1e-12)
    c.close("U @ B @ U.T == (kron(U, U) @ B.ravel()).reshape(n, n)",
            (kron(U, U) @ B.ravel()).reshape(n, n), ref, 1e-12)
    # cells 129-130 timed the two; print them too
    t_mm = best_time(lambda: U @ B @ U.T, repeat=20)
    t_es = best_time(lambda: np.einsum("ab,ia,jb->ij", B, U, U, optimize="optimal"), repeat=20)
    t_ks = best_time(lambda: multi_mode_product(B, [U, U]), repeat=20)
    print(f"timing: U @ B @ U.T {fmt_time(t_mm)}, einsum {fmt_time(t_es)}, "
          f"multi_mode_product {fmt_time(t_ks)}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=16,
                        help="size for cells 118-120 (np.kron forms an n^3 x n^3 matrix: "
                             "n = 16 is 128 MiB, the seed's n = 25 is 1.8 GiB)")
    parser.add_argument("--quick", action="store_true", help="n = 10")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    n = 10 if args.quick else args.n
    rng = np.random.default_rng(args.seed)
    c = Checks("Kronecker identities (seed cells 117-120, 128)")
    cell117(c)
    cells118_120(c, n, rng)
    cell128(c, rng)
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())
