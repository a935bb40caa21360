"""The ``xp`` a generic loss sees (the differentiable part of the array API), and
``value_and_grad``, which evaluates a loss with it and runs the backward pass."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import gmpy2
import numpy as np

from . import elementwise as ew
from . import functions as fn
from . import products, reductions
from . import shape as sh
from .limbs import _one_blas_thread
from .tracked import (
    NotDifferentiable,
    Tracked,
    UnsupportedOperation,
    _recording,
    _values_of,
    _wrap,
    _zeros,
    constant,
    leaf,
    working_precision,
)


class NotInNamespace(AttributeError, UnsupportedOperation):
    """A loss asked ``xp`` for a function it does not have: an AttributeError (so ``hasattr``
    answers False) that is also UnsupportedOperation (so the reference falls back)."""


class _Namespace:
    _prefix = "xp"

    def __getattr__(self, name: str):
        raise NotInNamespace(
            f"{self._prefix}.{name} is not in gradcmp's reference namespace "
            "(see docs/ports.md for the list)",
            name=name,
            obj=self,
        )


class Linalg(_Namespace):
    """``xp.linalg``."""

    _prefix = "xp.linalg"


class Namespace(_Namespace):
    """The ``xp`` a loss sees when the reference evaluates it (an array API subset); the
    functions are set from the tables below."""

    float16, float32, float64 = np.float16, np.float32, np.float64
    int8, int16, int32, int64 = np.int8, np.int16, np.int32, np.int64
    bool = np.bool_
    pi, e, inf, nan, newaxis = math.pi, math.e, math.inf, math.nan, None
    linalg = Linalg()

    @staticmethod
    def matmul(x, y):
        # Looked up at each call, as by Tracked.__matmul__ (a test swaps the product).
        return products.matmul(x, y)


def _astype(x, dtype, copy=True):
    return x.astype(dtype) if isinstance(x, Tracked) else np.asarray(x).astype(dtype)


def _compare(operator) -> Callable:
    return lambda x, y: operator(_values_of(x), _values_of(y))


def _values(x) -> np.ndarray:
    """Values for a non-differentiable question (argmax, isnan): exact ones where tracked."""
    return x.v if isinstance(x, Tracked) else np.asarray(x)


_FUNCTIONS = {
    # arithmetic and elementary functions
    "add": ew.add,
    "subtract": ew.subtract,
    "multiply": ew.multiply,
    "divide": ew.divide,
    "negative": ew.negative,
    "positive": _wrap,
    "abs": ew.abs_,
    "pow": fn.pow_,
    "square": ew.square,
    "sqrt": ew.sqrt,
    "reciprocal": ew.reciprocal,
    "exp": ew.exp,
    "expm1": ew.expm1,
    "exp2": fn.exp2,
    "log": ew.log,
    "log1p": ew.log1p,
    "log2": fn.log2,
    "log10": fn.log10,
    "logaddexp": ew.logaddexp,
    "sin": fn.sin,
    "cos": fn.cos,
    "tan": fn.tan,
    "sinh": fn.sinh,
    "cosh": fn.cosh,
    "tanh": ew.tanh,
    "erf": fn.erf,
    "erfc": fn.erfc,
    "hypot": fn.hypot,
    "sign": fn.sign,
    "floor": fn.floor,
    "ceil": fn.ceil,
    "round": fn.round_,
    "trunc": fn.trunc,
    "maximum": ew.maximum,
    "minimum": ew.minimum,
    "clip": ew.clip,
    "where": ew.where,
    # reductions
    "sum": sh.sum_,
    "mean": reductions.mean,
    "max": reductions.max_,
    "min": reductions.min_,
    "prod": reductions.prod,
    "var": reductions.var,
    "std": reductions.std,
    "cumulative_sum": reductions.cumulative_sum,
    # structure and products
    "reshape": sh.reshape,
    "permute_dims": sh.permute_dims,
    "matrix_transpose": sh.matrix_transpose,
    "moveaxis": sh.moveaxis,
    "expand_dims": sh.expand_dims,
    "squeeze": sh.squeeze,
    "broadcast_to": sh.broadcast_to,
    "broadcast_arrays": sh.broadcast_arrays,
    "concat": sh.concat,
    "stack": sh.stack,
    "take": sh.take,
    "flip": sh.flip,
    "repeat": sh.repeat,
    "tensordot": products.tensordot,
    "vecdot": products.vecdot,
    "einsum": products.einsum,
    # creation and conversion (constants: no gradient)
    "astype": _astype,
    "asarray": lambda x, dtype=None, copy=None: _wrap(x),
    "arange": lambda *args, **kwargs: np.arange(*args),
    "zeros": lambda shape, dtype=None: constant(np.zeros(shape)),
    "ones": lambda shape, dtype=None: constant(np.ones(shape)),
    "full": lambda shape, fill_value, dtype=None: constant(np.full(shape, fill_value)),
    "zeros_like": lambda x, dtype=None: constant(np.zeros(np.shape(x))),
    "ones_like": lambda x, dtype=None: constant(np.ones(np.shape(x))),
    "full_like": lambda x, fill_value, dtype=None: constant(np.full(np.shape(x), fill_value)),
    "eye": lambda n_rows, n_cols=None, k=0, dtype=None: constant(np.eye(n_rows, n_cols, k)),
    "linspace": lambda start, stop, num, dtype=None, endpoint=True: constant(
        np.linspace(start, stop, num, endpoint=endpoint)
    ),
    # comparisons and questions (boolean or integer answers, from the values)
    "equal": _compare(np.equal),
    "not_equal": _compare(np.not_equal),
    "less": _compare(np.less),
    "less_equal": _compare(np.less_equal),
    "greater": _compare(np.greater),
    "greater_equal": _compare(np.greater_equal),
    "logical_and": np.logical_and,
    "logical_or": np.logical_or,
    "logical_not": np.logical_not,
    "isnan": lambda x: np.isnan(_values_of(x)),
    "isinf": lambda x: np.isinf(_values_of(x)),
    "isfinite": lambda x: np.isfinite(_values_of(x)),
    "argmax": lambda x, axis=None, keepdims=False: np.argmax(_values(x), axis, keepdims=keepdims),
    "argmin": lambda x, axis=None, keepdims=False: np.argmin(_values(x), axis, keepdims=keepdims),
    "all": lambda x, axis=None, keepdims=False: np.all(_values_of(x), axis, keepdims=keepdims),
    "any": lambda x, axis=None, keepdims=False: np.any(_values_of(x), axis, keepdims=keepdims),
}
# The array API's names for the inverse functions, and numpy's.
_INVERSES = {
    "asin": fn.arcsin,
    "acos": fn.arccos,
    "atan": fn.arctan,
    "atan2": fn.arctan2,
    "asinh": fn.arcsinh,
    "acosh": fn.arccosh,
    "atanh": fn.arctanh,
}
_FUNCTIONS.update(_INVERSES)
_FUNCTIONS.update({"arc" + name[1:]: function for name, function in _INVERSES.items()})
_LINALG = {
    "vector_norm": reductions.vector_norm,
    "vecdot": products.vecdot,
    "tensordot": products.tensordot,
    "matrix_transpose": sh.matrix_transpose,
}
for _name, _function in _FUNCTIONS.items():
    setattr(Namespace, _name, staticmethod(_function))
for _name, _function in _LINALG.items():
    setattr(Linalg, _name, staticmethod(_function))
Linalg.matmul = Namespace.matmul

xp = Namespace()


def value_and_grad(
    loss: Callable, params: Mapping[str, np.ndarray], X: np.ndarray, y: np.ndarray
) -> tuple[Tracked, dict[str, Tracked]]:
    """Evaluate ``loss(params, X, y, xp)`` and its gradient in high precision, tracked."""
    with working_precision(), _one_blas_thread(), np.errstate(all="ignore"):
        leaves = {k: leaf(v) for k, v in params.items()}
        for node in leaves.values():
            node.requires = True  # gradients flow only towards the parameters
        _recording[0] = True
        try:
            labels = np.asarray(y).dtype.kind in "iu"  # class labels index; they are no numbers
            out = loss(leaves, leaf(X), np.asarray(y) if labels else leaf(y), xp)
        except UnsupportedOperation:
            raise
        except ArithmeticError as exc:  # MPFR: log(0), 1/0, 0/0 …
            raise NotDifferentiable(_arithmetic(exc)) from exc
        except (TypeError, AttributeError, ValueError, IndexError) as exc:
            raise UnsupportedOperation(f"{type(exc).__name__}: {exc}") from exc
        out = _wrap(out)
        if out.size != 1:
            raise ValueError(f"the loss has shape {out.shape}, expected a scalar")
        out = sh.reshape(out, ())
        order = _topological(out)
        _recording[0] = False
        try:
            grads: dict[int, Tracked] = {id(out): constant(1.0)}
            for node in reversed(order):
                g = grads.pop(id(node), None)
                if g is None:
                    continue
                for parent, rule in zip(node.parents, node.backward):
                    if not parent.requires:  # X, y, constants: no gradient needed
                        continue
                    try:
                        contribution = rule(g)
                    except ArithmeticError as exc:  # a slope that is infinite here
                        raise NotDifferentiable(_arithmetic(exc)) from exc
                    seen = grads.get(id(parent))
                    grads[id(parent)] = contribution if seen is None else ew.add(seen, contribution)
                if any(node is leaf_node for leaf_node in leaves.values()):
                    grads[id(node)] = g  # keep the leaves' gradients
        finally:
            _recording[0] = True
        result = {k: grads[id(v)] if id(v) in grads else _zeros(v.shape) for k, v in leaves.items()}
        for name, node in (("the loss", out), *result.items()):
            if not _finite(node):
                where = "the loss" if node is out else f"the gradient of {name}"
                raise NotDifferentiable(f"{where} is not finite")
        return out, result


def _finite(node: Tracked) -> bool:
    """Whether every value is finite: where its float64 rounding is (a finite float64 is the
    rounding of a finite value only), else by the value itself (beyond float64's range)."""
    outside = np.flatnonzero(~np.isfinite(node.f))
    values = node.v.ravel()
    return all(gmpy2.is_finite(values[i]) for i in outside.tolist())


def _arithmetic(exc: ArithmeticError) -> str:
    if isinstance(exc, gmpy2.InvalidOperationError):
        detail = "an invalid operation (0/0, 0·∞, ∞ − ∞)"
    else:
        detail = str(exc) or "division by zero"
    return f"{detail} (a log of 0, a 1/0, or an infinite slope such as √ at 0)"


def _topological(out: Tracked) -> list[Tracked]:
    order, seen, stack = [], set(), [(out, False)]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        stack.extend((p, False) for p in node.parents if id(p) not in seen)
    return order
