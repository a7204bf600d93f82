"""kronsolve: fast Kronecker-structured linear algebra.

Lazy Kronecker products that never form the Kronecker matrix, mode-n products,
Kronecker-sum (tensor Sylvester) solvers, perfect shuffles and the Van Loan–
Pitsianis rearrangement.

Conventions
-----------
* Operators follow ``np.kron`` ordering exactly.
* A tensor maps to a vector in C order:
  ``kron(A1, ..., Ad) @ X.ravel() == multi_mode_product(X, [A1, ..., Ad]).ravel()``.
* Modes (axes) are 0-based, as NumPy axes.
"""

from ._backends.numpy import set_num_threads, set_workspace_limit
from ._fused import warm_up
from ._kpsvd import KPSVDResult, kpsvd, nearest_kron
from ._kronproduct import KronProduct, KronProductSum, kron, kron_matvec, set_dense_limit
from ._kronstack import KronStack
from ._kronsum import KronSum, kronsum
from ._modeprod import mode_product, multi_mode_product
from ._rearrange import rearrange, unrearrange
from ._shifted import ShiftedKronProduct
from ._shuffle import commutation_matrix, perfect_shuffle, shuffle, shuffle2
from ._solvers import KronSumSolver, solve_kronsum, solve_sylvester, solve_sylvester3d
from ._spectral import KronEigh
from ._version import __version__
from ._warnings import AccuracyWarning

__all__ = [
    "AccuracyWarning",
    "KPSVDResult",
    "KronProduct",
    "KronEigh",
    "KronProductSum",
    "KronStack",
    "KronSum",
    "KronSumSolver",
    "ShiftedKronProduct",
    "__version__",
    "commutation_matrix",
    "kpsvd",
    "kron",
    "kron_matvec",
    "kronsum",
    "mode_product",
    "multi_mode_product",
    "nearest_kron",
    "perfect_shuffle",
    "rearrange",
    "set_dense_limit",
    "set_num_threads",
    "set_workspace_limit",
    "shuffle",
    "shuffle2",
    "solve_kronsum",
    "solve_sylvester",
    "solve_sylvester3d",
    "unrearrange",
    "warm_up",
]
