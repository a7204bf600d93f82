import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import pytest  # noqa: E402
from backends import BACKENDS, Backend, _skip_reason  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def _fused_kernels_compiled():
    """Compile the fused kernels before any test (no background compilation
    allocating memory or competing for the cores while tests measure them)."""
    import kronsolve as ks

    ks.warm_up(("float32", "float64", "complex64", "complex128"))
    yield


@pytest.fixture(autouse=True)
def _pin_small_eigh_tier():
    """Pin the tier of the small symmetric eigensolver for every test.

    In a process, the first small decompositions go to LAPACK and later ones to
    the Numba-compiled kernel (see ``kronsolve._smalleig``); a test that
    compares two solves bit for bit must not see the switch between them.
    Tests run on the compiled tier (its own tests and the LAPACK tier's force
    their tier explicitly).
    """
    from kronsolve import _smalleig

    with _smalleig._use_tier("numba"):
        yield


@pytest.fixture(params=BACKENDS)
def be(request):
    """The array library of a test: NumPy always, PyTorch and Dask where installed,
    CuPy where a CUDA GPU is present; the others are skipped with the reason."""
    reason = _skip_reason(request.param)
    if reason:
        pytest.skip(reason)
    return Backend(request.param)
