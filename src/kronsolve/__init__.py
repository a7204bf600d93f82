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

from ._kronproduct import KronProduct, KronProductSum, kron, set_dense_limit
from ._modeprod import kron_matvec, mode_product, multi_mode_product
from ._version import __version__

__all__ = [
    "KronProduct",
    "KronProductSum",
    "__version__",
    "kron",
    "kron_matvec",
    "mode_product",
    "multi_mode_product",
    "set_dense_limit",
]
