"""The Van Loan–Pitsianis rearrangement against the seed's RM_1/RM_2 (cells 134-137)."""

from __future__ import annotations

import naive
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kronsolve as ks
from kronsolve import _kernels

SETTINGS = settings(max_examples=40, deadline=None)


# The seed notebook's formulas (cells 135 and 136) and the loop reference live in naive.py.


def seed_M(m1, n1, m2, n2):
    """The string matrix of cell 134."""
    return np.array([[f"{i}{j}" for j in range(1, n1 * n2 + 1)]
                     for i in range(1, m1 * m2 + 1)])


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_seed_cell_134_strings(backend):
    m1, n1, m2, n2 = 3, 2, 2, 2
    M = seed_M(m1, n1, m2, n2)
    with _kernels._use_backend(backend):
        R = ks.rearrange(M, (m1, n1), (m2, n2))
    assert R.dtype == M.dtype
    np.testing.assert_array_equal(R, naive.seed_RM_1(M, m1, n1, m2, n2))
    np.testing.assert_array_equal(R, naive.seed_RM_2(M, m1, n1, m2, n2))
    assert R[:2].tolist() == [["11", "21", "12", "22"], ["31", "41", "32", "42"]]
    with _kernels._use_backend(backend):
        np.testing.assert_array_equal(ks.unrearrange(R, (m1, n1), (m2, n2)), M)


SIZES = st.integers(1, 6)


@SETTINGS
@given(m1=SIZES, n1=SIZES, m2=SIZES, n2=SIZES, dtype=st.sampled_from(
    [np.float64, np.int32, np.complex64, np.bool_, "<U2", object]))
def test_rearrange_matches_seed(m1, n1, m2, n2, dtype):
    M = seed_M(m1, n1, m2, n2)
    if dtype == "<U2":
        M = M.astype("<U2")
    elif dtype is object:
        M = M.astype(object)
    else:
        M = np.arange(M.size).reshape(M.shape).astype(dtype)
    expected = naive.seed_RM_1(M, m1, n1, m2, n2)
    np.testing.assert_array_equal(expected, naive.seed_RM_2(M, m1, n1, m2, n2))
    np.testing.assert_array_equal(expected, naive.rearrange(M, (m1, n1), (m2, n2)))
    for backend in ("numpy", "numba"):
        with _kernels._use_backend(backend):
            R = ks.rearrange(M, (m1, n1), (m2, n2))
            back = ks.unrearrange(R, (m1, n1), (m2, n2))
            again = ks.rearrange(ks.unrearrange(expected, (m1, n1), (m2, n2)), (m1, n1), (m2, n2))
        np.testing.assert_array_equal(R, expected)
        np.testing.assert_array_equal(back, M)
        np.testing.assert_array_equal(again, expected)


@SETTINGS
@given(m1=SIZES, n1=SIZES, m2=SIZES, n2=SIZES, seed=st.integers(0, 100))
def test_rearrange_of_kron_is_outer(m1, n1, m2, n2, seed):
    rng = np.random.default_rng(seed)
    B = rng.standard_normal((m1, n1))
    C = rng.standard_normal((m2, n2))
    outer = np.outer(B.flatten("F"), C.flatten("F"))
    for backend in ("numpy", "numba"):
        with _kernels._use_backend(backend):
            np.testing.assert_array_equal(ks.rearrange(np.kron(B, C), (m1, n1), (m2, n2)),
                                          outer)
            np.testing.assert_array_equal(ks.unrearrange(outer, (m1, n1), (m2, n2)),
                                          np.kron(B, C))


def _layouts(x):
    big = np.zeros((3 * x.shape[0], 2 * x.shape[1]), dtype=x.dtype)
    big[::3, ::2] = x
    ro = x.copy()
    ro.flags.writeable = False
    yield "strided", big[::3, ::2]
    yield "fortran", np.asfortranarray(x)
    yield "reversed", x[::-1, ::-1].copy()[::-1, ::-1]
    yield "readonly", ro
    yield "column-broadcast", np.broadcast_to(x[:, :1], x.shape)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int8, np.complex128, "<U2"])
@pytest.mark.parametrize("m1, n1, m2, n2", [(3, 2, 2, 2), (1, 5, 7, 1), (5, 3, 4, 6)])
def test_layouts(backend, dtype, m1, n1, m2, n2):
    M = seed_M(m1, n1, m2, n2)
    M = M.astype(dtype) if np.dtype(dtype).kind == "U" else np.arange(M.size).reshape(
        M.shape).astype(dtype)
    for name, v in _layouts(M):
        with _kernels._use_backend(backend):
            R = ks.rearrange(v, (m1, n1), (m2, n2))
            back = ks.unrearrange(np.asfortranarray(R), (m1, n1), (m2, n2))
        np.testing.assert_array_equal(R, naive.seed_RM_1(np.array(v), m1, n1, m2, n2), err_msg=name)
        np.testing.assert_array_equal(back, v, err_msg=name)


