"""The 3-D Sylvester (Poisson) solve on a Dask cluster, larger than one worker's memory.

Builds a lazy random right-hand side ``B`` of shape ``(n, n, n)`` (generated on
the workers, never on the client), solves ``X ×₁ T + X ×₂ T + X ×₃ T = B`` with
:func:`kronsolve.solve_sylvester3d` (``T`` the 1-D Dirichlet Laplacian) as one
lazy graph, and computes a few scalars of the solution (and, with ``--check``,
the relative residual) on the cluster.  It reports the wall time and each
worker's peak resident memory (sampled every 50 ms) and the most it held spilled on disk.

By default it starts a ``dask.distributed.LocalCluster`` of 2 single-threaded
worker processes with a 384 MB memory limit each, and ``n = 576``: a 1.5 GB
float64 tensor, 4x one worker's limit (2x the whole cluster's), so workers
spill to disk.  ``--scheduler ADDRESS`` runs it on an existing cluster
instead::

    python benchmarks/dask_cluster.py                       # local cluster
    python benchmarks/dask_cluster.py --n 384 --check       # smaller, with residual
    python benchmarks/dask_cluster.py --scheduler tcp://scheduler-host:8786 --n 1024

It needs ``pip install "kronsolve[dask]"`` (dask[array,distributed]); the
workers of an existing cluster need kronsolve installed too.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any


def _sampler_start(dask_worker: Any = None, interval: float = 0.05) -> None:
    """On a worker: sample the process's RSS and spilled bytes every ``interval`` s."""
    import builtins
    import threading

    import psutil

    proc = psutil.Process()
    box = {"peak": proc.memory_info().rss, "disk": 0, "stop": False}
    builtins._kronsolve_rss_box = box  # type: ignore[attr-defined]

    def spilled() -> int:
        total = getattr(getattr(dask_worker, "data", None), "spilled_total", None)
        return int(total[0]) if total is not None else 0

    def run() -> None:
        while not box["stop"]:
            box["peak"] = max(box["peak"], proc.memory_info().rss)
            box["disk"] = max(box["disk"], spilled())
            time.sleep(interval)

    threading.Thread(target=run, daemon=True, name="kronsolve-rss").start()


def _sampler_stop(dask_worker: Any = None) -> dict:
    import builtins

    box = getattr(builtins, "_kronsolve_rss_box", {"peak": 0, "disk": 0})
    box["stop"] = True
    return {"peak": int(box["peak"]), "disk": int(box["disk"])}


def _laplacian_3d(Xb: Any) -> Any:
    """``T ⊕ T ⊕ T`` applied to a block with one halo plane on each side of axis 0."""
    import numpy as np

    out = np.zeros_like(Xb)
    c = Xb[1:-1]
    o = out[1:-1]
    o[...] = 6.0 * c - Xb[:-2] - Xb[2:]
    o[:, 1:, :] -= c[:, :-1, :]
    o[:, :-1, :] -= c[:, 1:, :]
    o[:, :, 1:] -= c[:, :, :-1]
    o[:, :, :-1] -= c[:, :, 1:]
    return out


def _laplacian(n: int) -> Any:
    import numpy as np

    return 2.0 * np.eye(n) - np.eye(n, k=1) - np.eye(n, k=-1)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=576, help="grid size per axis (default 576)")
    p.add_argument("--workers", type=int, default=2, help="local workers (default 2)")
    p.add_argument("--memory-limit", default="384MB",
                   help="memory limit of each local worker (default 384MB)")
    p.add_argument("--chunk-size", default="8MiB",
                   help="Dask array.chunk-size: target block size (default 8MiB)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="address of an existing Dask scheduler, e.g. tcp://host:8786 "
                        "(default: start a LocalCluster)")
    p.add_argument("--check", action="store_true",
                   help="also compute the relative residual (a 7-point stencil of X)")
    args = p.parse_args(argv)

    try:
        import dask
        import dask.array as da
        from dask.distributed import Client, LocalCluster
        from dask.utils import format_bytes, parse_bytes
    except ImportError:
        print("dask_cluster.py needs dask[array,distributed]: pip install 'kronsolve[dask]'")
        return 0
    import logging

    import kronsolve as ks

    # the P2P rechunk's routine notices ("Shuffle ... initialized") are not news here
    logging.getLogger("distributed.shuffle").setLevel(logging.ERROR)
    n = args.n
    nbytes = n**3 * 8
    cluster = None
    if args.scheduler:
        client = Client(args.scheduler)
    else:
        cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1,
                               memory_limit=args.memory_limit, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
    try:
        info = client.scheduler_info()
        workers = info["workers"]
        limits = {w: v.get("memory_limit", 0) for w, v in workers.items()}
        lim = min(limits.values()) if limits else 0
        threads = sum(v.get("nthreads", 1) for v in workers.values())
        print(f"cluster: {len(workers)} workers, {threads} threads, memory limit per worker "
              f"{format_bytes(lim) if lim else 'none'}")
        print(f"problem: n = {n}, B and X {format_bytes(nbytes)} each (float64)"
              + (f", {nbytes / lim:.1f}x one worker's limit" if lim else ""))
        with dask.config.set({"array.chunk-size": args.chunk_size}):
            slab = max(1, parse_bytes(args.chunk_size) // (n * n * 8))
            B = da.random.default_rng(0).standard_normal((n, n, n), chunks=(slab, n, n))
            T = _laplacian(n)
            t0 = time.perf_counter()
            X = ks.solve_sylvester3d(B, T)  # lazy: nothing runs yet
            build = time.perf_counter() - t0
            outs = [da.sqrt((X * X).sum()), X[n // 2, n // 2, n // 2]]
            if args.check:
                # the operator as its 7-point stencil, independently of kronsolve:
                # X back in B's slabs, one-plane halos (zero outside: Dirichlet)
                AX = X.rechunk(B.chunks).map_overlap(_laplacian_3d, depth={0: 1, 1: 0, 2: 0},
                                                     boundary=0, dtype=X.dtype)
                R = AX - B
                outs += [da.sqrt((R * R).sum()), da.sqrt((B * B).sum())]
            print(f"graph: {len(X.__dask_graph__())} tasks for the solve, built in "
                  f"{build * 1e3:.0f} ms; blocks of {format_bytes(B.nbytes // B.npartitions)}")
            client.run(_sampler_start)
            t0 = time.perf_counter()
            vals = dask.compute(*outs)
            wall = time.perf_counter() - t0
            stats = client.run(_sampler_stop)
        print(f"time: {wall:.1f} s for the solve"
              + (" and the residual" if args.check else "")
              + f" ({n**3 / wall / 1e6:.1f} M unknowns/s)")
        print(f"||X|| = {vals[0]:.6g}, X[n/2, n/2, n/2] = {vals[1]:.6g}")
        if args.check:
            print(f"relative residual ||(T+T+T) X - B|| / ||B|| = {vals[2] / vals[3]:.2e}")
        print("worker                       peak RSS   limit      peak spilled to disk")
        for w, s in sorted(stats.items()):
            lw = limits.get(w, 0)
            print(f"{w:<28} {format_bytes(s['peak']):<10} "
                  f"{format_bytes(lw) if lw else 'none':<10} {format_bytes(s['disk'])}")
        if args.check and not vals[2] / vals[3] < 1e-8:
            print("FAILED: residual too large")
            return 1
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
