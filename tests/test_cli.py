"""``kronsolve bench`` command line."""

import json
import subprocess
import sys

import pytest


def run(*args):
    return subprocess.run([sys.executable, "-m", "kronsolve", *args], capture_output=True,
                          text=True, timeout=300)


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


def test_small_run_writes_json(tmp_path):
    out = tmp_path / "report.json"
    r = run("bench", "--quick", "--workloads", "matvec-d4", "--no-progress", "--json", str(out))
    assert r.returncode == 0, r.stderr
    assert "kron matvec d=4" in r.stdout and "speed-up" in r.stdout
    data = json.loads(out.read_text())
    assert data["gemm_rate_gflops"] > 0
    methods = {row["method"]: row for row in data["rows"]}
    assert methods["kronsolve"]["median_s"] > 0
    assert methods["kronsolve"]["speedup"] > 1  # over building np.kron and multiplying
    for row in data["rows"]:  # every method is timed or says why not
        assert row["median_s"] or row["note"]
        assert "DIFFERS" not in row["note"]
