"""The benchmark suite by workload: kronsolve against its baselines and peers, in one run.

Every workload of ``kronsolve bench`` (Kronecker matvecs for d = 2, 3, 4 over a
range of n, 64 right-hand sides, the 3-D and 2-D Sylvester solves, shuffle and
rearrangement) becomes one pytest-benchmark group per size, holding kronsolve,
explicit ``np.kron`` (build and matvec timed separately, where the matrix fits
in 2 GiB), ``np.einsum(optimize='optimal')``, ``opt_einsum.contract_expression``,
the peer libraries, SciPy, the dense solve and NumPy fancy indexing.  A peer that
is not installed is reported as a skip with the reason (``-rs``), never dropped.

``pytest benchmarks/bench_workloads.py --benchmark-only`` times the full sizes;
the plain test run (benchmarks disabled) runs the quick sizes once and checks
that every method agrees with kronsolve.
"""

from __future__ import annotations

import pytest

from kronsolve._bench import _close, _workloads

_REFERENCE: dict[str, object] = {}


def pytest_generate_tests(metafunc):
    if "bench_case" not in metafunc.fixturenames:
        return
    session = getattr(metafunc.config, "_benchmarksession", None)
    quick = session is None or session.disabled
    params, ids = [], []
    for key, make in _workloads(quick).items():
        for case in make():
            for method in case.methods:
                params.append((key, case, method))
                ids.append(f"{key}-{case.size}-{method.name}".replace(" ", "_"))
    metafunc.parametrize("bench_case", params, ids=ids)


def test_workload(benchmark, bench_case):
    key, case, method = bench_case
    benchmark.group = f"{case.workload} {case.size}"
    if method.fn is None:
        pytest.skip(f"{method.name}: {method.note}")
    ref_key = f"{key}/{case.workload}/{case.size}"
    ref_method = case.methods[0]
    if ref_key not in _REFERENCE:
        _REFERENCE[ref_key] = ref_method.fn()
    result = benchmark(method.fn)
    if method.check:
        assert _close(result, _REFERENCE[ref_key], case.tol), (
            f"{method.name} disagrees with {ref_method.name} on {case.workload} {case.size}"
        )
    if case.flops is not None and benchmark.stats is not None:
        benchmark.extra_info["gflops"] = case.flops / benchmark.stats.stats.median / 1e9