def test_large_default_backend_and_out():
    """Large inputs take the Numba kernel by default; out= and casting work."""
    m1, n1, m2, n2 = 24, 30, 20, 18
    rng = np.random.default_rng(3)
    M = rng.standard_normal((m1 * m2, n1 * n2))
    expected = naive.seed_RM_1(M, m1, n1, m2, n2)
    out = np.empty((m1 * n1, m2 * n2))
    assert ks.rearrange(M, (m1, n1), (m2, n2), out=out) is out
    np.testing.assert_array_equal(out, expected)
    cout = np.zeros((m1 * n1, m2 * n2), dtype=np.complex128)
    ks.rearrange(M, (m1, n1), (m2, n2), out=cout)
    np.testing.assert_array_equal(cout, expected)
    back = np.zeros((n1 * n2, m1 * m2)).T
    assert ks.unrearrange(expected, (m1, n1), (m2, n2), out=back) is back
    np.testing.assert_array_equal(back, M)


def test_ones_and_empty():
    x = np.arange(6.0).reshape(2, 3)
    # (1, 1) second factor: the rearrangement is vec(M) as a column
    np.testing.assert_array_equal(ks.rearrange(x, (2, 3), (1, 1)), x.flatten("F")[:, None])
    # (1, 1) first factor: vec(M) as a row
    np.testing.assert_array_equal(ks.rearrange(x, (1, 1), (2, 3)), x.flatten("F")[None, :])
    assert ks.rearrange(np.zeros((0, 4)), (0, 2), (3, 2)).shape == (0, 6)
    assert ks.unrearrange(np.zeros((0, 6)), (0, 2), (3, 2)).shape == (0, 4)


def test_errors():
    M = np.zeros((6, 4))
    with pytest.raises(
        ValueError,
        match=r"M has shape \(6, 4\), but \(m1, n1\)=\(4, 2\) and \(m2, n2\)=\(2, 2\) need "
        r"shape \(m1\*m2, n1\*n2\) = \(8, 4\)",
    ):
        ks.rearrange(M, (4, 2), (2, 2))
    with pytest.raises(ValueError, match=r"R has shape \(6, 4\), but .* = \(6, 6\)"):
        ks.unrearrange(M, (3, 2), (2, 3))
    with pytest.raises(ValueError, match="n1 must be a non-negative integer, got -2"):
        ks.rearrange(M, (3, -2), (-2, -2))
    with pytest.raises(ValueError, match="m2 must be a non-negative integer, got -1"):
        ks.unrearrange(M, (3, 2), (-1, 2))
    with pytest.raises(TypeError, match=r"\(m1, n1\) must be a pair of integers"):
        ks.rearrange(M, 6, (1, 4))
    with pytest.raises(ValueError, match="M must be a 2-D matrix"):
        ks.rearrange(np.zeros((2, 3, 4)), (1, 1), (1, 1))
    with pytest.raises(ValueError, match=r"out must have shape \(6, 4\)"):
        ks.rearrange(M, (3, 2), (2, 2), out=np.zeros((6, 5)))


@pytest.mark.parametrize("dtype", [np.float64, np.int8, np.complex128])
@pytest.mark.parametrize("m1, n1, m2, n2", [(3, 7, 5, 100), (2, 300, 3, 3), (70, 3, 1, 9),
                                            (1, 1, 33, 65), (9, 130, 2, 1)])
def test_kernel_block_edges(dtype, m1, n1, m2, n2):
    """Shapes whose blocks do not divide the axes (partial blocks on every axis)."""
    M = np.arange(m1 * m2 * n1 * n2).reshape(m1 * m2, n1 * n2).astype(dtype)
    expected = naive.seed_RM_1(M, m1, n1, m2, n2)
    with _kernels._use_backend("numba"):
        R = ks.rearrange(M, (m1, n1), (m2, n2))
        back = ks.unrearrange(R, (m1, n1), (m2, n2))
        S = ks.shuffle2(M, (m1, m2), (n1, n2))
    np.testing.assert_array_equal(R, expected)
    np.testing.assert_array_equal(back, M)
    np.testing.assert_array_equal(S, M.reshape(m1, m2, n1, n2).transpose(1, 0, 3, 2)
                                  .reshape(M.shape))


@pytest.mark.parametrize("m1, n1, m2, n2", [(3, 2, 2, 2), (1, 5, 7, 1), (2, 3, 4, 1), (0, 2, 3, 2)])
def test_unrearrange_matches_naive_loops(m1, n1, m2, n2):
    rng = np.random.default_rng(m1 + 3 * n2)
    R = rng.standard_normal((m1 * n1, m2 * n2))
    M = ks.unrearrange(R, (m1, n1), (m2, n2))
    np.testing.assert_array_equal(M, naive.unrearrange(R, (m1, n1), (m2, n2)))
    np.testing.assert_array_equal(naive.rearrange(M, (m1, n1), (m2, n2)), R)
    np.testing.assert_array_equal(ks.rearrange(M, (m1, n1), (m2, n2)),
                                  naive.rearrange(M, (m1, n1), (m2, n2)))
