"""The reference for any loss: high-precision reverse-mode autodiff with a running error bound.

A loss written once against ``xp`` runs here on numpy object arrays of ``gmpy2.mpfr``
numbers (MPFR: 200-bit significands, about 60 digits, every operation and function correctly
rounded), so its value and gradient come out to far more than 30 significant digits. Each
array also carries, per element, two float64 companions:

``e``, the first-order error coefficients, complex: a backend that computes the same value in a
dtype with unit roundoff u and smallest normal η gets within about ``e.real·u + e.imag·η`` of
it (the imaginary part counts operations that may underflow or flush to zero, weighted by
what multiplies them later: the same propagation rules as the roundings, so one array
carries both). Every elementary operation adds
one rounding of its result (``|z|``) to the propagated errors of its operands (Wilkinson's
running error analysis; Higham, *Accuracy and Stability of Numerical Algorithms*, §3.3); a sum
of k terms adds ``(k−1)·Σ|terms|``, Higham's bound for every summation order (§4.2); a
transcendental function adds ``LIBM_ULPS`` roundings, since vectorised libraries are not
correctly rounded. The gradient is computed by the same tracked operations, so its ``e`` is
the error analysis of the backward pass.

``a``, the magnitude: the same computation with every term in absolute value (M in the
agreement rule), the scale against which the bound's resolution is judged.

Casts (``astype`` to a float dtype) change nothing here: the reference is the mathematics.

Speed. Elementwise operations run element by element in MPFR (numpy object arrays of
mpfr); a matrix product does not: its operands are cut into integer limbs, the limbs
multiplied by float64 matrix products (exact: every partial sum is an integer below 2**53)
and recombined, so each element of ``x @ y`` is the exact sum of the exact products, rounded
once (``_exact_matmul``; element by element where the limbs would not fit). Everything about
the companions is float64 numpy: a matrix product's ``e`` and ``a`` are float64 matrix
products of the operands' companions, the same sums the elementwise rules add up. Gradients
flow only into what depends on a parameter, never into X or y. numpy's BLAS runs on one
thread meanwhile (``_one_blas_thread``).

Layout: ``tracked`` (precision, conversions, ``Tracked``, ``constant``, ``leaf``), ``shape``
(sums, reshapes, indexing, joining), ``elementwise`` (arithmetic, exp/log/tanh/…, where,
maximum), ``functions`` (powers, erf, trigonometric, hyperbolic, steps), ``reductions``
(mean, max, prod, var, cumulative sum, norms), ``limbs`` (exact matrix products on BLAS, one
BLAS thread) and ``products`` (matmul, batched too, tensordot, einsum), ``namespace`` (``xp``
and ``value_and_grad``).

Framework tracers call the operations directly, inside ``working_precision(ieee=True)``
(every operation needs a working precision: outside one, gmpy2's default is 53 bits): IEEE
values (log 0 = −∞, 0/0 = NaN) instead of exceptions, and companions that stay defined (see
``working_precision``).
"""

from __future__ import annotations

# operators installs Tracked's arithmetic (x + y, x @ y, x[i]) from the operation modules.
from . import operators, tracked  # noqa: F401
from .elementwise import (
    abs_,
    add,
    clip,
    divide,
    exp,
    expm1,
    log,
    log1p,
    logaddexp,
    maximum,
    minimum,
    multiply,
    negative,
    reciprocal,
    sigmoid,
    sqrt,
    square,
    subtract,
    tanh,
    where,
)
from .functions import (
    arccos,
    arccosh,
    arcsin,
    arcsinh,
    arctan,
    arctan2,
    arctanh,
    ceil,
    cos,
    cosh,
    erf,
    erfc,
    exp2,
    floor,
    hypot,
    log2,
    log10,
    pow_,
    round_,
    rsqrt,
    sign,
    sin,
    sinh,
    softplus,
    tan,
    trunc,
)
from .limbs import _blas_thread_calls, _exact_matmul, _one_blas_thread
from .namespace import Namespace, NotInNamespace, value_and_grad, xp
from .products import _matmul_by_products, einsum, matmul, tensordot, vecdot
from .reductions import (
    cumulative_sum,
    max_,
    mean,
    min_,
    prod,
    std,
    var,
    vector_norm,
)
from .remembered import results_remembered
from .shape import (
    broadcast_arrays,
    broadcast_to,
    concat,
    expand_dims,
    flip,
    getitem,
    matrix_transpose,
    moveaxis,
    permute_dims,
    repeat,
    reshape,
    squeeze,
    stack,
    sum_,
    take,
    transpose,
)
from .tracked import (
    LIBM_ULPS,
    PRECISION_BITS,
    NotDifferentiable,
    Tracked,
    UnsupportedOperation,
    _working_precision,
    constant,
    leaf,
    to_fraction,
    working_precision,
)

__all__ = [
    "LIBM_ULPS",
    "PRECISION_BITS",
    "Namespace",
    "NotDifferentiable",
    "NotInNamespace",
    "Tracked",
    "UnsupportedOperation",
    "abs_",
    "add",
    "arccos",
    "arccosh",
    "arcsin",
    "arcsinh",
    "arctan",
    "arctan2",
    "arctanh",
    "broadcast_arrays",
    "broadcast_to",
    "ceil",
    "clip",
    "concat",
    "constant",
    "cos",
    "cosh",
    "cumulative_sum",
    "divide",
    "einsum",
    "erf",
    "erfc",
    "exp",
    "exp2",
    "expand_dims",
    "expm1",
    "flip",
    "floor",
    "getitem",
    "hypot",
    "leaf",
    "log",
    "log1p",
    "log2",
    "log10",
    "logaddexp",
    "matmul",
    "matrix_transpose",
    "max_",
    "maximum",
    "mean",
    "min_",
    "minimum",
    "moveaxis",
    "multiply",
    "negative",
    "permute_dims",
    "pow_",
    "prod",
    "results_remembered",
    "reciprocal",
    "repeat",
    "reshape",
    "round_",
    "rsqrt",
    "sigmoid",
    "sign",
    "sin",
    "sinh",
    "softplus",
    "sqrt",
    "square",
    "squeeze",
    "stack",
    "std",
    "subtract",
    "sum_",
    "take",
    "tan",
    "tanh",
    "tensordot",
    "to_fraction",
    "transpose",
    "trunc",
    "value_and_grad",
    "var",
    "vecdot",
    "vector_norm",
    "where",
    "working_precision",
    "xp",
]
# Private names kept for the tests and benchmarks that reach into the engine.
_PRIVATE = (
    tracked,
    _blas_thread_calls,
    _exact_matmul,
    _matmul_by_products,
    _one_blas_thread,
    _working_precision,
)
