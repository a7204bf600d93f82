"""The public API: every exported name exists, is documented and has an example."""

import inspect
import subprocess
import sys

import pytest

import kronsolve

PUBLIC = [n for n in kronsolve.__all__ if not n.startswith("__")]


def test_all_is_sorted_and_unique():
    assert len(set(kronsolve.__all__)) == len(kronsolve.__all__)
    assert sorted(PUBLIC, key=str.lower) == sorted(PUBLIC, key=str.lower)


@pytest.mark.parametrize("name", PUBLIC)
def test_public_name_documented_with_example(name):
    obj = getattr(kronsolve, name)
    doc = inspect.getdoc(obj)
    assert doc, f"kronsolve.{name} has no docstring"
    assert "Examples" in doc and ">>>" in doc, f"kronsolve.{name} has no Examples section"


def test_no_private_leaks():
    public = {n for n in dir(kronsolve) if not n.startswith("_")}
    modules = {n for n in public if inspect.ismodule(getattr(kronsolve, n))}
    assert public - modules <= set(kronsolve.__all__)


def test_import_is_light():
    """``import kronsolve`` must not import Numba (kernels compile lazily)."""
    code = "import sys, kronsolve; print('numba' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
