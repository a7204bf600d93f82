"""Speed goals of the implicit backward and of JAX (issue 19), as ratios in one run.

Run: ``pytest benchmarks/bench_autodiff.py --benchmark-only`` (``--goals`` asserts the goals
where the suite has that option).  Goals, d = 3, n = 64 (N = 262,144), CPU:

* PyTorch: the backward pass of a solve with respect to ``B`` and every factor
  (one adjoint solve reusing the decomposition and three contractions) within
  2.5x the forward solve (its three ``eigh`` included);
* JAX: a jitted product and a jitted solve (``method="eigh"``, the
  decompositions inside the jitted function) within 1.5x the NumPy path.
"""

from __future__ import annotations

import numpy as np
import pytest
from _timing import check_speedup

import kronsolve as ks

N_ = 64


def _factors(rng, n):
    out = []
    for _ in range(3):
        A = rng.standard_normal((n, n))
        out.append(A @ A.T / n + 2 * np.eye(n))
    return out


@pytest.mark.parametrize("method", ["backward", "forward (baseline)"])
@pytest.mark.benchmark(group="autodiff-torch-d3-n64")
def test_torch_backward_vs_forward(benchmark, method, timing_enabled):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    mats = [torch.tensor(A, requires_grad=True) for A in _factors(rng, N_)]
    B = torch.tensor(rng.standard_normal((N_, N_, N_)), requires_grad=True)
    Xbar = torch.tensor(rng.standard_normal((N_, N_, N_)))
    inputs = [B, *mats]

    def forward():
        return ks.solve_kronsum(B, mats)

    X = forward()

    def backward():
        return torch.autograd.grad(X, inputs, Xbar, retain_graph=True)

    fns = {"backward": backward, "forward (baseline)": forward}
    out = benchmark(fns[method])
    if method == "backward":
        # correctness: B̄ solves the (symmetric) system with X̄, and Ā_1 = -G_(1) X_(1)ᵀ
        G = out[0].detach()
        with torch.no_grad():
            res = ks.kronsum(*[A.detach() for A in mats]) @ G.reshape(-1) - Xbar.reshape(-1)
        assert float(res.abs().max()) <= 1e-8 * float(Xbar.abs().max()) * 20
        ref = -G.reshape(N_, -1) @ X.detach().reshape(N_, -1).T
        torch.testing.assert_close(out[1], ref, rtol=1e-10, atol=1e-12)
        check_speedup(benchmark, forward, 1 / 2.5, "the forward solve (goal: backward <= 2.5x)",
                      timing_enabled, candidate=backward, rounds=7)
    else:
        np.testing.assert_allclose(
            out.detach().numpy(),
            ks.solve_kronsum(B.detach().numpy(), [A.detach().numpy() for A in mats]),
            rtol=1e-9, atol=1e-12)


def _jax():
    jax = pytest.importorskip("jax")
    pytest.importorskip("array_api_compat")
    jax.config.update("jax_enable_x64", True)
    return jax


def _jax_against_numpy(benchmark, method, timing_enabled, numpy_fn, jax_fn, args, what):
    """Time ``jax.jit(jax_fn)`` on JAX copies of ``args`` or ``numpy_fn(*args)``; with
    ``--goals``, the jitted JAX call within 1.5x the NumPy one."""
    jax = _jax()
    jargs = [jax.numpy.asarray(a) for a in args]
    f = jax.jit(jax_fn)
    f(*jargs).block_until_ready()
    fns = {"jax jit": lambda: f(*jargs).block_until_ready(),
           "numpy (baseline)": lambda: numpy_fn(*args)}
    out = benchmark(fns[method])
    np.testing.assert_allclose(np.asarray(out), numpy_fn(*args), rtol=1e-9)
    if method == "jax jit":
        check_speedup(benchmark, fns["numpy (baseline)"], 1 / 1.5,
                      f"the NumPy {what} (goal: jitted JAX <= 1.5x)", timing_enabled,
                      candidate=fns["jax jit"], rounds=7)


@pytest.mark.parametrize("method", ["jax jit", "numpy (baseline)"])
@pytest.mark.benchmark(group="jax-product-d3-n64")
def test_jax_product_vs_numpy(benchmark, method, timing_enabled):
    rng = np.random.default_rng(1)
    mats = [rng.standard_normal((N_, N_)) for _ in range(3)]
    X = rng.standard_normal((N_, N_, N_))
    _jax_against_numpy(benchmark, method, timing_enabled,
                       lambda X, *A: ks.multi_mode_product(X, list(A)),
                       lambda X, *A: ks.multi_mode_product(X, list(A)), [X, *mats], "product")


@pytest.mark.parametrize("method", ["jax jit", "numpy (baseline)"])
@pytest.mark.benchmark(group="jax-solve-d3-n64")
def test_jax_solve_vs_numpy(benchmark, method, timing_enabled):
    rng = np.random.default_rng(2)
    mats = _factors(rng, N_)
    B = rng.standard_normal((N_, N_, N_))
    _jax_against_numpy(benchmark, method, timing_enabled,
                       lambda B, *A: ks.solve_kronsum(B, list(A)),
                       lambda B, *A: ks.solve_kronsum(B, list(A), method="eigh"), [B, *mats],
                       "solve")
