"""The command line: ``kronsolve --version`` and ``kronsolve bench``."""

import json
import subprocess
import sys
import time

import numpy as np
import pytest

from kronsolve import __version__, _bench
from kronsolve._plot import ALTERNATIVE, EXPLICIT, KRONSOLVE, PART, REFERENCE


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "kronsolve", *args], capture_output=True,
                          text=True, timeout=300, cwd=cwd)


def test_version():
    r = run("--version")
    assert r.returncode == 0
    assert r.stdout.strip() == f"kronsolve {__version__}"


def test_misspelt_option_prints_the_bench_usage():
    r = run("bench", "--quik")
    assert r.returncode == 2
    assert r.stderr.startswith("usage: kronsolve bench ")
    assert "unrecognized arguments: --quik (did you mean --quick?)" in r.stderr
    assert "Traceback" not in r.stderr


def test_option_before_the_subcommand_says_where_it_goes():
    r = run("--quick", "bench")
    assert r.returncode == 2
    assert r.stderr.startswith("usage: kronsolve bench ")
    assert "--quick goes after the sub-command: kronsolve bench --quick" in r.stderr


def test_unknown_workload_is_a_one_line_error():
    r = run("bench", "--workloads", "nope")
    assert r.returncode == 2
    assert "unknown workload nope" in r.stderr
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("opt", ["--json", "--plot"])
def test_unwritable_path_is_a_one_line_error(opt, tmp_path):
    r = run("bench", "--quick", opt, str(tmp_path / "missing" / "out"))
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert opt in r.stderr


def test_plot_and_no_plot_contradict(tmp_path):
    r = run("bench", "--plot", str(tmp_path / "p.png"), "--no-plot")
    assert r.returncode == 2
    assert "contradict" in r.stderr


