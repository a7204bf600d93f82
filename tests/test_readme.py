"""The README's Python example runs and shows what it claims."""

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_blocks_run():
    text = README.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "README has no python example"
    ns: dict = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), ns)
    # the example's claims
    A1, A2, A3, x, y = (ns[k] for k in ("A1", "A2", "A3", "x", "y"))
    ref = np.einsum("abc,ia,jb,kc->ijk", x.reshape(64, 64, 64), A1, A2, A3, optimize=True)
    ref = ref.ravel()
    np.testing.assert_allclose(y, ref, rtol=1e-10, atol=1e-9)
    r, B = ns["residual"], ns["B"]
    assert np.linalg.norm(r) <= 1e-8 * np.linalg.norm(B) * 1e3
    _check_fem_block(ns)


def _check_fem_block(ns: dict) -> None:
    """The finite-element example: backward-Euler steps and the shift-0 solve, by residual."""
    import kronsolve as ks

    K1, M1, dt, u0, u = (ns[k] for k in ("K1", "M1", "dt", "u0", "u"))
    stiff = ks.kron(K1, M1, M1) + ks.kron(M1, K1, M1) + ks.kron(M1, M1, K1)
    mass = ks.kron(M1, M1, M1)
    v = u0
    for _ in range(10):                 # the same steps, each checked against its equation
        rhs = mass @ v / dt
        v_new = ns["fem"].solve(rhs, shift=1 / dt)
        np.testing.assert_allclose(stiff @ v_new + mass @ v_new / dt, rhs, rtol=1e-10,
                                   atol=1e-10 * np.abs(rhs).max())
        v = v_new
    np.testing.assert_allclose(u, v, rtol=1e-12, atol=0)
    np.testing.assert_allclose(stiff @ ns["u_poisson"], mass @ np.ones(u.size), rtol=1e-9,
                               atol=1e-12)


def test_readme_quick_start_commands():
    text = README.read_text()
    start = text.index("## Quick start")
    section = text[start:text.index("## ", start + 5)]
    cmds = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    assert len(cmds) == 2
    assert "kronsolve bench" in cmds[0] and 'pip install -e ".[bench]"' in cmds[0]
    assert "pytest" in cmds[1] and 'pip install -e ".[test]"' in cmds[1]


def _quick_start_commands() -> list[str]:
    text = README.read_text()
    start = text.index("## Quick start")
    section = text[start:text.index("## ", start + 5)]
    return [c.strip() for c in re.findall(r"```bash\n(.*?)```", section, flags=re.S)]


_STUB_PYTHON3 = """#!/bin/sh
# stands in for python3: only `python3 -m venv DIR` is expected
[ "$1 $2" = "-m venv" ] || { echo "unexpected: python3 $*" >&2; exit 3; }
echo "create $3" >> "$LOG"
mkdir -p "$3/bin"
bin="$(cd "$3/bin" && pwd)"
printf 'PATH="%s:$PATH"; export PATH\\n' "$bin" > "$3/bin/activate"
for tool in pip python kronsolve; do
    printf '#!/bin/sh\\necho "%s/%s $*" >> "$LOG"\\n' "$3" "$tool" > "$3/bin/$tool"
    chmod +x "$3/bin/$tool"
done
"""


@pytest.mark.parametrize("order", [(1,), (0, 1), (1, 0)], ids=["tests-alone", "bench-then-tests",
                                                             "tests-then-bench"])
def test_quick_start_commands_share_one_venv(tmp_path, order):
    """Run the quick-start commands as written, with stand-ins for python3, pip and the
    tools, in a fresh folder: each creates .venv only when missing and runs in it."""
    cmds = _quick_start_commands()
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    (stubs / "python3").write_text(_STUB_PYTHON3)
    (stubs / "python3").chmod(0o755)
    clone, log = tmp_path / "clone", tmp_path / "log"
    clone.mkdir()
    env = {"PATH": f"{stubs}:/usr/bin:/bin", "LOG": str(log), "HOME": str(tmp_path)}
    for i in order:
        proc = subprocess.run(["bash", "-c", cmds[i]], cwd=clone, env=env, capture_output=True,
                              text=True, timeout=60)
        assert proc.returncode == 0, f"command {i + 1} failed: {proc.stderr}"
    lines = log.read_text().splitlines()
    assert lines.count("create .venv") == 1, lines
    want = {0: [".venv/pip install -e .[bench]", ".venv/kronsolve bench"],
            1: [".venv/pip install -e .[test]", ".venv/python -m pytest"]}
    for i in order:
        for start in want[i]:
            assert any(line.startswith(start) for line in lines), (start, lines)
    assert (clone / ".venv").is_dir()


@pytest.mark.parametrize("doc", ["README.md", "examples/README.md"])
def test_links_stay_inside_the_repository(doc):
    """Every Markdown link and image of the README files names a file of the repository
    (or a heading of the same page), never a web address or a path outside the clone."""
    root = README.parent
    path = root / doc
    targets = re.findall(r"\]\(([^)\s]+)\)", path.read_text(encoding="utf-8"))
    assert targets, f"{doc} has no links"
    for target in targets:
        assert "://" not in target, f"{doc} links outside the repository: {target}"
        file_part = target.split("#")[0]
        if not file_part:       # an anchor on the same page
            continue
        resolved = (path.parent / file_part).resolve()
        assert resolved.is_relative_to(root), f"{doc} links outside the repository: {target}"
        assert resolved.exists(), f"{doc} links to a missing file: {target}"
