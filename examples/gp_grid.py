"""Gaussian-process regression on a 3-D grid with kronsolve's shifted Kronecker products.

A squared-exponential kernel on an n x n x n grid is the Kronecker product of
three n x n kernel matrices; with noise variance s2 the covariance is
``K = K1 ⊗ K2 ⊗ K3 + s2·I`` (``ks.kron(K1, K2, K3).shifted(s2)``).  The script

1. draws data from the GP (``.sample``) with known length scales and noise;
2. fits the three length scales and the noise by maximizing the log marginal
   likelihood ``-0.5·yᵀK⁻¹y - 0.5·log det K - N/2·log 2π`` with PyTorch's
   autograd through ``.quad`` and ``.logdet`` (L-BFGS), never forming K;
3. hides 20% of the cells and predicts them from the rest (``solve_plus_diagonal``:
   conjugate gradients preconditioned with the exact shifted solve), checking
   the predictions against the full-data posterior mean at small sizes.

Default n = 100 (N = 10**6 grid points); ``--quick`` uses n = 12.
"""

from __future__ import annotations

import time

import numpy as np
from _checks import Checks, fmt_time, grid_size

import kronsolve as ks


def kernel(x, ell, xp=np):
    return xp.exp(-0.5 * (x[:, None] - x[None, :]) ** 2 / ell**2)


def main() -> int:
    n = grid_size(__doc__, 100, quick=12)
    N = n**3
    c = Checks(f"Gaussian process on a {n} x {n} x {n} grid (N = {N})")
    import torch

    x = np.linspace(0.0, 1.0, n)
    ell_true = np.array([0.08, 0.15, 0.3]) if n >= 40 else np.array([0.15, 0.25, 0.4])
    s2_true = 0.05
    rng = np.random.default_rng(0)

    c.section("1. data drawn from the GP")
    K_true = ks.kron(*[kernel(x, e) for e in ell_true]).shifted(s2_true)
    t0 = time.perf_counter()
    y = K_true.sample(rng)
    print(f"sample of N(0, K1 (x) K2 (x) K3 + s2 I) in {fmt_time(time.perf_counter() - t0)}")
    c.true("sample has N finite entries", y.shape == (N,) and bool(np.all(np.isfinite(y))))

    c.section("2. hyperparameters by maximum likelihood (torch autograd)")
    xt = torch.tensor(x)
    yt = torch.tensor(y)

    def nll(p):
        ells = torch.exp(p[:3])
        S = ks.kron(*[kernel(xt, e, torch) for e in ells]).shifted(torch.exp(p[3]))
        return 0.5 * S.quad(yt) + 0.5 * S.logdet() + 0.5 * N * np.log(2 * np.pi)

    p = torch.tensor([np.log(0.2)] * 3 + [np.log(0.2)], dtype=torch.float64,
                     requires_grad=True)
    opt = torch.optim.LBFGS([p], lr=1.0, max_iter=60, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        v = nll(p)
        v.backward()
        return v

    t0 = time.perf_counter()
    opt.step(closure)
    t_fit = time.perf_counter() - t0
    ells = torch.exp(p[:3]).detach().numpy()
    s2 = float(torch.exp(p[3]).detach())
    print(f"fitted in {fmt_time(t_fit)}: length scales {np.round(ells, 4)} (true {ell_true}), "
          f"noise {s2:.4f} (true {s2_true})")
    tol = 0.35 if n < 40 else 0.1
    c.true(f"length scales within {tol:.0%} of the truth",
           bool(np.all(np.abs(ells / ell_true - 1) < tol)))
    c.true(f"noise within {tol:.0%} of the truth", abs(s2 / s2_true - 1) < tol)
    # the gradient at the optimum is (nearly) zero: autograd through eigh, quad, logdet
    g = torch.autograd.grad(nll(p), p)[0]
    c.true("gradient of the log likelihood vanishes at the optimum",
           float(g.abs().max()) < 1e-3 * N)

    c.section("3. unobserved cells predicted (CG preconditioned by the shifted solve)")
    K = ks.kron(*[kernel(x, e) for e in ells])
    S = K.shifted(s2)
    missing = rng.random(N) < 0.2
    d = np.where(missing, 1e6, 0.0)  # unobserved: (almost) infinite noise
    y_obs = np.where(missing, 0.0, y)
    t0 = time.perf_counter()
    alpha, its = S.solve_plus_diagonal(d, y_obs, rtol=1e-8)
    mean = K @ alpha  # posterior mean on every cell
    t_pred = time.perf_counter() - t0
    print(f"{int(missing.sum())} unobserved cells; CG converged in {its} iterations, "
          f"{fmt_time(t_pred)}")
    err = np.sqrt(np.mean((mean[missing] - y[missing]) ** 2))
    print(f"RMS error of the predictions at the hidden cells: {err:.3f} "
          f"(data standard deviation {y.std():.3f})")
    c.true("predictions at hidden cells beat the prior (RMS error < data std / 2)",
           err < 0.5 * y.std())
    if N <= 4000:
        Kd = K.toarray()
        obs = ~missing
        ref = Kd[:, obs] @ np.linalg.solve(Kd[np.ix_(obs, obs)] + s2 * np.eye(obs.sum()),
                                           y[obs])
        c.close("posterior mean equals the dense GP formula", mean, ref, rtol=1e-4)
    return c.finish()


if __name__ == "__main__":
    raise SystemExit(main())
