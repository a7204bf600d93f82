"""Gradients of the Kronecker-sum solvers by implicit differentiation (PyTorch and JAX).

For ``X = L⁻¹ B`` with the operator
``L = Σ_k M1 ⊗ … ⊗ K_k ⊗ … ⊗ Md + s·M1 ⊗ … ⊗ Md`` (``M_j = I`` without masses)
the backward pass is one more solve, with the adjoint operator, and a few
contractions:

* ``G = L⁻ᴴ X̄`` (the forward decomposition reused: the same one for
  symmetric factors, the adjoint modes of :func:`_adjoint_mode` otherwise);
* ``B̄ = G``;
* ``K̄_k = -G_(k) Y_(k)ᴴ`` with ``Y = X ×_{j≠k} M_j`` (the mode-``k`` unfoldings,
  every other axis, batch axes included, summed);
* ``M̄_j = -G_(j) W_(j)ᴴ`` with ``W = Σ_{k≠j} X ×_k K_k ×_{i∉{j,k}} M_i + s·X ×_{i≠j} M_i``;
* ``s̄ = -Σ G·conj(X ×_all M)``.

No eigenvalue gaps are divided by (repeated eigenvalues are harmless), and the
gradient with respect to a factor is the full, unsymmetrized one of the
operator as written, so a symmetric factor's gradient has its non-symmetric
part.  The exception is an explicit ``method="eigh"`` or ``assume_a="sym"``,
whose solve uses the factors' Hermitian parts ``(A + Aᴴ)/2``: its gradient is
that of the function computed, the Hermitian part of the full one.

Conventions: the formulas are written for PyTorch's, where the gradient of a
real loss with respect to a complex ``z`` is ``∂ℓ/∂Re z + i ∂ℓ/∂Im z``; JAX's
cotangents are their complex conjugates (``x̄_jax = conj(x̄_torch(conj(ȳ)))``).

PyTorch: :class:`torch.autograd.Function` (its backward is itself
differentiable, so ``gradgradcheck`` works).  JAX: ``jax.custom_vjp``; concrete
inputs take the solvers' full route (checks, Schur forms), traced ones
(``jax.jit``, ``jax.vmap``) a route of ``jax.numpy`` primitives only, see
:func:`jax_solve`.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from ._decomposition import Mode

__all__: list[str] = []


# ------------------------------------------------------------------ shared math
def _unfold(xp: Any, T: Any, ax: int) -> Any:
    """The mode-``ax`` unfolding ``(n, rest)`` of ``T``."""
    return xp.reshape(xp.moveaxis(T, ax, 0), (T.shape[ax], -1))


def _contract(be: Any, G: Any, Y: Any, ax: int) -> Any:
    """``Σ`` over every axis but ``ax`` of ``G[..i..] conj(Y[..j..])``: ``G_(ax) Y_(ax)ᴴ``."""
    xp = be.xp
    Yu = _unfold(xp, Y, ax)
    if be.is_complex(Yu.dtype):
        Yu = xp.conj(Yu)
    return _unfold(xp, G, ax) @ Yu.T


def _times(be: Any, X: Any, ops: list) -> Any:
    """``X`` times each ``(matrix, axis)`` of ``ops`` (``None`` matrices: the identity)."""
    ops = [(be.astype(A, X.dtype), ax) for A, ax in ops if A is not None]
    if not ops:
        return X
    return be.modeprod(X, [o[0] for o in ops], [o[1] for o in ops])


def _kron_terms(be: Any, X: Any, Ks: list, Ms: list, b: int, skip: int | None = None) -> Any:
    """``Σ_{k≠skip} X ×_k K_k ×_{i∉{k,skip}} M_i`` (the operator without its shift)."""
    d = len(Ks)
    out = None
    for k in range(d):
        if k == skip:
            continue
        t = _times(be, X, [(Ks[k], b + k)] + [(Ms[i], b + i) for i in range(d)
                                              if i != k and i != skip])
        out = t if out is None else out + t
    return out


def _factor_grads(be: Any, G: Any, X: Any, Ks: list, Ms: list, shift: Any,
                  want: list[bool]) -> list:
    """``[K̄_1..K̄_d, M̄_1..M̄_d, s̄]`` (None where ``want`` is False), torch convention.

    ``want`` has ``2d + 1`` entries: the factors, the masses, the shift.
    """
    xp = be.xp
    d = len(Ks)
    b = X.ndim - d
    out: list = [None] * (2 * d + 1)
    for k in range(d):
        if want[k]:
            Y = _times(be, X, [(Ms[j], b + j) for j in range(d) if j != k])
            out[k] = -_contract(be, G, Y, b + k)
    for j in range(d):
        if want[d + j] and Ms[j] is not None:
            W = _kron_terms(be, X, Ks, Ms, b, skip=j)
            if not _is_zero(shift):
                t = shift * _times(be, X, [(Ms[i], b + i) for i in range(d) if i != j])
                W = t if W is None else W + t
            out[d + j] = -_contract(be, G, W, b + j) if W is not None else \
                be.zeros(tuple(Ms[j].shape), G.dtype, like=G)
    if want[2 * d]:
        Z = _times(be, X, [(Ms[i], b + i) for i in range(d)])
        out[2 * d] = -xp.sum(G * (xp.conj(Z) if be.is_complex(Z.dtype) else Z))
    return out


def _is_zero(shift: Any) -> bool:
    return not hasattr(shift, "dtype") and shift == 0


def _conj_shift(shift: Any) -> Any:
    if hasattr(shift, "conj"):
        return shift.conj()
    return shift.conjugate() if isinstance(shift, complex) else shift


def _as_input(be: Any, g: Any, like: Any, sym: bool = False) -> Any:
    """A gradient in the dtype of its input ``like`` (real part for real inputs)."""
    if g is None:
        return None
    xp = be.xp
    if sym:
        g = (g + (xp.conj(g).T if be.is_complex(g.dtype) else g.T)) * 0.5
    if be.is_complex(g.dtype) and not be.is_complex(like.dtype):
        g = xp.real(g)
    return be.astype(g, like.dtype)


# -------------------------------------------------------------- adjoint solves
def _adjoint_mode(m: Mode) -> Mode:
    """The decomposition of ``Kᴴ`` from that of ``K``, without a new factorization.

    A diagonalization ``K = V Λ V⁻¹`` gives ``Kᴴ = V⁻ᴴ Λ̄ Vᴴ``.  A Schur form
    ``K = Q T Qᴴ`` gives ``Kᴴ = (QJ)(J Tᴴ J)(QJ)ᴴ`` with the reversal ``J``:
    ``J Tᴴ J`` is again upper (quasi-)triangular, its 2 x 2 blocks in reverse
    order.  The transforms (with a folded mass too) are swapped and
    conjugate-transposed: the solve ``bwd · mid⁻¹ · fwd`` has the adjoint
    ``fwdᴴ · mid⁻ᴴ · bwdᴴ``.
    """
    if m.hermitian:
        return m
    be = m.backend
    if m.kind != "schur":
        return Mode(be, be.conj(m.lam), be.H(m.bwd), be.H(m.fwd), False, kind=m.kind,
                    reduced=m.reduced)
    n = m.T.shape[0]
    T = np.ascontiguousarray(m.T.conj().T[::-1, ::-1])
    sub = np.zeros_like(m.sub)
    sub[:max(n - 1, 0)] = m.sub[:max(n - 1, 0)][::-1]
    fwd = np.ascontiguousarray(m.bwd.conj().T[::-1])
    bwd = np.ascontiguousarray(m.fwd.conj().T[:, ::-1])
    return Mode(be, np.conj(m.lam[::-1]), fwd, bwd, False, kind="schur", T=T, sub=sub,
                reduced=m.reduced)


def _adjoint_solver(solver: Any) -> Any:
    """A solver of ``Lᴴ`` (called with the conjugate shift) sharing ``solver``'s work.

    Symmetric (Hermitian) factors and masses make ``L`` self-adjoint up to the
    shift: the same solver.  Otherwise a shallow copy with the adjoint modes,
    the conjugate-transposed factors (for its residual checks) and fresh caches.
    """
    if all(m.hermitian for m in solver._modes):
        return solver
    adj = copy.copy(solver)
    done: dict = {}
    adj._modes = [done.setdefault(id(m), _adjoint_mode(m)) for m in solver._modes]
    dec = solver._modes[0].backend if solver._modes else None
    H = (lambda A: A) if dec is None else solver._backend.host.H if solver._backend.lazy \
        else solver._backend.H
    adj._Ks = [H(K) for K in solver._Ks]
    adj._Ms = [None if M is None else H(M) for M in solver._Ms]
    adj._checked, adj._packed, adj._fallback = {}, {}, None
    return adj


class _Problem:
    """A factored solve, its adjoint, and what its backward pass needs.

    ``sym``: the forward used the Hermitian parts of the factors (an explicit
    ``method="eigh"`` or ``assume_a="sym"``), so their gradients are symmetrized.
    """

    def __init__(self, solver: Any, check_finite: bool, name: str, adjoint: Any = None):
        self.solver = solver
        self.check_finite = check_finite
        self.name = name
        self.d = solver.ndim
        self.sym = solver._method == "eigh" or solver._assume_a == "sym"
        self._adjoint = adjoint

    def solve(self, B: Any, shift: Any) -> Any:
        return self.solver._solve(B, shift, check_finite=self.check_finite, overwrite_b=False,
                                  name=self.name, _plain=True)

    def adjoint(self) -> _Problem:
        if self._adjoint is None:
            self._adjoint = _Problem(_adjoint_solver(self.solver), False, "the cotangent",
                                     adjoint=self)
        return self._adjoint


# ------------------------------------------------------------------- dispatch
def differentiable(be: Any, B: Any, shift: Any) -> bool:
    """Whether a solve with ``B`` and ``shift`` goes through this module.

    PyTorch: when autograd is on and ``B`` or a tensor ``shift`` requires
    gradients (or ``shift`` is a tensor at all).  JAX: always (``custom_vjp``).
    """
    if be.name == "torch":
        import torch

        if hasattr(shift, "dtype") and torch.is_tensor(shift):
            return True
        return torch.is_grad_enabled() and bool(getattr(B, "requires_grad", False))
    return be.name == "jax"


def detach_factors(be: Any, mats: list, masses: list | None) -> tuple[list, Any, Any]:
    """``(mats, masses, originals)``: the factors the decomposition may use (no graph).

    PyTorch factors that require gradients are detached (the decomposition is
    never differentiated); ``originals`` keeps them, as ``(mats, masses)``, or
    is None when none requires gradients.  Traced JAX factors are refused.
    """
    if be.name == "jax":
        if any(be.traced(A) for A in [*mats, *(masses or ())] if A is not None):
            raise TypeError(
                "KronSumSolver needs concrete JAX factors, but they are traced (inside "
                "jax.jit, jax.vmap or jax.grad): build the solver outside the "
                "transformation, or call solve_kronsum / solve_sylvester3d inside it")
        return mats, masses, None
    if be.name != "torch":
        return mats, masses, None
    grads = [bool(getattr(A, "requires_grad", False)) for A in [*mats, *(masses or ())]]
    if not any(grads):
        return mats, masses, None
    seen: dict = {}

    def det(A: Any) -> Any:  # one detached tensor per object: aliases stay aliases
        if not getattr(A, "requires_grad", False):
            return A
        return seen.setdefault(id(A), A.detach())

    return ([det(A) for A in mats], None if masses is None else [det(M) for M in masses],
            (list(mats), None if masses is None else list(masses)))


def solve(solver: Any, be: Any, B: Any, shift: Any, check_finite: bool, name: str) -> Any:
    """A differentiable solve with a :class:`KronSumSolver` (PyTorch or JAX)."""
    prob = _Problem(solver, check_finite, name)
    if be.name == "jax":
        return _jax_call(prob, be, B, shift)
    return _torch_call(prob, be, B, shift)


# --------------------------------------------------------------------- PyTorch
def _factor_inputs(prob: _Problem, be: Any, like: Any) -> list:
    """The factors and masses as inputs of the autograd node, arrays of ``be``:
    originals where they require gradients, else the solver's own (same values,
    no graph; NumPy factors of a solve with tensors converted)."""
    solver = prob.solver
    orig = solver._grad
    d = prob.d
    ins: list = list(solver._Ks) + list(solver._Ms)
    src = solver._backend.host if solver._backend.lazy else solver._backend
    if src is not be:
        ins = [None if A is None else be.from_host(src.to_host(A), like=like) for A in ins]
    if orig is not None:
        mats, masses = orig
        for k in range(d):
            if getattr(mats[k], "requires_grad", False):
                ins[k] = mats[k]
            if masses is not None and getattr(masses[k], "requires_grad", False):
                ins[d + k] = masses[k]
    return ins


def _torch_call(prob: _Problem, be: Any, B: Any, shift: Any) -> Any:
    return _torch_function().apply(prob, be, B, shift, *_factor_inputs(prob, be, B))


_TORCH_FN: dict = {}  # the autograd Functions, made on first use


def _torch_function() -> Any:
    """The autograd Function (made on first use: torch is imported only then)."""
    if "solve" in _TORCH_FN:
        return _TORCH_FN["solve"]
    import torch

    class KronSumSolve(torch.autograd.Function):
        """``X = L⁻¹ B`` with the implicit backward (see the module docstring)."""

        @staticmethod
        def forward(ctx: Any, prob: _Problem, be: Any, B: Any, shift: Any, *mats: Any) -> Any:
            s = shift.item() if torch.is_tensor(shift) else shift
            X = prob.solve(B.detach(), s)
            ctx.prob, ctx.be, ctx.shift = prob, be, shift
            ctx.save_for_backward(B, *mats, X)
            return X

        @staticmethod
        def backward(ctx: Any, Xbar: Any) -> Any:
            prob, be, shift = ctx.prob, ctx.be, ctx.shift
            B, *mats, X = ctx.saved_tensors
            d = prob.d
            Ks, Ms = mats[:d], mats[d:]
            need = ctx.needs_input_grad  # (prob, be, B, shift, *mats)
            want = [need[4 + i] for i in range(2 * d)] + [need[3]]
            G = None
            if need[2] or any(want):
                H = be.H
                G = KronSumSolve.apply(prob.adjoint(), be, Xbar, _conj_shift(shift),
                                       *[H(K) for K in Ks],
                                       *[None if M is None else H(M) for M in Ms])
            grads = _factor_grads(be, G, X, list(Ks), list(Ms), shift, want) if any(want) \
                else [None] * (2 * d + 1)
            gB = _as_input(be, G, B) if need[2] else None
            gmats = [_as_input(be, grads[i], mats[i], prob.sym) for i in range(2 * d)]
            gs = grads[2 * d]
            if gs is not None:
                gs = _as_input(be, gs, shift)
            return (None, None, gB, gs, *gmats)

    _TORCH_FN["solve"] = KronSumSolve
    return KronSumSolve


# ------------------------------------------------------------------------- JAX
def jax_route(B: Any, mats: list, masses: Any, shift: Any, assume_a: str, method: str,
              check_finite: bool, factory: Any) -> Any:
    """``solve_kronsum`` for JAX inputs (None for others): a ``jax.custom_vjp`` solve.

    ``factory`` makes the :class:`KronSumSolver` of concrete factors (passed in:
    this module sits below the solvers).
    """
    from ._backends import backend_of, reference_of
    from ._validation import _check_shift, _check_tensor_rhs

    sh = shift if hasattr(shift, "dtype") and not isinstance(shift, np.ndarray) else None
    arrays = [B, *mats, *(masses or ()), sh]
    be = backend_of(*arrays)
    if be.name != "jax":
        return None
    like = reference_of(*arrays)
    B = be.tensor(B, "B", like)
    Ks = [be.matrix(A, f"mats[{k}]", like) for k, A in enumerate(mats)]
    for k, A in enumerate(Ks):
        if A.shape[0] != A.shape[1]:
            raise ValueError(f"mats[{k}] must be square, got shape {tuple(A.shape)}")
    d = len(Ks)
    if masses is not None and len(masses) != d:
        raise ValueError(f"masses must hold one matrix per factor: got {len(masses)} masses "
                         f"for {d} factors")
    Ms = [None if masses is None or masses[k] is None else
          be.matrix(masses[k], f"masses[{k}]", like) for k in range(d)]
    for k, M in enumerate(Ms):
        if M is not None and tuple(M.shape) != tuple(Ks[k].shape):
            raise ValueError(f"masses[{k}] has shape {tuple(M.shape)}, but mats[{k}] has shape "
                             f"{tuple(Ks[k].shape)}; they must match")
    ns = tuple(int(A.shape[0]) for A in Ks)
    flat = _check_tensor_rhs(ns, B, "B")
    if flat:
        B = be.xp.reshape(B, ns)
    if sh is None:
        shift = _check_shift(shift)
    elif sh.ndim != 0:
        raise ValueError(f"shift must be a scalar (a 0-d array), got shape {tuple(sh.shape)}")
    cfg = (assume_a, method, check_finite, factory)
    X = _jax_function(be, d, None, cfg, None if sh is not None else shift)(B, Ks, Ms, sh)
    return be.xp.reshape(X, (-1,)) if flat else X


def _jax_call(prob: _Problem, be: Any, B: Any, shift: Any) -> Any:
    """``KronSumSolver.solve`` with JAX arrays: differentiable in ``B`` and ``shift``."""
    from ._validation import _check_shift

    sh = shift if hasattr(shift, "dtype") and not isinstance(shift, np.ndarray) else None
    if sh is None:
        shift = _check_shift(shift)
    elif sh.ndim != 0:
        raise ValueError(f"shift must be a scalar (a 0-d array), got shape {tuple(sh.shape)}")
    return _jax_function(be, prob.d, prob, None, None if sh is not None else shift)(
        B, [], [], sh)


def _jax_function(be: Any, d: int, prob: _Problem | None, cfg: Any, shift0: Any) -> Any:
    """``f(B, Ks, Ms, sh) -> X``, a ``jax.custom_vjp`` with the implicit backward.

    With ``prob`` (a solver's solve) the factors are its own and ``Ks``, ``Ms``
    are empty; ``sh`` is a JAX scalar shift or None (then ``shift0``, a number).
    """
    import jax

    box: dict = {}

    def run(B: Any, Ks: list, Ms: list, sh: Any) -> tuple[Any, Any]:
        s = shift0 if sh is None else sh
        p = prob
        if p is None and not any(be.traced(A) for A in [*Ks, *Ms] if A is not None):
            assume_a, method, check_finite, factory = cfg
            p = _Problem(factory(list(Ks), masses=None if all(M is None for M in Ms)
                                 else list(Ms), assume_a=assume_a, method=method,
                                 check_finite=check_finite, _stacklevel=5),
                         check_finite, "B")
        if p is not None:
            box["prob"] = p
            if not be.traced(B) and not be.traced(s):
                return p.solve(B, _number(be, s)), None
            modes = _solver_modes(be, p.solver)
            real = p.solver._in_dtype.kind != "c"
            check = _solver_factors(be, p.solver) if any(
                m.kind == "eig" for m in p.solver._modes) else None
        else:
            modes = _traced_modes(be, Ks, Ms, cfg[0], cfg[1])
            real = not any(be.is_complex(A.dtype) for A in [*Ks, *Ms] if A is not None)
            check = None if cfg[1] == "eigh" or cfg[0] == "sym" else (list(Ks), list(Ms))
        box["real"] = real
        return _traced_solve(be, B, modes, s, real, check), modes

    @jax.custom_vjp
    def f(B: Any, Ks: list, Ms: list, sh: Any) -> Any:
        return run(B, Ks, Ms, sh)[0]

    def fwd(B: Any, Ks: list, Ms: list, sh: Any) -> tuple[Any, Any]:
        X, modes = run(B, Ks, Ms, sh)
        box["B"] = (B.dtype, tuple(B.shape))
        return X, (X, modes, Ks, Ms, sh)

    def bwd(res: Any, ct: Any) -> tuple:
        X, modes, Ks, Ms, sh = res
        xp = be.xp
        s = shift0 if sh is None else sh
        cs = _conj_shift(s)
        ctc = xp.conj(ct) if be.is_complex(ct.dtype) else ct
        p = box.get("prob")
        if modes is None and not be.traced(ctc):
            G = p.adjoint().solve(ctc, _number(be, cs))
        else:
            if modes is None:
                modes = _solver_modes(be, p.solver)
            adj = [(xp.conj(lam), be.H(bw), be.H(fw)) for lam, fw, bw in modes]
            real = box["real"] if "real" in box else p.solver._in_dtype.kind != "c"
            G = _traced_solve(be, ctc, adj, cs, real, None)
        if p is not None:
            Kv, Mv = _solver_factors(be, p.solver)
        else:
            Kv, Mv = list(Ks), list(Ms)
        want = [bool(Ks)] * d + [bool(Ms) and M is not None for M in Mv] + [sh is not None]
        grads = _factor_grads(be, G, X, Kv, Mv, s, want)
        sym = p.sym if p is not None else (cfg[1] == "eigh" or cfg[0] == "sym")

        def back(g: Any, like: Any, sym_: bool = False) -> Any:
            g = xp.conj(g) if be.is_complex(g.dtype) else g
            return _as_input(be, g, like, sym_)

        dt, shape = box["B"]
        gB = back(G, _Like(dt))
        gK = [back(grads[k], Ks[k], sym) for k in range(len(Ks))]
        gM = [None if M is None else back(grads[d + k], M, sym) for k, M in enumerate(Ms)]
        gs = None if sh is None else back(grads[2 * d], sh)
        return gB, gK, gM, gs

    f.defvjp(fwd, bwd)
    return f


class _Like:
    """Something with a ``dtype`` (for :func:`_as_input`)."""

    def __init__(self, dtype: Any):
        self.dtype = dtype


def _is_jax(be: Any, a: Any) -> bool:
    return type(a).__module__.partition(".")[0] in be._modules


def _number(be: Any, s: Any) -> Any:
    """A concrete scalar shift as a Python number."""
    if not hasattr(s, "dtype"):
        return s
    v = np.asarray(be.to_host(s))[()]
    return complex(v) if v.dtype.kind == "c" else float(v)


def _jax_array(be: Any, src: Any, a: Any) -> Any:
    """``a``, an array of the backend ``src``, as a JAX array."""
    return a if a is None or _is_jax(be, a) else be.from_host(src.to_host(a))


def _solver_modes(be: Any, solver: Any) -> list:
    """``[(lam, fwd, bwd)]`` of a solver for a traced solve (eigenvector routes only)."""
    if solver._tri or any(m.reduced for m in solver._modes):
        raise TypeError(
            "this solve takes the Schur route (non-symmetric factors), whose back-substitution "
            "runs on the host and cannot be traced by jax.jit or jax.vmap: call it outside "
            "the transformation, or pass method='eig' (eigenvector bases; each result is "
            "checked by its residual)")
    return [tuple(_jax_array(be, m.backend, a) for a in (m.lam, m.fwd, m.bwd))
            for m in solver._modes]


def _solver_factors(be: Any, solver: Any) -> tuple[list, list]:
    """A solver's factors and masses as JAX arrays (NumPy ones converted)."""
    src = solver._backend.host if solver._backend.lazy else solver._backend
    return ([_jax_array(be, src, A) for A in solver._Ks],
            [_jax_array(be, src, M) for M in solver._Ms])


def _traced_modes(be: Any, Ks: list, Ms: list, assume_a: str, method: str) -> list:
    """``[(lam, fwd, bwd)]`` of traced factors, with ``jax.numpy.linalg`` only."""
    if method == "schur" or (method == "auto" and assume_a != "sym"):
        raise TypeError(
            "the factors are traced JAX arrays (inside jax.jit, jax.vmap or jax.grad of a "
            "jitted function), so their symmetry cannot be tested to choose a route: pass "
            "method='eigh' for symmetric (Hermitian) factors or method='eig' for others "
            f"(got method={method!r}); the Schur route needs concrete factors")
    sym = method == "eigh" or assume_a == "sym"
    xp = be.xp
    done: dict = {}
    out = []
    for k, (K, M) in enumerate(zip(Ks, Ms)):
        key = (id(K), id(M))
        if key in done:
            out.append(done[key])
            continue
        cplx = be.is_complex(K.dtype) or (M is not None and be.is_complex(M.dtype))
        Kd = be.astype(K, be.double(cplx))
        Md = None if M is None else be.astype(M, be.double(cplx))
        if sym:
            Kh = (Kd + be.H(Kd)) * 0.5
            if Md is None:
                lam, W = xp.linalg.eigh(Kh)
            else:
                lam, W = be.eigh_pencil(Kh, (Md + be.H(Md)) * 0.5, f"masses[{k}]",
                                        tuple(M.shape))
            mode = (lam, be.H(W), W)
        else:
            lam, V = be.eig(Kd, Md)
            mode = (lam, xp.linalg.inv(V if Md is None else be.astype(Md, V.dtype) @ V), V)
        done[key] = mode
        out.append(mode)
    return out


def _traced_solve(be: Any, B: Any, modes: list, s: Any, real: bool, check: Any) -> Any:
    """Transform, divide, transform back, in ``jax.numpy`` (traceable).

    What the solvers raise for cannot be raised on traced values; the result is
    NaN instead: where an eigenvalue sum is zero to working precision (a
    singular operator) and, for non-Hermitian modes (``check``: their factors
    and masses), for every problem whose scaled residual
    ``‖B - op(X)‖ / (‖op‖ ‖X‖ eps)`` exceeds 30 (an ill-conditioned eigenvector
    basis).
    """
    xp = be.xp
    d = len(modes)
    b = B.ndim - d
    dts = [B.dtype] + [a.dtype for m in modes for a in m]
    if hasattr(s, "dtype"):
        dts.append(s.dtype)
    wd = be.work_dtype(*dts)
    if isinstance(s, complex):
        wd = be.complex_of(wd)
    real_out = real and not be.is_complex(B.dtype) and not isinstance(s, complex) and not (
        hasattr(s, "dtype") and be.is_complex(s.dtype))
    Bw = be.astype(B, wd)
    Y = _times(be, Bw, [(m[1], b + k) for k, m in enumerate(modes)])
    den = None
    scale = abs(s) if not hasattr(s, "dtype") else xp.abs(s)
    for k, (lam, _, _) in enumerate(modes):
        t = xp.reshape(be.astype(lam, wd), (lam.shape[0],) + (1,) * (d - 1 - k))
        den = t if den is None else den + t
        scale = scale + (xp.max(xp.abs(lam)) if lam.shape[0] else 0.0)
    den = den + s
    eps = be.eps(be.real_of(wd))
    den = xp.where(xp.abs(den) > d * eps * scale, den, xp.nan)
    X = _times(be, Y / den, [(m[2], b + k) for k, m in enumerate(modes)])
    if real_out and be.is_complex(X.dtype):
        X = xp.real(X)
    if check is not None:
        X = _residual_guard(be, Bw, X, check, s, b, eps)
    return X


def _norm2_bound(xp: Any, A: Any) -> Any:
    a = xp.abs(A)
    return xp.sqrt(xp.max(xp.sum(a, axis=0)) * xp.max(xp.sum(a, axis=1)))


def _residual_guard(be: Any, B: Any, X: Any, facs: Any, s: Any, b: int, eps: float) -> Any:
    """``X`` with NaN for the problems whose scaled residual exceeds 30 (traced eig route)."""
    xp = be.xp
    Ks, Ms = facs
    d = len(Ks)
    Xw = be.astype(X, B.dtype)
    R = B - _kron_terms(be, Xw, Ks, Ms, b)
    Z = _times(be, Xw, [(Ms[i], b + i) for i in range(d)])
    R = R - s * Z
    axes = tuple(range(b, b + d))
    nr = xp.sqrt(xp.sum(xp.abs(R) ** 2, axis=axes))
    nx = xp.sqrt(xp.sum(xp.abs(Xw) ** 2, axis=axes))
    kn = [_norm2_bound(xp, A) for A in Ks]
    mn = [1.0 if M is None else _norm2_bound(xp, M) for M in Ms]
    pm = 1.0
    for v in mn:
        pm = pm * v
    opn = xp.abs(s) * pm if hasattr(s, "dtype") else abs(s) * pm
    for k in range(d):
        t = kn[k]
        for j in range(d):
            if j != k:
                t = t * mn[j]
        opn = opn + t
    ok = nr <= 30.0 * eps * opn * nx
    return xp.where(xp.reshape(ok, tuple(ok.shape) + (1,) * d), X, xp.nan)


# ------------------------------------------------- shifted Kronecker products
def shifted_tracks(op: Any, *extra: Any) -> bool:
    """Whether an operation of the ShiftedKronProduct ``op`` needs the implicit backward
    (PyTorch with autograd on and a factor, the shift, ``diag`` or ``extra`` requiring it)."""
    if op._backend.name != "torch":
        return False
    import torch

    if not torch.is_grad_enabled():
        return False
    return any(getattr(a, "requires_grad", False)
               for a in (*op.kron.factors, op.shift, *(op.diag or ()), *extra))


def _shifted_inputs(op: Any) -> list:
    return [op.shift if hasattr(op.shift, "dtype") else None, *op.kron.factors,
            *(op.diag or ())]


def shifted_solve(op: Any, b: Any) -> Any:
    """``(K + s·D)⁻¹ b`` with the implicit backward (PyTorch)."""
    return _shifted_functions()[0].apply(op, b, *_shifted_inputs(op))


def shifted_logdet(op: Any) -> Any:
    """``log|det(K + s·D)|`` with the gradient ``tr((K + s·D)⁻¹ d(K + s·D))`` (PyTorch)."""
    return _shifted_functions()[1].apply(op, *_shifted_inputs(op))


def _shifted_adjoint_solve(op: Any, Xbar: Any) -> tuple[Any, Any, int]:
    """``(K + s·D)⁻ᴴ X̄`` in the operator's tensor layout: ``(G, layout of X̄, offset)``."""
    from ._layout import as_tensor

    be = op._backend
    xp = be.xp
    Xt, off = as_tensor(Xbar, op._ns)
    eig = op.eigenvalues()
    if be.is_complex(eig.dtype):
        eig = xp.conj(eig)
    if Xt.ndim > off + len(op._ns):
        eig = xp.reshape(eig, tuple(eig.shape) + (1,))
    dt = be.result_type(Xt, *op._Qs, eig)
    modes = list(range(off, off + len(op._ns)))
    Y = _times(be, be.astype(Xt, dt), list(zip(op._QHs, modes)))
    return _times(be, Y / eig, list(zip(op._Qs, modes))), Xt, off


def _shifted_functions() -> tuple:
    if "shifted" in _TORCH_FN:
        return _TORCH_FN["shifted"]
    import torch

    from ._layout import as_matrix, as_tensor

    def unpack(op: Any, ins: tuple) -> tuple[Any, list, list]:
        d = len(op._ns)
        return ins[0], list(ins[1:1 + d]), list(ins[1 + d:])

    def diag_term(be: Any, X: Any, diag: list, off: int, skip: int | None) -> Any:
        """``X`` times ``d_j`` along every mode ``j != skip``."""
        xp = be.xp
        for j, dj in enumerate(diag):
            if j != skip:
                shape = [1] * X.ndim
                shape[off + j] = dj.shape[0]
                X = X * xp.reshape(be.astype(dj, X.dtype), tuple(shape))
        return X

    class ShiftedSolve(torch.autograd.Function):
        """``x = (A1 ⊗ … ⊗ Ad + s·D)⁻¹ b`` with the implicit backward."""

        @staticmethod
        def forward(ctx: Any, op: Any, b: Any, *ins: Any) -> Any:
            x = op._solve_plain(b.detach())
            ctx.op = op
            ctx.save_for_backward(x)
            return x

        @staticmethod
        def backward(ctx: Any, xbar: Any) -> Any:
            op = ctx.op
            (x,) = ctx.saved_tensors
            be = op._backend
            xp = be.xp
            s, facs, diag = unpack(op, ctx.needs_input_grad[2:])
            G, _, off = _shifted_adjoint_solve(op, xbar)
            X, _ = as_tensor(x, op._ns)
            d = len(op._ns)
            gb = as_matrix(G, off, d, op.shape[0]) if ctx.needs_input_grad[1] else None
            if gb is not None:
                gb = _as_input(be, xp.reshape(gb, tuple(xbar.shape)), xbar)
            modes = list(range(off, off + d))
            gf = []
            for k, A in enumerate(op.kron.factors):
                if not facs[k]:
                    gf.append(None)
                    continue
                Y = _times(be, X, [(op.kron.factors[j], modes[j]) for j in range(d) if j != k])
                gf.append(_as_input(be, -_contract(be, G, Y, modes[k]), A))
            shift = op.shift
            gs = None
            if s:
                Z = X if op.diag is None else diag_term(be, X, op.diag, off, None)
                gs = _as_input(be, -xp.sum(G * xp.conj(Z)), shift)
            gd = []
            for k, want in enumerate(diag):
                if not want:
                    gd.append(None)
                    continue
                Z = diag_term(be, X, op.diag, off, k)
                axes = tuple(i for i in range(G.ndim) if i != modes[k])
                g = -_conj_shift(shift) * xp.sum(G * xp.conj(Z), axis=axes)
                gd.append(_as_input(be, g, op.diag[k]))
            return (None, gb, gs, *gf, *gd)

    class ShiftedLogdet(torch.autograd.Function):
        """``log|det(A1 ⊗ … ⊗ Ad + s·D)|`` with the trace formula for its gradient."""

        @staticmethod
        def forward(ctx: Any, op: Any, *ins: Any) -> Any:
            ctx.op = op
            return op._logabsdet_plain()

        @staticmethod
        def backward(ctx: Any, gbar: Any) -> Any:
            op = ctx.op
            be = op._backend
            xp = be.xp
            s, facs, diag = unpack(op, ctx.needs_input_grad[1:])
            d = len(op._ns)
            lams = op.factor_eigenvalues
            R = 1.0 / op.eigenvalues()  # (n1, ..., nd)

            def others(k: int, with_lams: bool) -> Any:
                """``Σ`` over the modes ``j != k`` of ``R`` (times ``Π_{j≠k} λ_j``)."""
                T = R
                for j in range(d):
                    if j != k and with_lams:
                        shape = [1] * d
                        shape[j] = op._ns[j]
                        T = T * xp.reshape(be.astype(lams[j], R.dtype), tuple(shape))
                axes = tuple(j for j in range(d) if j != k)
                return xp.sum(T, axis=axes) if axes else T

            gf = []
            for k, A in enumerate(op.kron.factors):
                if not facs[k]:
                    gf.append(None)
                    continue
                w = others(k, True)
                w = xp.conj(w) if be.is_complex(w.dtype) else w
                Q = op._Qs[k]
                Qw = Q * be.astype(w, Q.dtype if be.is_complex(Q.dtype) else
                                   be.result_type(Q, w))[None, :]
                gf.append(_as_input(be, gbar * (Qw @ be.H(be.astype(Q, Qw.dtype))), A))
            gs = None
            if s:
                t = xp.sum(R)
                gs = _as_input(be, gbar * (xp.conj(t) if be.is_complex(t.dtype) else t),
                               op.shift)
            gd = []
            for k, want in enumerate(diag):
                if not want:
                    gd.append(None)
                    continue
                u = others(k, False)
                Q = op._Qs[k]
                g = (xp.abs(Q) ** 2) @ u
                g = op.shift * g
                g = xp.conj(g) if be.is_complex(g.dtype) else g
                gd.append(_as_input(be, gbar * g, op.diag[k]))
            return (None, gs, *gf, *gd)

    _TORCH_FN["shifted"] = (ShiftedSolve, ShiftedLogdet)
    return ShiftedSolve, ShiftedLogdet
