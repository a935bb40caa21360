"""``Tracked``'s operators (``x + y``, ``x @ y``, ``x[i]``, ``x.T``, ``x.sum()`` …), forwarded to
the operation modules. They are installed here, not written in ``tracked.py``, so that
``tracked.py`` imports no operation module and the package has no import circle."""

from __future__ import annotations

from . import elementwise, functions, products, reductions, shape
from .tracked import Tracked


def _reshape(self, *new_shape):
    if len(new_shape) == 1 and isinstance(new_shape[0], tuple | list):
        new_shape = new_shape[0]
    return shape.reshape(self, tuple(new_shape))


Tracked.T = property(lambda self: shape.transpose(self))
Tracked.mT = property(lambda self: shape.matrix_transpose(self))
Tracked.reshape = _reshape
Tracked.sum = lambda self, axis=None, keepdims=False: shape.sum_(self, axis, keepdims)
Tracked.mean = lambda self, axis=None, keepdims=False: reductions.mean(self, axis, keepdims)
Tracked.__getitem__ = lambda self, index: shape.getitem(self, index)
Tracked.__add__ = lambda self, other: elementwise.add(self, other)
Tracked.__radd__ = lambda self, other: elementwise.add(other, self)
Tracked.__sub__ = lambda self, other: elementwise.subtract(self, other)
Tracked.__rsub__ = lambda self, other: elementwise.subtract(other, self)
Tracked.__mul__ = lambda self, other: elementwise.multiply(self, other)
Tracked.__rmul__ = lambda self, other: elementwise.multiply(other, self)
Tracked.__truediv__ = lambda self, other: elementwise.divide(self, other)
Tracked.__rtruediv__ = lambda self, other: elementwise.divide(other, self)
Tracked.__neg__ = lambda self: elementwise.negative(self)
Tracked.__abs__ = lambda self: elementwise.abs_(self)
Tracked.__pow__ = lambda self, power: functions.pow_(self, power)
Tracked.__rpow__ = lambda self, base: functions.pow_(base, self)
# ``products.matmul`` is looked up at each call (a test swaps in the element-by-element
# product to check the exact one against it).
Tracked.__matmul__ = lambda self, other: products.matmul(self, other)
Tracked.__rmatmul__ = lambda self, other: products.matmul(other, self)
