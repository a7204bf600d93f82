"""Seed notebook, cells 131-137 and 117: perfect shuffles, rearrangement, Kronecker SVD.

* Cells 131-133: the perfect shuffle P_{p,r} (the seed builds its index array with
  itertools) and the identity P_{m1,m2} (B (x) C) P_{n1,n2}^T = C (x) B, here with
  ``kronsolve.perfect_shuffle``, ``shuffle`` and ``shuffle2`` (one pass, no index
  arrays).  Also the commutation matrix, K vec(A) = vec(A^T).
* Cells 134-137: the Van Loan-Pitsianis rearrangement R(M), which the seed writes
  as two different chains of reshapes and transposes (RM_1, RM_2) of a matrix of
  strings; ``kronsolve.rearrange`` gives the same, and R(B (x) C) = vec(B) vec(C)^T.
* Cell 117: the Kronecker-product SVD (the SVD of the rearrangement) of the seed's
  12 x 6 integer matrix recovers its Kronecker rank 2 exactly; ``nearest_kron``
  gives the best single Kronecker product.

Run:  python examples/shuffle_rearrange.py [--quick]
"""

from __future__ import annotations

import argparse
import itertools
import sys

import numpy as np
from _checks import Checks, require, seed_cell117

import kronsolve


def seed_perfect_shuffle(p, r):
    """Cell 132, verbatim."""
    return np.array(list(itertools.chain(*(range(i, p * r, r) for i in range(r)))))


def cells131_133(c: Checks, rng) -> None:
    c.section("cells 131-133: P_{m1,m2} (B (x) C) P_{n1,n2}^T = C (x) B")
    m1, n1, m2, n2 = 3, 2, 2, 2
    B = rng.standard_normal((m1, n1))
    C = rng.standard_normal((m2, n2))
    BC = np.kron(B, C)
    print(f"perfect_shuffle({m1}, {m2}) = {kronsolve.perfect_shuffle(m1, m2)}")
    ok = all(
        np.array_equal(kronsolve.perfect_shuffle(p, r), seed_perfect_shuffle(p, r))
        for p in range(1, 7) for r in range(1, 7)
    )
    c.true("perfect_shuffle(p, r) == the seed's itertools version, p, r = 1..6", ok)
    c.true("perfect_shuffle returns integers",
           np.issubdtype(kronsolve.perfect_shuffle(m1, m2).dtype, np.integer))
    # the seed's check, with kronsolve's index arrays
    pr, pc = kronsolve.perfect_shuffle(m1, m2), kronsolve.perfect_shuffle(n1, n2)
    c.equal("np.kron(B, C)[P_rows, :][:, P_cols] == np.kron(C, B) (the seed's check)",
            BC[pr, :][:, pc], np.kron(C, B))
    # one pass over rows and columns, no index arrays
    c.equal("shuffle2(np.kron(B, C), (m1, m2), (n1, n2)) == np.kron(C, B)",
            kronsolve.shuffle2(BC, (m1, m2), (n1, n2)), np.kron(C, B))
    c.equal("shuffle(shuffle(., rows), cols) == np.kron(C, B)",
            kronsolve.shuffle(kronsolve.shuffle(BC, m1, m2, axis=0), n1, n2, axis=1),
            np.kron(C, B))
    x = np.arange(m1 * m2)
    c.equal("shuffle(x, p, r) == x[perfect_shuffle(p, r)]",
            kronsolve.shuffle(x, m1, m2), x[seed_perfect_shuffle(m1, m2)])
    # bigger, rectangular factors: shuffles swap the factors back and forth
    B, C = rng.standard_normal((5, 3)), rng.standard_normal((4, 7))
    c.equal("shuffle2 swaps the factors of a 20 x 21 Kronecker product",
            kronsolve.shuffle2(np.kron(B, C), (5, 4), (3, 7)), np.kron(C, B))
    # the commutation matrix (a sparse permutation)
    m, n = 3, 4
    A = rng.standard_normal((m, n))
    K = kronsolve.commutation_matrix(m, n)
    c.equal("commutation_matrix(m, n) @ A.flatten('F') == A.T.flatten('F')",
            K @ A.flatten("F"), A.T.flatten("F"))
    c.equal("commutation_matrix(m, n).T == commutation_matrix(n, m)",
            K.T.toarray(), kronsolve.commutation_matrix(n, m).toarray())


