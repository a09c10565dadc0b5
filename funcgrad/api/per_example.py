"""Per-example gradient norms and per-example clipping, without forming per-example gradients.

Differential privacy (DP-SGD), data attribution and outlier detection need, for each example b of a
batch, the norm of g_b = grad of the loss on that example alone. ``vmap(grad)`` forms every g_b: memory
grows with batch x parameters. For a parameter W used once, by a ``dot_general`` y = X W (X holding
the example's rows: one, or T of them for a sequence) or as a convolution's kernel (X: the input's
patches, one row per output position), g_b follows from the layer's input and its output's
cotangent D = dL_b/dy alone ("ghost" norms, as Opacus does for PyTorch):

    g_b = X^T D,   ||g_b||^2 = <X X^T, D D^T>   (T x T Gram matrices; for T = 1, ||x||^2 ||d||^2)

or ``sum((X^T D)^2)`` where K x N (W's size) is smaller than T x T. Transposes, reshapes and casts of W
on its way to the ``dot_general`` keep the norm, so they are followed. Every other parameter (a bias,
a norm's scale, a grouped convolution's kernel, a weight used twice or inside a loop) gets its per-example
gradient from the rule of each equation that uses it, applied to that equation's per-example output
cotangent: one leaf at a time, never the whole per-example gradient.

Each example's cotangents come from one sweep of the loss on that example, vmapped over the batch
(so the batched program runs, as for the plain gradient), with respect to zero perturbations of the
parameters' uses (``funcgrad.core.graph_edit.perturb``), not the parameters: the parameters' own
cotangents are never computed.

``clipped_grad`` sums the per-example gradients each clipped to ``max_norm`` (DP-SGD's clipping step)
from the same sweep ("book-keeping"): a dense layer's clipped sum is sum_b w_b X_b^T D_b with
w_b = min(1, max_norm / ||g_b||), one matmul; the other leaves' per-example gradients are weighted and
summed. No second backward pass runs.

"The loss on example b alone" is the loss of a batch holding just that example, so a loss that is a
mean over the batch and one that is a sum give the same g_b; a loss whose examples interact (batch
normalisation, contrastive terms) has no per-example decomposition, and these functions do not apply.
"""

from __future__ import annotations

import dataclasses
import math
import weakref
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from funcgrad.core.graph_edit import perturb
from funcgrad.core.ir import Eqn, Graph, Var
from funcgrad.core.sweep import apply_rule, vjp_graph
from funcgrad.core.tracer import trace_flat
from funcgrad.errors import InputError

tree_util = jax.tree_util

# unary equations that map a tensor to one of the same Frobenius norm (a permutation or relabelling of
# its entries, or a cast): the per-example gradient norm of W equals that of its image
_NORM_PRESERVING = frozenset(
    {"transpose", "reshape", "squeeze", "expand_dims", "copy", "copy_p", "convert_element_type"}
)


class PerExampleNorms(NamedTuple):
    """Per-example gradient norms: ``total`` (shape (batch,)), and ``per_leaf``, the differentiated
    arguments' pytree with each leaf replaced by its (batch,) norms."""

    total: jax.Array
    per_leaf: Any


@dataclasses.dataclass(frozen=True)
class _Ghost:
    """A leaf whose only use is ``eqn`` (a dot_general), reading the leaf's image under ``chain`` (norm-
    preserving equations from the leaf on, often none) at ``operand``."""

    eqn: Eqn
    operand: int
    chain: tuple[Eqn, ...] = ()


@dataclasses.dataclass(frozen=True)
class _Direct:
    """A leaf whose per-example gradient is summed from the rules of the equations that read it."""

    eqns: tuple[Eqn, ...]


@dataclasses.dataclass(frozen=True)
class _Plan:
    """How one example's loss is swept: the perturbed graph, and per parameter leaf how its norm is found."""

    graph: Graph  # the example's loss, with zero perturbations on the outputs of the parameters' uses
    targets: tuple[Var, ...]  # the perturbed values, in the order of the graph's extra inputs
    copies: dict  # id(eqn of the traced graph) -> its copy in ``graph``
    leaves: tuple  # per parameter leaf: _Ghost or _Direct (or None: the loss does not read it)


def _uses(graph: Graph) -> dict[int, list[Eqn]]:
    uses: dict[int, list[Eqn]] = {}
    for e in graph.eqns:
        for a in e.inputs:
            if isinstance(a, Var):
                uses.setdefault(id(a), []).append(e)
    return uses