def test_small_run_streams_rows_and_writes_json_and_plot(tmp_path):
    """The default outputs land in the working directory; rows arrive as they are measured."""
    proc = subprocess.Popen([sys.executable, "-m", "kronsolve", "bench", "--quick",
                             "--workloads", "matvec-d4"], cwd=tmp_path, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    arrivals = []
    for line in proc.stdout:
        arrivals.append((time.perf_counter(), line))
    err = proc.stderr.read()
    assert proc.wait(timeout=300) == 0, err
    rows = [t for t, line in arrivals if line.startswith("n=")]
    # a row per method and size, printed as measured (not all at once at the end)
    assert len(rows) >= 12
    assert rows[-1] - rows[0] > 0.2
    out = "".join(line for _, line in arrivals)
    assert "Kronecker matvec, d = 4" in out and "speed-up" in out
    assert "float64 GEMM" in out and f"kronsolve {__version__}" in out
    data = json.loads((tmp_path / "kronsolve-bench.json").read_text())
    if _bench._have("matplotlib"):
        assert (tmp_path / "kronsolve-bench.png").read_bytes()[:4] == b"\x89PNG"
    else:
        assert "plot not written: matplotlib is not installed" in out
    assert data["gemm_rate_gflops"] > 0
    assert 0 < data["peak_rss_bytes"] < _bench.MEMORY_CAP
    # peers not installed: listed once, at the end, a line per install command
    assert out.count("peers not installed") == (1 if data["not_installed"] else 0)
    listed = out.split("peers not installed")[-1].split("figures written")[0]
    for module, cmd in data["not_installed"].items():
        assert sum(module in line and cmd in line for line in listed.splitlines()) == 1
    for row in data["rows"]:  # every method is timed or says why not; all results agree
        assert row["median_s"] or row["note"]
        assert "DIFFERS" not in row["note"]
    by_size: dict[str, list[dict]] = {}
    for row in data["rows"]:
        by_size.setdefault(row["size"], []).append(row)
    for size, rows_ in by_size.items():
        ks_row = next(r for r in rows_ if r["role"] == KRONSOLVE)
        alts = [r for r in rows_ if r["role"] in (ALTERNATIVE, EXPLICIT) and r["median_s"]]
        best = min(alts, key=lambda r: r["median_s"])
        assert ks_row["baseline"] == best["method"], size
        assert ks_row["speedup"] == pytest.approx(best["median_s"] / ks_row["median_s"])
        assert ks_row["q1_s"] <= ks_row["median_s"] <= ks_row["q3_s"]
        for r in rows_:  # only kronsolve's row carries speed-ups
            if r is not ks_row:
                assert r["speedup"] is None and r["speedup_explicit"] is None
        explicit = [r for r in rows_ if r["role"] == EXPLICIT]
        assert len(explicit) == 1
        parts = [r for r in rows_ if r["role"] == PART]
        if explicit[0]["median_s"]:  # build + matvec, each timed on its own
            assert len(parts) == 2
            assert explicit[0]["median_s"] == pytest.approx(sum(p["median_s"] for p in parts))
            assert ks_row["speedup_explicit"] == pytest.approx(
                explicit[0]["median_s"] / ks_row["median_s"])
        else:  # the matrix would not fit under the cap: one row says so
            assert not parts and "memory cap" in explicit[0]["note"]


def _case(wrong: bool) -> tuple[_bench.Workload, _bench.Case]:
    """A tiny synthetic case: kronsolve, two alternatives (one maybe wrong), a reference."""
    def setup():
        return {"x": np.arange(4.0)}

    def const(v):
        return lambda env: (lambda: v)

    right = np.arange(4.0) * 2
    methods = [
        _bench.Method("ks", lambda env: (lambda: env["x"] * 2), KRONSOLVE),
        _bench.Method("alt", const(right + (1.0 if wrong else 0.0))),
        _bench.Method("copy", const(None), REFERENCE, check=False),
        _bench.Method("huge", const(right), nbytes=10 * _bench.MEMORY_CAP),
    ]
    case = _bench.Case("n=4", 4, None, setup, methods)
    wl = _bench.Workload("toy", "toy", "toy", "n", (4,), (4,), lambda n: case)
    return wl, case


@pytest.mark.parametrize("wrong", [False, True])
def test_case_checks_results_skips_what_does_not_fit_and_names_the_baseline(wrong, capsys):
    wl, case = _case(wrong)
    report = _bench.Report(gemm_rate_flops=1e9)
    table = _bench._Table(sys.stdout, _bench._Progress(1, False))
    s = _bench.Settings(budget=0.001, samples=3, max_time=0.1, gemm_n=8)
    _bench._run_case(wl, case, s, report, table)
    rows = {r.method: r for r in report.rows}
    assert [r.method for r in report.rows] == ["alt", "copy", "huge", "ks"]  # kronsolve last
    assert rows["huge"].median_s is None and "memory cap" in rows["huge"].note
    assert rows["copy"].median_s and rows["copy"].speedup is None
    assert rows["ks"].baseline == "alt"  # the reference is not an alternative
    assert ("RESULT DIFFERS" in rows["alt"].note) == wrong
    assert bool(report.differs) == wrong
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 4 and printed[-1].startswith("n=4") and " ks " in printed[-1]


def test_plot_from_saved_figures(tmp_path):
    """The plot draws from the JSON data alone: a method missing at larger sizes included."""
    pytest.importorskip("matplotlib")
    from kronsolve._plot import write_plot

    rows = []
    for n in (8, 16, 32):
        for method, role, t in (("kronsolve", KRONSOLVE, 1e-5 * n), ("einsum", ALTERNATIVE,
                                2e-5 * n), ("np.kron", EXPLICIT, 1e-3 * n**2 if n < 32 else None)):
            rows.append({"workload": "w", "size": f"n={n}", "x": n, "method": method,
                         "role": role, "median_s": t, "q1_s": t and 0.9 * t,
                         "q3_s": t and 1.1 * t, "speedup": 2.0 if role == KRONSOLVE else None})
    data = {"workloads": [{"key": "w", "title": "W", "what": "y = f(x)", "x_label": "n"}],
            "rows": rows, "memory_cap_bytes": 2e9, "quick": True, "gemm_n": 1024,
            "gemm_rate_gflops": 100.0,
            "machine": {"cpu": "CPU", "cores": 2, "memory_bytes": None},
            "versions": {"kronsolve": __version__, "python": "3", "numpy": "2", "scipy": "1"}}
    write_plot(data, str(tmp_path / "p.png"))
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