def cells134_137(c: Checks, rng) -> None:
    m1, n1, m2, n2 = 3, 2, 2, 2
    c.section(f"cells 134-137: the rearrangement R(M), (m1, n1) = ({m1}, {n1}), "
              f"(m2, n2) = ({m2}, {n2})")
    M = np.array([[f"{i}{j}" for j in range(1, n1 * n2 + 1)] for i in range(1, m1 * m2 + 1)])
    print("M =\n", M)
    # the seed's two chains of reshapes
    RM_1 = (
        M.reshape(m1, n1, m2 * n2, order="C").transpose(0, 2, 1)
        .reshape(m1, m2, n1, n2, order="C").transpose(0, 1, 3, 2)
        .reshape(m1 * n1, m2 * n2, order="F")
    )
    RM_2 = (
        M.reshape(m2, m1, n2, n1, order="F").transpose(0, 2, 1, 3)
        .reshape(m2 * n2, m1, n1, order="F").transpose(1, 2, 0)
        .reshape(m1 * n1, m2 * n2, order="F")
    )
    R = kronsolve.rearrange(M, (m1, n1), (m2, n2))
    print("rearrange(M, (m1, n1), (m2, n2)) =\n", R)
    c.equal("RM_1 == RM_2 (the seed's check)", RM_1, RM_2)
    c.equal("rearrange(M) == RM_1 (strings)", R, RM_1)
    c.equal("unrearrange(rearrange(M)) == M",
            kronsolve.unrearrange(R, (m1, n1), (m2, n2)), M)
    B = rng.standard_normal((m1, n1))
    C = rng.standard_normal((m2, n2))
    c.close("rearrange(np.kron(B, C)) == outer(B.flatten('F'), C.flatten('F'))",
            kronsolve.rearrange(np.kron(B, C), (m1, n1), (m2, n2)),
            np.outer(B.flatten("F"), C.flatten("F")), 1e-15)
    A = rng.standard_normal((m1 * m2, n1 * n2))
    c.equal("unrearrange(rearrange(A)) == A (random A)",
            kronsolve.unrearrange(kronsolve.rearrange(A, (m1, n1), (m2, n2)), (m1, n1), (m2, n2)),
            A)


def cell117_kpsvd(c: Checks) -> None:
    c.section("cell 117: Kronecker-product SVD of the seed's 12 x 6 matrix")
    A, _, (m1, n1), (m2, n2) = seed_cell117()
    # all computed terms (tol=0), then the default (drops the terms zero up to rounding)
    s = kronsolve.kpsvd(A, (m1, n1), (m2, n2), tol=0).s
    print(f"Kronecker singular values (tol=0): {s}")
    tol = 1e-12 * s[0]
    rank = int(np.sum(s > tol))
    c.true(f"Kronecker rank is 2 (singular values above {tol:.1e})", rank == 2, f"rank {rank}")
    res = kronsolve.kpsvd(A, (m1, n1), (m2, n2))
    c.true("kpsvd(A) (default tol) keeps exactly 2 terms", res.rank == 2, f"rank {res.rank}")
    K = res.to_operator()
    print(f"kpsvd(A).to_operator() = {K!r}")
    err = np.linalg.norm(A - K.toarray()) / np.linalg.norm(A)
    c.true("A == s1 B1 (x) C1 + s2 B2 (x) C2, residual at rounding level",
           err < 1e-13, f"relative residual {err:.1e}")
    x = np.arange(1.0, n1 * n2 + 1)
    c.close("lazy kpsvd(A).to_operator() @ x == A @ x", K @ x, A @ x, 1e-13)
    res2 = kronsolve.kpsvd(A, (m1, n1), (m2, n2), rank=2)
    c.close("kpsvd(A, rank=2) has the same singular values", res2.s, res.s, 1e-12)
    B = res.B.reshape(2, -1)
    c.close("the B_i are orthonormal", B @ B.T, np.eye(2), 1e-13)
    B, C = kronsolve.nearest_kron(A, (m1, n1), (m2, n2))
    err = np.linalg.norm(A - np.kron(B, C))
    c.close("nearest_kron: ||A - B (x) C||_F == second Kronecker singular value",
            err, s[1], 1e-10)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="accepted for uniformity")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    require("perfect_shuffle", "shuffle", "shuffle2", "commutation_matrix", "rearrange",
            "unrearrange", "nearest_kron", "kpsvd")
    rng = np.random.default_rng(args.seed)
    c = Checks("shuffles, rearrangement and Kronecker SVD (seed cells 117, 131-137)")
    cells131_133(c, rng)
    cells134_137(c, rng)
    cell117_kpsvd(c)
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())