def _leaf_plan(v: Var, uses: dict[int, list[Eqn]], outputs: set[int]):
    first = uses.get(id(v), [])
    if not first:
        return None
    current, eqns, chain = v, first, []
    # follow the chain of norm-preserving images of the leaf (W.T, W.reshape(...), W.astype(...))
    while (
        len(eqns) == 1
        and eqns[0].primitive in _NORM_PRESERVING
        and len(eqns[0].outputs) == 1
        and eqns[0].outputs[0].type.is_float
        and id(current) not in outputs
    ):
        chain.append(eqns[0])
        current = eqns[0].outputs[0]
        eqns = uses.get(id(current), [])
    if (
        len(eqns) == 1
        and id(current) not in outputs
        and (_is_plain_dot(eqns[0], current) or _is_plain_conv(eqns[0], current))
    ):
        return _Ghost(eqns[0], [a is current for a in eqns[0].inputs].index(True), tuple(chain))
    return _Direct(tuple(dict.fromkeys(first)))  # each using equation once, in order


def _is_plain_dot(eqn: Eqn, w: Var) -> bool:
    """A dot_general reading ``w`` once, with no batch dimensions (a dense or projection layer)."""
    if eqn.primitive != "dot_general" or sum(a is w for a in eqn.inputs) != 1:
        return False
    (_, _), (lb, rb) = eqn.params["dimension_numbers"]
    return not lb and not rb


def _is_plain_conv(eqn: Eqn, w: Var) -> bool:
    """A convolution whose kernel is ``w`` (read once), with no feature or batch groups."""
    return (
        eqn.primitive == "conv_general_dilated"
        and eqn.inputs[1] is w
        and eqn.inputs[0] is not w
        and eqn.params["feature_group_count"] == 1
        and eqn.params["batch_group_count"] == 1
    )


_plans: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _plan_of(graph: Graph, n_params: int) -> _Plan:
    found = _plans.get(graph)
    if found is None:
        uses = _uses(graph)
        outputs = {id(a) for a in graph.outputs if isinstance(a, Var)}
        leaves = tuple(_leaf_plan(v, uses, outputs) if v.type.is_float else None for v in graph.inputs[:n_params])
        using = []
        for plan in leaves:
            eqns = () if plan is None else ((plan.eqn,) if isinstance(plan, _Ghost) else plan.eqns)
            using += [e for e in eqns if e not in using]
        targets = tuple(dict.fromkeys(v for e in using for v in e.outputs if v.type.is_float))
        perturbed, copies = perturb(graph, targets)
        found = _plans[graph] = _Plan(perturbed, targets, copies, leaves)
    return found


def _ghost_matrices(eqn: Eqn, operand: int, x, ct):
    """(X, D) as T x K and T x N matrices for y = dot_general(X, W) (or (W, X)), D = dL/dy: the
    example's gradient of W is X^T D, with K ordered as X's contracting dimensions and N as W's free ones.
    For a convolution, X holds the input's patches (K = input features x kernel window) and T runs over
    the output positions."""
    if eqn.primitive == "conv_general_dilated":
        return _conv_matrices(eqn, x, ct)
    (lc, rc), _ = eqn.params["dimension_numbers"]
    x_contract = rc if operand == 0 else lc  # X's dimensions contracted with W's
    w_free = len(eqn.inputs[operand].type.shape) - len(x_contract)
    x_free = [d for d in range(np.ndim(x)) if d not in x_contract]
    # the output's dimensions: lhs free then rhs free (no batch dimensions)
    n_x_free = len(x_free)
    ct_x_dims = list(range(w_free, w_free + n_x_free)) if operand == 0 else list(range(n_x_free))
    ct_w_dims = list(range(w_free)) if operand == 0 else list(range(n_x_free, n_x_free + w_free))
    t = math.prod(np.shape(x)[d] for d in x_free)
    k = math.prod(np.shape(x)[d] for d in x_contract)
    n = math.prod(np.shape(ct)[d] for d in ct_w_dims)
    xm = jnp.reshape(jnp.transpose(x, [*x_free, *x_contract]), (t, k)).astype(jnp.float32)
    dm = jnp.reshape(jnp.transpose(ct, [*ct_x_dims, *ct_w_dims]), (t, n)).astype(jnp.float32)
    return xm, dm


_HI = lax.Precision.HIGHEST


