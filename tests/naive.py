"""Naive reference implementations: slow, obviously correct, used by the tests."""

from __future__ import annotations

from functools import reduce

import numpy as np


def kron_dense(*factors):
    """``np.kron(np.kron(A1, A2), ...)`` of dense copies of the factors."""
    dense = [F.toarray() if hasattr(F, "toarray") else np.asarray(F) for F in factors]
    return reduce(np.kron, dense)


def mode_product_naive(X, A, mode):
    """``X ×_mode A`` by moving the axis to the front and one matrix product."""
    Xm = np.moveaxis(X, mode, 0)
    Y = np.tensordot(A, Xm, axes=(1, 0))
    return np.moveaxis(Y, 0, mode)
