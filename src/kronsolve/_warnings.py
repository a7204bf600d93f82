"""The warning category of kronsolve's accuracy checks.

Python shows a warning once per call site by default, so in a loop every later
inaccurate result would pass silently.  An ``"always"`` filter for this
category is appended to the filter list at import: it applies where no filter
of the user's (set before or after the import) says otherwise.
"""

from __future__ import annotations

import warnings

__all__ = ["AccuracyWarning"]


class AccuracyWarning(RuntimeWarning):
    """A result that may be inaccurate: an ill-conditioned problem or basis.

    Issued on every call that deserves one (not once per call site).  Turn it
    into an error with ``warnings.simplefilter("error", kronsolve.AccuracyWarning)``.

    Examples
    --------
    The eigenvector route asked for a nearly defective factor:

    >>> import warnings
    >>> import numpy as np
    >>> import kronsolve as ks
    >>> J = np.array([[1.0, 1.0], [1e-20, 1.0 + 1e-9]])
    >>> with warnings.catch_warnings(record=True) as w:
    ...     solver = ks.KronSumSolver([J, J], method="eig")
    >>> [issubclass(x.category, ks.AccuracyWarning) for x in w]
    [True]
    """


warnings.filterwarnings("always", category=AccuracyWarning, append=True)