def _conv_matrices(eqn: Eqn, x, ct):
    """A convolution y = conv(X, W) is a dense layer on X's patches: the kernel's gradient is
    patches^T D, with patches T x (C_in * window) over the T output positions."""
    p = eqn.params
    dn = p["dimension_numbers"]
    kernel = eqn.inputs[1].type.shape
    window = tuple(kernel[d] for d in dn.rhs_spec[2:])
    patches = lax.conv_general_dilated_patches(
        x, window, p["window_strides"], p["padding"], p["lhs_dilation"], p["rhs_dilation"], dn, precision=_HI
    )
    positions = [dn.out_spec[0], *dn.out_spec[2:], dn.out_spec[1]]  # batch and spatial, then features
    k, n = patches.shape[dn.out_spec[1]], ct.shape[dn.out_spec[1]]
    xm = jnp.reshape(jnp.transpose(patches, positions), (-1, k)).astype(jnp.float32)
    dm = jnp.reshape(jnp.transpose(ct, positions), (-1, n)).astype(jnp.float32)
    return xm, dm


def _conv_kernel_layout(eqn: Eqn, g):
    """patches^T D (K x C_out, K ordered as (C_in, window...)) laid out as the kernel."""
    rhs = eqn.params["dimension_numbers"].rhs_spec
    kernel = eqn.inputs[1].type.shape
    g = jnp.reshape(g, (kernel[rhs[1]], *(kernel[d] for d in rhs[2:]), kernel[rhs[0]]))
    return jnp.transpose(g, np.argsort([rhs[1], *rhs[2:], rhs[0]]))


def _ghost_norm_sq(xm, dm):
    """||X^T D||^2: by the T x T Gram matrices, <X X^T, D D^T>, or directly, whichever is smaller."""
    (t, k), n = xm.shape, dm.shape[1]
    if t * t <= k * n:
        return jnp.sum(jnp.matmul(xm, xm.T, precision=_HI) * jnp.matmul(dm, dm.T, precision=_HI))
    return jnp.sum(jnp.square(jnp.matmul(xm.T, dm, precision=_HI)))


def _ghost_weighted_grad(how: _Ghost, leaf_value, weights, xm, dm):
    """sum_b w_b X_b^T D_b, laid out as the leaf: the dot's operand, then back through the chain."""
    (b, t, k), n = xm.shape, dm.shape[2]
    w = weights.astype(xm.dtype)
    if t == 1:
        g = jnp.einsum("btk,b,btn->kn", xm, w, dm, precision=_HI)
    else:
        # one (K x B*T) @ (B*T x N) product over every example's rows, each scaled by its weight: on this
        # CPU faster than the three-operand einsum for sequences, slower for single rows (benchmarks/per_example.py)
        scaled = jnp.reshape(xm * w[:, None, None], (b * t, k))
        g = jnp.einsum("rk,rn->kn", scaled, jnp.reshape(dm, (b * t, n)), precision=_HI)
    if how.eqn.primitive == "conv_general_dilated":
        g = _conv_kernel_layout(how.eqn, g)
    else:
        (lc, rc), _ = how.eqn.params["dimension_numbers"]
        w_contract = list(lc if how.operand == 0 else rc)
        shape = how.eqn.inputs[how.operand].type.shape
        w_free = [d for d in range(len(shape)) if d not in w_contract]
        order = [*w_contract, *w_free]
        g = jnp.transpose(jnp.reshape(g, [shape[d] for d in order]), np.argsort(order))
    # the chain's values (parameter-only), then its rules backwards
    env = {how.chain[0].inputs[0]: leaf_value} if how.chain else {}
    for e in how.chain:
        env[e.outputs[0]] = e.impl(env[e.inputs[0]])[0]
    for e in reversed(how.chain):
        g = apply_rule(e, [g], env, [True] * len(e.inputs))[0]
    return g


def _direct_grad(plan: _Plan, eqns, leaf: Var, env, saved, ct_of):
    """sum over uses of rule(use)[leaf]: the leaf's per-example gradient (None: no use reaches the loss)."""
    total = None
    for e in eqns:
        copy = plan.copies[id(e)]
        needed = [a is leaf for a in copy.inputs]
        out_cts = [ct_of.get(id(v)) for v in copy.outputs]
        if all(c is None for c in out_cts):
            continue  # its outputs do not reach the loss
        cts = apply_rule(copy, out_cts, env, needed, saved)
        for c, n in zip(cts, needed):
            if n and c is not None:
                total = c if total is None else total + c
    return total


