"""The workloads of ``kronsolve bench`` as pytest-benchmark groups, one per size.

Every workload (Kronecker matvecs for d = 2, 3, 4 over a range of n, 64
right-hand sides, the 3-D and 2-D Sylvester solves, the shuffle and the
rearrangement) becomes one group per size, holding kronsolve and each of its
alternatives: ``np.einsum(optimize='optimal')``, ``opt_einsum``, the peer
libraries, SciPy, explicit ``np.kron`` (build and matvec as two benchmarks,
where the matrix fits under the report's memory cap), the assembled dense
solve, NumPy fancy indexing and ``np.copyto``.  A peer that is not installed is
a skip with its install command (``-rs``), never dropped.

``pytest benchmarks/bench_workloads.py --benchmark-only`` times the full sizes;
the plain test run (benchmarks disabled) runs the quick sizes once and checks
every method's result against kronsolve's.
"""

from __future__ import annotations

import pytest

from kronsolve import _bench

# the one case whose inputs are alive: {"key": (workload, n), "env": ..., "ref": ...}
_CURRENT: dict = {}


def pytest_generate_tests(metafunc):
    if "bench_case" not in metafunc.fixturenames:
        return
    session = getattr(metafunc.config, "_benchmarksession", None)
    quick = session is None or session.disabled
    params, ids = [], []
    for wl in _bench.WORKLOADS:
        for n in (wl.quick if quick else wl.sizes):
            case = wl.case(n)  # names only: the inputs are built when a test needs them
            names = [m.name for m in case.methods if m.make is not None]
            names += [_bench.PEERS[p][0] for p in case.missing]
            for name in names:
                params.append((wl, n, name))
                ids.append(f"{wl.key}-{case.size}-{name}".replace(" ", "_"))
    metafunc.parametrize("bench_case", params, ids=ids)


def _current(wl: _bench.Workload, n: int, case: _bench.Case) -> dict:
    """The case's inputs and kronsolve's result, built once for all its methods."""
    if _CURRENT.get("key") != (wl.key, n):
        _CURRENT.clear()  # free the previous size's arrays first
        env = case.setup()
        _CURRENT.update(key=(wl.key, n), env=env, ref=case.kronsolve.make(env)())
    return _CURRENT


def test_workload(benchmark, bench_case):
    wl, n, name = bench_case
    case = wl.case(n)
    benchmark.group = f"{wl.key} {case.size}"  # as in --workloads (and a plain file name)
    missing = {_bench.PEERS[p][0]: p for p in case.missing}
    if name in missing:
        pytest.skip(f"{name} is not installed: {_bench.PEERS[missing[name]][1]}")
    method = next(m for m in case.methods if m.name == name)
    too_big = _bench._too_big(method)
    if too_big:
        pytest.skip(f"{name} at {case.size}: {too_big}")
    cur = _current(wl, n, case)
    with _bench.jax_float64():
        result = benchmark(method.make(cur["env"]))
    if method.check:
        assert _bench._close(result, cur["ref"], case.tol), (
            f"{name} disagrees with kronsolve on {wl.title}, {case.size}"
        )
    if case.flops and method.structured and benchmark.stats is not None:
        benchmark.extra_info["gflops"] = case.flops / benchmark.stats.stats.median / 1e9
