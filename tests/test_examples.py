"""Run every script of the example gallery (examples/) in its quick mode.

Each script prints its checks as ``[PASS]``/``[FAIL]`` lines and exits non-zero
when one fails; here each must exit 0, print no ``[FAIL]`` and print its key lines.
A script whose kronsolve functions have not landed yet is skipped, naming them, and
so is one whose optional dependency (an extra of pyproject.toml) is not installed.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

import kronsolve

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

# script -> (quick arguments, kronsolve names it needs, strings its output must hold)
SCRIPTS = {
    "matrix_calculus.py": (
        ["--quick"],
        ["kron"],
        [
            "1. f(x) = ||A - x x^T||_F^2",
            "2. f(X) = Tr((X^T X)^-1 X^T A X)",
            "3. f(X) = Tr(X o X)",
            "4. f(X) = Tr(X diag(X))",
            "5. f(X) = a^T X^2 b",
            "6. f(X) = Tr(I (x) X + X (x) I)",
            "7. f(U) = g(V) = F(W + U V^T)",
            "[PASS] grad = 2 n I: gradient vs finite differences",
            "[PASS] the shortcut -4 (A - x x^T) x is rejected for A != A^T",
            "[PASS] grad_V = grad F(X)^T U: directional derivative",
        ],
    ),
    "kronecker_identities.py": (
        ["--quick"],
        ["kron", "multi_mode_product", "kron_matvec"],
        [
            "cell 117",
            "[PASS] (kron(B1, C1) + kron(B2, C2)).toarray() == A",
            "[PASS] kron(U, U, U).T @ B.ravel() == y2.ravel()",
            "explicit np.kron(np.kron(U, U), U).T @ vec(B)",
            "faster than explicit",
            "[PASS] U @ B @ U.T == multi_mode_product(B, [U, U])",
        ],
    ),
    "sylvester_seed.py": (
        ["--quick"],
        ["solve_sylvester3d", "solve_kronsum", "kronsum"],
        [
            "[PASS] seed's hand-written fast diagonalization recovers X",
            "[PASS] kronsolve.solve_sylvester3d(B, A) recovers X",
            "[PASS] solve_sylvester3d(B, A1, A2, A3, shift=0.5) recovers X",
            "np.linalg.solve, assembled 512 x 512 matrix",
        ],
    ),
    "shuffle_rearrange.py": (
        ["--quick"],
        [
            "perfect_shuffle", "shuffle", "shuffle2", "commutation_matrix",
            "rearrange", "unrearrange", "nearest_kron", "kpsvd",
        ],
        [
            "[PASS] np.kron(B, C)[P_rows, :][:, P_cols] == np.kron(C, B)",
            "[PASS] shuffle2(np.kron(B, C), (m1, m2), (n1, n2)) == np.kron(C, B)",
            "[PASS] rearrange(M) == RM_1 (strings)",
            "[PASS] Kronecker rank is 2",
            "[PASS] A == s1 B1 (x) C1 + s2 B2 (x) C2, residual at rounding level",
            "[PASS] kpsvd(A) (default tol) keeps exactly 2 terms",
        ],
    ),
    "gp_grid.py": (
        ["--quick"],
        ["kron", "ShiftedKronProduct"],
        [
            "[PASS] length scales within 35% of the truth",
            "[PASS] noise within 35% of the truth",
            "[PASS] gradient of the log likelihood vanishes at the optimum",
            "[PASS] posterior mean equals the dense GP formula",
        ],
    ),
    "heat_expm.py": (
        ["--quick"],
        ["kronsum", "KronSumSolver"],
        [
            "[PASS] t = 0.05: u(t) == exp(-lambda t) u0",
            "[PASS] expm(t) @ u0 == expm_multiply(u0, t)",
            "[PASS] Crank-Nicolson converges to the exact step at second order",
        ],
    ),
    "fem_heat.py": (
        ["--quick"],
        ["KronSumSolver", "kron", "kronsum"],
        [
            "[PASS] KronSumSolver(masses=...).solve(b, shift=1/dt), sizes (5, 6, 7), "
            "vs np.linalg.solve",
            "[PASS] 40 steps: u == (1 + dt lambda_h)^-40 u0",
            "[PASS] lambda_h approximates 3 pi^2 to O(h^2)",
            "[PASS] backward Euler converges at first order",
            "factorization (once, for every dt)",
        ],
    ),
    "pcg_variable.py": (
        ["--quick"],
        ["KronSumSolver"],
        [
            "plain CG",
            "[PASS] n = 16: preconditioned residual below 1e-08",
            "[PASS] n = 16: the preconditioner saves iterations",
            "[PASS] n = 8: preconditioned CG == scipy.sparse.linalg.spsolve",
            "[PASS] n = 16: preconditioned CG == scipy.sparse.linalg.spsolve",
            "preconditioned iterations within CG's bound",
        ],
    ),
    "convection_diffusion.py": (
        ["--quick"],
        ["solve_kronsum"],
        [
            "cond(V) of A1",
            "[PASS] Pe = 1000: residual at rounding level",
            "[PASS] Pe = 10: solve_kronsum == spsolve on (9, 10, 11)",
            "[PASS] Pe = 1000: solve_kronsum == spsolve on (9, 10, 11)",
            "[PASS] Pe = 1000: u > 0 everywhere",
        ],
    ),
    "poisson3d.py": (
        ["--quick"],
        ["solve_sylvester3d", "multi_mode_product"],
        [
            "observed order",
            "[PASS] n = 32: observed order",
            "[PASS] n = 32: max error",
            "[PASS] n = 32: discrete residual",
        ],
    ),
}

# script -> (module, the extra that installs it), for scripts that need more than the core
OPTIONAL = {"gp_grid.py": ("torch", "torch")}


def test_every_script_is_tested():
    scripts = {p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_")}
    assert scripts == set(SCRIPTS)


def test_readme_lists_every_script():
    readme = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    missing = [name for name in SCRIPTS if name not in readme]
    assert not missing, f"examples/README.md does not list {missing}"


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_example_runs(script):
    args, needs, expected = SCRIPTS[script]
    missing = [name for name in needs if not hasattr(kronsolve, name)]
    if missing:
        pytest.skip(
            f"examples/{script} needs kronsolve.{', kronsolve.'.join(missing)}, "
            f"not in kronsolve {kronsolve.__version__} yet"
        )
    module, extra = OPTIONAL.get(script, (None, None))
    if module and importlib.util.find_spec(module) is None:
        pytest.skip(f"examples/{script} needs {module}: pip install -e \".[{extra}]\"")
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=EXAMPLES.parent,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"examples/{script} exited {proc.returncode}:\n{out}"
    assert "[FAIL]" not in out, out
    assert "checks PASSED" in proc.stdout, out
    for text in expected:
        assert text in proc.stdout, f"{text!r} missing from the output of {script}:\n{out}"
