"""The README's Python example runs and shows what it claims."""

import re
from pathlib import Path

import numpy as np

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


def test_readme_quick_start_commands():
    text = README.read_text()
    start = text.index("## Quick start")
    section = text[start:text.index("## ", start + 5)]
    cmds = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    assert len(cmds) == 2
    assert "kronsolve bench" in cmds[0] and 'pip install -e ".[bench]"' in cmds[0]
    assert "pytest" in cmds[1] and 'pip install -e ".[test]"' in cmds[1]