def _example_sweep(plan: _Plan, n_params: int, leaves: Sequence[Any], keep: bool) -> tuple[list, list]:
    """One example's squared gradient norm per parameter leaf, from one sweep of its loss; with ``keep``,
    also what the clipped sum is assembled from: (X, D) for a ghost leaf, the gradient for another."""
    graph = plan.graph
    n_in = len(graph.inputs) - len(plan.targets)
    zeros = [jnp.zeros(v.type.shape, v.type.dtype) for v in plan.targets]
    outs, backward = vjp_graph(graph, [*leaves, *zeros], [False] * n_in + [True] * len(plan.targets))
    cts = backward([jnp.ones_like(outs[0])])[n_in:]
    ct_of = {id(v): c for v, c in zip(plan.targets, cts)}
    env, saved = backward.env, backward.saved
    squares, pieces = [], []
    for v, how in zip(graph.inputs[:n_params], plan.leaves):
        piece = None
        if isinstance(how, _Ghost):
            e = plan.copies[id(how.eqn)]
            other = e.inputs[1 - how.operand]
            x = jnp.asarray(other.value if not isinstance(other, Var) else env[other])
            ct = ct_of.get(id(e.outputs[0]))
            if ct is None:  # the dot does not reach the loss
                ct = jnp.zeros(e.outputs[0].type.shape, e.outputs[0].type.dtype)
            piece = _ghost_matrices(e, how.operand, x, ct)
            squares.append(_ghost_norm_sq(*piece))
        elif how is not None:
            piece = _direct_grad(plan, how.eqns, v, env, saved, ct_of)
            if piece is None:
                piece = jnp.zeros(v.type.shape, v.type.dtype)
            squares.append(jnp.sum(jnp.square(piece.astype(jnp.float32))))
        else:
            squares.append(jnp.zeros((), jnp.float32))
        pieces.append(piece if keep else None)
    return squares, pieces


def _batch_axes(args, argnums: tuple[int, ...], batch_axis) -> list:
    if isinstance(batch_axis, int) or batch_axis is None:
        return [None if i in argnums else batch_axis for i in range(len(args))]
    axes = list(batch_axis)
    if len(axes) != len(args):
        raise InputError(
            f"batch_axis has {len(axes)} entries for {len(args)} arguments\n  fix: give one axis (or None) per "
            "positional argument, or a single int for all the non-differentiated ones"
        )
    return [None if i in argnums else a for i, a in enumerate(axes)]


def _normalise_argnums(argnums, n_args: int) -> tuple[int, ...]:
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    return tuple(n % n_args for n in nums)


class _Batch:
    """The differentiated parameters, the batched data, and the loss of one example."""

    def __init__(self, loss: Callable, args: Sequence[Any], argnums, batch_axis):
        self.loss, self.args = loss, list(args)
        self.argnums = _normalise_argnums(argnums, len(args))
        self.single = isinstance(argnums, int)
        self.axes = _batch_axes(args, self.argnums, batch_axis)
        self.params = [args[i] for i in self.argnums]
        self.param_leaves, self.param_tree = tree_util.tree_flatten(self.params)
        data = [(i, a) for i, a in enumerate(args) if i not in self.argnums and self.axes[i] is not None]
        self.data_idx = [i for i, _ in data]
        self.data_leaves, self.data_tree = tree_util.tree_flatten([a for _, a in data])
        self.leaf_axes = [
            self.axes[i] for i, a in data for _ in tree_util.tree_leaves(a)
        ]  # the batch axis of each data leaf
        sizes = {np.shape(x)[ax] for x, ax in zip(self.data_leaves, self.leaf_axes)}
        if len(sizes) != 1:
            raise InputError(
                f"per-example gradients need one batch size along batch_axis; the data have sizes {sorted(sizes)}\n"
                "  fix: pass batch_axis per argument (None for an argument that is not batched)"
            )
        (self.size,) = sizes

    def example_loss(self, param_leaves, data_leaves):
        """The loss of a batch holding one example (its leaves have lost the batch axis)."""
        args = list(self.args)
        for i, p in zip(self.argnums, tree_util.tree_unflatten(self.param_tree, list(param_leaves))):
            args[i] = p
        one = [jnp.expand_dims(x, ax) for x, ax in zip(data_leaves, self.leaf_axes)]
        for i, a in zip(self.data_idx, tree_util.tree_unflatten(self.data_tree, one)):
            args[i] = a
        return self.loss(*args)

    def traced(self) -> Graph:
        specs = [jax.ShapeDtypeStruct(np.shape(x), jnp.result_type(x)) for x in self.param_leaves]
        specs += [
            jax.ShapeDtypeStruct(tuple(np.delete(np.shape(x), ax)), jnp.result_type(x))
            for x, ax in zip(self.data_leaves, self.leaf_axes)
        ]
        n = len(self.param_leaves)
        graph = trace_flat(lambda *xs: self.example_loss(xs[:n], xs[n:]), specs).graph
        if len(graph.outputs) != 1 or graph.out_types[0].shape != () or not graph.out_types[0].is_float:
            raise InputError(
                "per-example gradients need the loss to return one real scalar; it returned "
                f"{[(t.shape, str(t.dtype)) for t in graph.out_types]}\n  fix: return the batch's mean or sum"
            )
        return graph

    def sweep(self, keep: bool = False) -> tuple[_Plan, list, list]:
        """The plan, the (batch,) squared norms per parameter leaf, and (``keep``) the stacked pieces."""
        n = len(self.param_leaves)
        plan = _plan_of(self.traced(), n)

        def one(param_leaves, data_leaves):
            return _example_sweep(plan, n, [*param_leaves, *data_leaves], keep)

        squares, pieces = jax.vmap(one, in_axes=(None, self.leaf_axes))(self.param_leaves, self.data_leaves)
        return plan, squares, pieces

    def wrap(self, leaves: list) -> Any:
        """Parameter leaves -> the differentiated argument's pytree (a tuple of them for tuple argnums)."""
        tree = tree_util.tree_unflatten(self.param_tree, list(leaves))
        return tree[0] if self.single else tuple(tree)


