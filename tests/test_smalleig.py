"""The Numba-compiled eigensolver for small symmetric matrices (``kronsolve._smalleig``).

Checked LAPACK style, against ``np.linalg.eigh``: the residual ``‖AQ − QΛ‖``
and the loss of orthogonality ``‖QᵀQ − I‖`` in units of roundoff, the
eigenvalues against LAPACK's, on random, clustered, graded, tiny and huge
matrices; and the tiering (LAPACK first, the compiled kernel once small
LAPACK decompositions have taken ``_TIER_UP_SECONDS``; never at import).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kronsolve import _smalleig

numba = pytest.importorskip("numba")

EPS = np.finfo(np.float64).eps


def check(A, res, tol=30):
    """Residual, orthogonality and eigenvalues of ``res = (lam, Q)`` for ``A``."""
    assert res is not None
    lam, Q = res
    n = A.shape[0]
    assert lam.shape == (n,) and Q.shape == (n, n) and Q.flags.c_contiguous
    assert np.all(np.diff(lam) >= 0), "eigenvalues not ascending"
    scale = max(np.abs(A).max(), np.finfo(float).tiny)
    assert np.abs(A @ Q - Q * lam).max() <= tol * n * EPS * scale
    assert np.abs(Q.T @ Q - np.eye(n)).max() <= tol * n * EPS
    ref = np.linalg.eigvalsh(A)
    assert np.abs(lam - ref).max() <= tol * n * EPS * scale


def random_sym(rng, n, lam=None):
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    lam = rng.standard_normal(n) if lam is None else np.asarray(lam, float)
    A = (Q * lam) @ Q.T
    return (A + A.T) / 2


def laplacian(n):
    return 2 * np.eye(n) - np.eye(n, k=1) - np.eye(n, k=-1)


def cases():
    rng = np.random.default_rng(0)
    out = {}
    for n in (1, 2, 3, 5, 8, 16, 17, 31, 32):
        out[f"random-{n}"] = random_sym(rng, n)
    out["laplacian-16"] = laplacian(16)
    out["laplacian-32"] = laplacian(32) * 32**2
    out["identity-9"] = np.eye(9)
    out["zero-7"] = np.zeros((7, 7))
    out["diagonal-repeated"] = np.diag([3.0, 1.0, 3.0, 1.0, 2.0, 3.0])
    out["clustered"] = random_sym(rng, 16, [1.0] * 8 + [1.0 + 1e-12] * 4 + [5.0] * 4)
    out["graded"] = random_sym(rng, 16, np.logspace(-12, 12, 16))
    out["indefinite"] = random_sym(rng, 12, np.linspace(-3, 3, 12))
    out["rank-one"] = np.outer(np.arange(1.0, 11.0), np.arange(1.0, 11.0))
    out["tiny"] = random_sym(rng, 10) * 1e-280
    out["huge"] = random_sym(rng, 10) * 1e280
    out["tridiagonal-zero-offdiag"] = np.diag(np.arange(6.0)) + np.diag([1, 0, 1, 0, 1.0], 1) \
        + np.diag([1, 0, 1, 0, 1.0], -1)
    out["all-ones"] = np.ones((8, 8))
    return out


CASES = cases()


@pytest.mark.parametrize("name", list(CASES))
def test_accuracy_on_hard_cases(name):
    A = CASES[name]
    with _smalleig._use_tier("numba"):
        res = _smalleig.small_eigh(A)
    check(A, res)


def test_fortran_ordered_and_strided_input():
    rng = np.random.default_rng(1)
    A = random_sym(rng, 12)
    with _smalleig._use_tier("numba"):
        ref = _smalleig.small_eigh(A)
        for B in (np.asfortranarray(A), np.array(np.repeat(A, 2, axis=1))[:, ::2]):
            res = _smalleig.small_eigh(B)
            np.testing.assert_array_equal(res[0], ref[0])
            np.testing.assert_array_equal(res[1], ref[1])


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 32), seed=st.integers(0, 2**32 - 1),
       exponent=st.integers(-100, 100))
def test_accuracy_random(n, seed, exponent):
    rng = np.random.default_rng(seed)
    A = random_sym(rng, n, rng.standard_normal(n) * rng.choice([1.0, 1e-6, 1e6], n))
    A = A * 10.0**exponent
    with _smalleig._use_tier("numba"):
        res = _smalleig.small_eigh(A)
    check(A, res)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input_declines(bad):
    A = laplacian(6)
    A[2, 3] = A[3, 2] = bad
    with _smalleig._use_tier("numba"):
        assert _smalleig.small_eigh(A) is None


def test_lapack_tier_declines():
    with _smalleig._use_tier("lapack"):
        assert _smalleig.small_eigh(laplacian(5)) is None


def test_use_tier_rejects_unknown_mode():
    with pytest.raises(ValueError, match="'auto', 'numba' or 'lapack'"):
        with _smalleig._use_tier("fast"):
            pass


def run(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, env={**os.environ, **env}, timeout=600)


def test_tier_up_after_enough_lapack_time():
    """LAPACK until small decompositions have taken _TIER_UP_SECONDS, then Numba;
    nothing at import."""
    r = run("""
        import sys
        import numpy as np
        import kronsolve as ks
        from kronsolve import _smalleig
        assert "numba" not in sys.modules
        _smalleig._TIER_UP_SECONDS = 0.02
        A = 2 * np.eye(8) - np.eye(8, k=1) - np.eye(8, k=-1)
        B = np.ones((8, 8, 8))
        X0 = ks.solve_sylvester3d(B, A)          # one eigh (the same factor thrice)
        assert "numba" not in sys.modules and 0 < _smalleig._state["spent"] < 0.02
        solves = 1
        while "numba" not in sys.modules:
            assert _smalleig._state["spent"] < 0.02 + 0.01, "not loaded in time"
            X1 = ks.solve_sylvester3d(B, A)
            solves += 1
        assert _smalleig._state["spent"] >= 0.02
        assert _smalleig._state["kernel"] not in (None, False)
        spent = _smalleig._state["spent"]
        X2 = ks.solve_sylvester3d(B, A)          # the compiled tier: no LAPACK time
        assert _smalleig._state["spent"] == spent
        assert np.allclose(X0, X2, rtol=1e-13, atol=0) and solves > 1
        print("ok")
    """)
    assert r.returncode == 0, r.stderr
    assert "ok" in r.stdout


def test_without_numba_everything_stays_on_lapack():
    r = run("""
        import sys
        sys.modules["numba"] = None          # Numba cannot be imported
        import numpy as np
        import kronsolve as ks
        from kronsolve import _smalleig
        _smalleig._TIER_UP_SECONDS = 0.0
        A = 2 * np.eye(8) - np.eye(8, k=1) - np.eye(8, k=-1)
        B = np.ones((8, 8, 8))
        for _ in range(3):
            X = ks.solve_sylvester3d(B, A)
        assert _smalleig._state["kernel"] is False
        assert np.allclose(ks.kronsum(A, A, A) @ X.ravel(), B.ravel())
        print("ok")
    """)
    assert r.returncode == 0, r.stderr
    assert "ok" in r.stdout


def test_unwritable_cache_folder(tmp_path):
    """No usable cache folder: the kernel compiles without a cache and runs."""
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    r = run("""
        import numpy as np
        from kronsolve import _smalleig
        A = 2 * np.eye(5) - np.eye(5, k=1) - np.eye(5, k=-1)
        with _smalleig._use_tier("numba"):
            lam, Q = _smalleig.small_eigh(A)
        assert np.allclose(A @ Q, Q * lam)
        print("ok")
    """, NUMBA_CACHE_DIR=str(blocker / "cache"),
        NUMBA_CACHE_LOCATOR_CLASSES="UserProvidedCacheLocator")
    assert r.returncode == 0, r.stderr
    assert "ok" in r.stdout


def test_cache_folder_turns_unwritable(monkeypatch):
    """Saving to the cache fails after set-up: compile again without the cache."""
    with _smalleig._use_tier("numba"):
        assert _smalleig._get_kernel() is not False
    kern = _smalleig._compile(numba, cache=True)

    def broken_save(self, sig, data):
        raise PermissionError("read-only cache folder")

    monkeypatch.setitem(_smalleig._state, "kernel", kern)
    monkeypatch.setattr(type(kern._cache), "save_overload", broken_save)
    monkeypatch.setattr(type(kern._cache), "load_overload", lambda self, sig, tc: None)
    A = laplacian(7)
    with _smalleig._use_tier("numba"):
        res = _smalleig.small_eigh(A)
    check(A, res)
    assert _smalleig._state["kernel"] is not kern


@pytest.mark.parametrize(("value", "loads"), [("lapack", False), ("numba", True),
                                              (" Auto ", False)])
def test_environment_variable_sets_the_tier(value, loads):
    r = run("""
        import sys
        import numpy as np
        import kronsolve as ks
        A = 2 * np.eye(6) - np.eye(6, k=1) - np.eye(6, k=-1)
        X = ks.solve_sylvester3d(np.ones((6, 6, 6)), A)
        print("loaded", "numba" in sys.modules)
    """, KRONSOLVE_SMALL_EIGH=value)
    assert r.returncode == 0, r.stderr
    assert f"loaded {loads}" in r.stdout


def test_environment_variable_rejects_unknown_values():
    r = run("""
        import numpy as np
        import kronsolve as ks
        A = 2 * np.eye(6) - np.eye(6, k=1) - np.eye(6, k=-1)
        try:
            ks.solve_sylvester3d(np.ones((6, 6, 6)), A)
        except ValueError as exc:
            print("error:", exc)
    """, KRONSOLVE_SMALL_EIGH="fastest")
    assert r.returncode == 0, r.stderr
    assert "KRONSOLVE_SMALL_EIGH must be one of" in r.stdout and "'fastest'" in r.stdout
