"""Seed notebook, sections 1-7: matrix-calculus gradients checked by central differences.

Each closed-form gradient G of a scalar function f is checked twice against
central finite differences in NumPy (no autograd):

* entry by entry, ``G[i, j] ~ (f(X + eps E_ij) - f(X - eps E_ij)) / (2 eps)``;
* along a random direction H, ``<G, H> = Tr(G^T H) ~ (f(X + eps H) - f(X - eps H)) / (2 eps)``.

Matrix-valued differentials (section 2) are checked the same way.  Section 6
evaluates its Kronecker products with ``kronsolve.kron`` (never forming them).

Run:  python examples/matrix_calculus.py [--seed N]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from _checks import Checks

import kronsolve

EPS = 1e-6
RTOL = 1e-6  # central differences in float64 are good to ~1e-9 relative here


def fd_directional(f, X, H, eps=EPS):
    """Central-difference derivative of ``f`` (scalar or array valued) at X along H."""
    return (np.asarray(f(X + eps * H)) - np.asarray(f(X - eps * H))) / (2 * eps)


def fd_gradient(f, X, eps=EPS):
    """Central-difference gradient of the scalar function ``f`` at X, entry by entry."""
    G = np.zeros_like(X, dtype=float)
    for idx in np.ndindex(X.shape):
        E = np.zeros_like(X, dtype=float)
        E[idx] = 1.0
        G[idx] = fd_directional(f, X, E, eps)
    return G


def check_gradient(c: Checks, label: str, f, X, G, H) -> None:
    """Check closed-form gradient G of f at X: entry-wise and along direction H."""
    c.close(f"{label}: gradient vs finite differences", G, fd_gradient(f, X), RTOL)
    c.close(
        f"{label}: directional derivative Tr(G^T H) vs finite differences",
        np.sum(G * H),
        fd_directional(f, X, H),
        RTOL,
    )


def section1(c: Checks, rng) -> None:
    c.section("1. f(x) = ||A - x x^T||_F^2")
    n = 5
    x = rng.standard_normal(n)
    A = rng.standard_normal((n, n))  # the seed's A is not symmetric: keep it general

    def f(x):
        return np.linalg.norm(A - np.outer(x, x)) ** 2

    grad = -2 * (A + A.T - 2 * np.outer(x, x)) @ x
    check_gradient(c, "grad = -2 (A + A^T - 2 x x^T) x", f, x, grad, rng.standard_normal(n))
    # The symmetric-A shortcut -4 (A - x x^T) x is a classic slip when A != A^T:
    # the finite-difference check must reject it.
    wrong = -4 * (A - np.outer(x, x)) @ x
    err = np.linalg.norm(wrong - fd_gradient(f, x)) / np.linalg.norm(grad)
    c.true(
        "the shortcut -4 (A - x x^T) x is rejected for A != A^T", err > 1e-2,
        f"relative error {err:.2e}",
    )
    As = A + A.T

    def fs(x):
        return np.linalg.norm(As - np.outer(x, x)) ** 2

    c.close(
        "for symmetric A the shortcut -4 (A - x x^T) x is right",
        -4 * (As - np.outer(x, x)) @ x,
        fd_gradient(fs, x),
        RTOL,
    )


def section2(c: Checks, rng) -> None:
    c.section("2. f(X) = Tr((X^T X)^-1 X^T A X)")
    n, p = 4, 3
    X = rng.standard_normal((n, p))
    A = rng.standard_normal((n, n))
    H = rng.standard_normal((n, p))
    inv = np.linalg.inv

    def S(X):  # (X^T X)^-1
        return inv(X.T @ X)

    dXtX = H.T @ X + X.T @ H
    dXtAX = H.T @ A @ X + X.T @ A @ H
    dS = -S(X) @ dXtX @ S(X)
    c.close(
        "d(X^T X) = H^T X + X^T H",
        dXtX, fd_directional(lambda X: X.T @ X, X, H), RTOL,
    )
    c.close(
        "d(X^T A X) = H^T A X + X^T A H",
        dXtAX, fd_directional(lambda X: X.T @ A @ X, X, H), RTOL,
    )
    c.close("d(X^T X)^-1 = -S dXtX S", dS, fd_directional(S, X, H), RTOL)
    c.close(
        "d(S X^T A X) = dS X^T A X + S d(X^T A X)",
        dS @ X.T @ A @ X + S(X) @ dXtAX,
        fd_directional(lambda X: S(X) @ X.T @ A @ X, X, H),
        RTOL,
    )

    def f(X):
        return np.trace(S(X) @ X.T @ A @ X)

    As = A + A.T
    grad = -(X @ S(X) @ X.T @ As @ X @ S(X)) + As @ X @ S(X)
    check_gradient(c, "grad = -X S X^T (A+A^T) X S + (A+A^T) X S", f, X, grad, H)


def section3(c: Checks, rng) -> None:
    c.section("3. f(X) = Tr(X o X)  (Hadamard square)")
    m = n = 3
    X = rng.standard_normal((m, n))
    H = rng.standard_normal((m, n))

    def f(X):
        return np.trace(X * X)

    c.close(
        "df = 2 Tr(diag(X)^T diag(H))",
        2 * np.trace(np.diag(np.diag(X)).T @ np.diag(np.diag(H))),
        fd_directional(f, X, H),
        RTOL,
    )
    check_gradient(c, "grad = 2 diag(diag(X))", f, X, 2 * np.diag(np.diag(X)), H)


def section4(c: Checks, rng) -> None:
    c.section("4. f(X) = Tr(X diag(X)),  diag(X) = diag(x11, ..., xnn)")
    n = 3
    X = rng.standard_normal((n, n))
    H = rng.standard_normal((n, n))

    def f(X):
        return np.trace(X @ np.diag(np.diag(X)))

    # The seed writes X * diag(X) (broadcast over columns): the same matrix.
    c.close(
        "X diag(X) == X * diag(X) (column scaling by broadcasting)",
        X @ np.diag(np.diag(X)), X * np.diag(X), 1e-15,
    )
    c.close(
        "df = Tr(H diag(X) + X diag(H))",
        np.trace(H @ np.diag(np.diag(X)) + X @ np.diag(np.diag(H))),
        fd_directional(f, X, H),
        RTOL,
    )
    grad = 2 * np.diag(np.diag(X))
    check_gradient(c, "grad = 2 diag(diag(X))", f, X, grad, H)
    print("grad =\n", grad, "\ndiag(X) =", np.diag(X))


def section5(c: Checks, rng) -> None:
    c.section("5. f(X) = a^T X^2 b")
    n = 3
    X = rng.standard_normal((n, n))
    a = rng.standard_normal(n)
    b = rng.standard_normal(n)
    H = rng.standard_normal((n, n))

    def f(X):
        return a @ X @ X @ b

    ab = np.outer(a, b)
    check_gradient(c, "grad = a b^T X^T + X^T a b^T", f, X, ab @ X.T + X.T @ ab, H)


def section6(c: Checks, rng) -> None:
    c.section("6. f(X) = Tr(I (x) X + X (x) I)   (lazy kronsolve.kron)")
    n = 3
    X = rng.standard_normal((n, n))
    H = rng.standard_normal((n, n))
    I = np.eye(n)

    def f(X):
        # KronProductSum.trace() is sum of products of factor traces: no n^2 x n^2 matrix
        return (kronsolve.kron(I, X) + kronsolve.kron(X, I)).trace()

    c.close(
        "kron trace == np.trace(np.kron(I, X) + np.kron(X, I))",
        f(X), np.trace(np.kron(I, X) + np.kron(X, I)), 1e-13,
    )
    c.close("Tr(I (x) X + X (x) I) == 2 n Tr(X)", f(X), 2 * n * np.trace(X), 1e-13)
    c.close(
        "df = Tr(I (x) H + H (x) I)",
        (kronsolve.kron(I, H) + kronsolve.kron(H, I)).trace(),
        fd_directional(f, X, H),
        RTOL,
    )
    check_gradient(c, "grad = 2 n I", f, X, 2 * n * I, H)


def section7(c: Checks, rng) -> None:
    c.section("7. f(U) = g(V) = F(W + U V^T),  F(X) = Tr(2 X o X + cos X)")
    m, n, r = 4, 3, 2
    W = rng.standard_normal((m, n))
    U = rng.standard_normal((m, r))
    V = rng.standard_normal((n, r))

    def F(X):
        # as in the seed: elementwise square and cosine, trace of a non-square matrix
        # is the sum of its main diagonal
        return np.trace(2 * X**2 + np.cos(X))

    X = W + U @ V.T
    # grad F(X): only the main diagonal of X enters F
    k = min(m, n)
    GX = np.zeros((m, n))
    GX[np.arange(k), np.arange(k)] = 4 * np.diag(X) - np.sin(np.diag(X))
    check_gradient(c, "grad F(X) = diag-mask (4 X - sin X)", F, X, GX, rng.standard_normal((m, n)))
    check_gradient(
        c, "grad_U = grad F(X) V", lambda U: F(W + U @ V.T), U, GX @ V,
        rng.standard_normal((m, r)),
    )
    check_gradient(
        c, "grad_V = grad F(X)^T U", lambda V: F(W + U @ V.T), V, GX.T @ U,
        rng.standard_normal((n, r)),
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="accepted; always quick")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    c = Checks("matrix calculus (seed sections 1-7)")
    for section in (section1, section2, section3, section4, section5, section6, section7):
        section(c, rng)
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())