def per_example_grad_norms(loss: Callable, argnums: int | Sequence[int] = 0, batch_axis: Any = 0) -> Callable:
    """The norm of each example's gradient, without forming per-example gradients where layers allow.

    Args:
      loss: ``loss(*args)``, a real scalar that is a mean or sum of per-example terms.
      argnums: the differentiated argument(s), as for ``funcgrad.grad``.
      batch_axis: the examples' axis in every array leaf of the other arguments (an int), or one
        entry per positional argument (None: not batched, passed whole to every example).

    Returns:
      A function of ``loss``'s arguments returning ``PerExampleNorms(total, per_leaf)``: ``total[b]`` is
      ||grad loss(example b alone)||, ``per_leaf`` the same per parameter leaf (the differentiated
      argument's pytree, one (batch,) array per leaf; a tuple of them for a tuple ``argnums``).

    Equals the norms of the per-example gradients that vmapping a gradient over single-example batches
    forms (tests/test_per_example.py compares the two with JAX's).
    Example::

        norms = funcgrad.per_example_grad_norms(mean_xent)(params, images, labels)
        norms.total.shape  # (batch,)
    """

    def norms(*args):
        batch = _Batch(loss, args, argnums, batch_axis)
        _, squares, _ = batch.sweep()
        total = jnp.sqrt(sum(squares)) if squares else jnp.zeros((batch.size,), jnp.float32)
        return PerExampleNorms(total, batch.wrap([jnp.sqrt(s) for s in squares]))

    return norms


def clipped_grad(
    loss: Callable,
    max_norm: float,
    argnums: int | Sequence[int] = 0,
    batch_axis: Any = 0,
    *,
    return_norms: bool = False,
) -> Callable:
    """The sum over examples of per-example gradients, each clipped to norm ``max_norm`` (DP-SGD's clipping).

    ``sum_b g_b * min(1, max_norm / ||g_b||)``, where g_b is the gradient of ``loss`` on example b alone
    (as in ``per_example_grad_norms``). Book-keeping, no second backward pass: the sweep that gives
    the norms also gives each dense layer's inputs X_b and output cotangents D_b, and the clipped sum
    of its gradients is one matmul, sum_b w_b X_b^T D_b with w_b = min(1, max_norm / ||g_b||); the
    other leaves' per-example gradients (biases, scales, kernels) are weighted and summed.
    Divide by the batch size and add noise for DP-SGD (docs/research_tools.md shows it with optax).

    Returns a function of ``loss``'s arguments returning the clipped sum (shaped like the differentiated
    argument(s)), or ``(clipped_sum, PerExampleNorms)`` with ``return_norms=True``.
    """

    def clipped(*args):
        batch = _Batch(loss, args, argnums, batch_axis)
        plan, squares, pieces = batch.sweep(keep=True)
        total = jnp.sqrt(sum(squares))
        # min(1, C / ||g_b||); an example whose gradient is within the bound keeps weight 1
        weights = max_norm / jnp.maximum(total, max_norm)
        summed = []
        for leaf, how, piece in zip(batch.param_leaves, plan.leaves, pieces):
            if isinstance(how, _Ghost):
                g = _ghost_weighted_grad(how, leaf, weights, *piece)
            elif how is not None:
                g = jnp.tensordot(weights.astype(piece.dtype), piece, 1)
            else:
                g = jnp.zeros_like(leaf)
            summed.append(g.astype(jnp.result_type(leaf)))
        out = batch.wrap(summed)
        if not return_norms:
            return out
        return out, PerExampleNorms(total, batch.wrap([jnp.sqrt(s) for s in squares]))

    return clipped
