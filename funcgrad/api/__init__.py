"""The public differentiation API, with JAX's signatures and semantics, by funcgrad's own sweep.

* ``reverse``: ``grad``, ``value_and_grad``, ``vjp``, ``jacrev``/``jacobian``, ``trace``;
* ``forward``: ``jvp``, ``linearize``, ``jacfwd``, ``linear_transpose`` and ``hessian`` (forward over
  reverse, as JAX's), obtained from the reverse sweep by transposing the linear pullback.
"""

from funcgrad.api.forward import hessian, jacfwd, jvp, linear_transpose, linearize
from funcgrad.api.reverse import grad, jacobian, jacrev, trace, value_and_grad, vjp

__all__ = [
    "grad",
    "hessian",
    "jacfwd",
    "jacobian",
    "jacrev",
    "jvp",
    "linear_transpose",
    "linearize",
    "trace",
    "value_and_grad",
    "vjp",
]
