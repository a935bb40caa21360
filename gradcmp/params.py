"""Parameters: an ordered mapping name → array, with element names and exact values."""

from __future__ import annotations

import functools
import itertools
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from .dtypes import DType
from .errors import Given, UsageError
from .loading.csvfile import NUMBER, decimal_value

ELEMENT = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:\[(?P<index>[0-9, ]+)\])?\Z")


def element_names(name: str, shape: tuple[int, ...]) -> list[str]:
    """``theta0``, ``w[3]``, ``W1[2,5]``: the names of a parameter's elements, in C order
    (a copy of the cached list: a model with 10⁵ parameters asks for them often)."""
    return list(_element_names(name, tuple(shape)))


@functools.lru_cache(maxsize=256)
def _element_names(name: str, shape: tuple[int, ...]) -> tuple[str, ...]:
    """``theta0`` for a scalar, ``w[0]``, ``w[1]`` … for a vector, ``W[2,5]`` for a matrix."""
    if shape == ():
        return (name,)
    return tuple(
        f"{name}[{','.join(map(str, index))}]" for index in itertools.product(*map(range, shape))
    )


@dataclass(frozen=True)
class Params:
    """Initial parameter values: float64 arrays plus the exact value of every element.

    The exact value differs from the float64 one only where a decimal given as text
    (``--param theta1=0.1``, ``params=["theta1=0.1"]``) or a Python integer beyond 2**53 is not
    a float64; ``written`` holds those elements (name → flat index → exact value), and
    ``exact`` makes a ``Fraction`` per element only when asked (10⁵ of them cost 0.3 s).
    """

    values: Mapping[str, np.ndarray]
    written: Mapping[str, Mapping[int, Fraction]] = field(default_factory=dict)

    @classmethod
    def from_arrays(cls, values: Mapping[str, np.ndarray]) -> Params:
        return cls({k: np.asarray(v, dtype=np.float64) for k, v in values.items()})

    @functools.cached_property
    def exact(self) -> dict[str, tuple[Fraction, ...]]:
        """The exact value of every element (flattened, C order)."""
        exact = {}
        for k, a in self.values.items():
            given = self.written.get(k, {})
            exact[k] = tuple(
                given[i] if i in given else Fraction(x) for i, x in enumerate(a.ravel().tolist())
            )
        return exact

    @property
    def exact_is_float64(self) -> bool:
        """Whether every exact value is its float64 (nothing written beyond float64)."""
        return not any(self.written.values()) and all(
            np.isfinite(v).all() for v in self.values.values()
        )

    @property
    def names(self) -> list[str]:
        return list(self.values)

    def elements(self) -> list[str]:
        return [e for k, v in self.values.items() for e in element_names(k, v.shape)]

    def as_dtype(self, dtype: DType) -> dict[str, np.ndarray]:
        """The values a backend receives in ``dtype`` (fresh arrays)."""
        with np.errstate(over="ignore"):  # overflow is reported by the reference
            return {k: dtype.round(v).copy() for k, v in self.values.items()}

    def exact_as_dtype(self, dtype: DType) -> dict[str, tuple[Fraction, ...]]:
        """Exact values of :meth:`as_dtype` (flattened, C order)."""
        return {
            k: tuple(Fraction(x) for x in v.ravel().tolist())
            for k, v in self.as_dtype(dtype).items()
        }

    def rounding(self, dtype: DType) -> tuple[int, int, float]:
        """(elements, rounded, largest relative change) of the values received in ``dtype``
        against the values as written.

        Elements written as float64 are measured in float64: the received value r is 0, ±inf
        (not counted) or one of the two dtype numbers around the written v (rounded to
        nearest, or twice, through float32, for bfloat16), so within a factor 2 of v; r − v is
        then exact (Sterbenz) and the relative change is rounded once, as ``to_float`` of the
        exact ratio would be. The few written beyond float64 are measured exactly.
        """
        received = self.as_dtype(dtype)
        count, rounded, largest = 0, 0, 0.0
        for k, v in self.values.items():
            r = received[k].astype(np.float64).ravel()
            v = v.ravel()
            count += v.size
            given = self.written.get(k, {})
            plain = np.ones(v.size, dtype=bool)
            plain[list(given)] = False
            moved = plain & np.isfinite(r) & (r != v)
            if moved.any():
                rounded += int(moved.sum())
                largest = max(largest, float((np.abs(r - v)[moved] / np.abs(v)[moved]).max()))
            for i, exact in given.items():
                value = float(r[i])
                if math.isfinite(value) and Fraction(value) != exact:
                    rounded += 1
                    largest = max(largest, float(abs(Fraction(value) - exact) / abs(exact)))
        return count, rounded, largest

    def with_values(self, given: Mapping[str, object]) -> Params:
        """Set whole parameters from Python numbers or arrays (the Python API). Floats are
        taken as the binary numbers they are; integers exactly, even beyond 2**53."""
        values = {k: v.copy() for k, v in self.values.items()}
        written = {k: dict(v) for k, v in self.written.items()}
        for name, value in given.items():
            if name not in values:
                known = ", ".join(self.names)
                raise UsageError(
                    f"no parameter {name!r}", hint=f"parameters are {known}", option="params"
                )
            array = np.asarray(value)
            if array.size != values[name].size or array.dtype.kind not in "iuf":
                raise UsageError(
                    f"parameter {name} needs {values[name].size} number(s) of shape "
                    f"{values[name].shape}, got {array.dtype} of shape {array.shape}",
                    option="params",
                )
            flat = array.ravel().tolist()  # Python ints and floats, exact
            as_float = np.asarray(flat, dtype=np.float64)
            if not np.isfinite(as_float).all():
                raise UsageError(f"parameter {name} is not finite", option="params")
            values[name] = as_float.reshape(values[name].shape)
            written[name] = {
                i: Fraction(v)
                for i, (v, f) in enumerate(zip(flat, as_float.tolist()))
                if isinstance(v, int) and v != f
            }
        return Params(values, written)

    def with_overrides(self, assignments: Iterable[str]) -> Params:
        """Apply ``NAME=VALUE`` strings (``theta1=0.5``, ``w[2]=1``, ``w=1,2,3``)."""
        values = {k: v.copy() for k, v in self.values.items()}
        written = {k: dict(v) for k, v in self.written.items()}
        for assignment in assignments:
            target, numbers = _parse_assignment(assignment)
            match = ELEMENT.match(target)
            if not match or match["name"] not in values:
                known = ", ".join(self.names)
                raise UsageError(
                    (_given(assignment), f": no parameter {target!r}"),
                    hint=f"this model's parameters are {known}",
                )
            name, array = match["name"], values[match["name"]]
            if match["index"] is not None:
                flat = _flat_index(assignment, name, match["index"], array.shape)
                if len(numbers) != 1:
                    raise UsageError((_given(assignment), ": one element takes one value"))
                positions = [flat]
            else:
                positions = list(range(array.size))
                if len(numbers) != array.size:
                    hint = (
                        f"{name} has {array.size} elements: give {array.size} comma-separated "
                        f"values or set one element as {element_names(name, array.shape)[0]}=VALUE"
                    )
                    raise UsageError(
                        (_given(assignment), f": {len(numbers)} value(s) for {name}"), hint=hint
                    )
            for position, (as_float, as_fraction) in zip(positions, numbers):
                array.reshape(-1)[position] = as_float
                given = written.setdefault(name, {})
                if Fraction(as_float) != as_fraction:
                    given[position] = as_fraction
                else:
                    given.pop(position, None)
        return Params(values, written)


def _given(assignment: str) -> Given:
    """One ``NAME=VALUE`` as its reader gave it: ``--param 'w=1'``, or ``params=['w=1']``."""
    return Given("params", repr(assignment), [assignment])


def _parse_assignment(assignment: str) -> tuple[str, list[tuple[float, Fraction]]]:
    target, sep, text = assignment.partition("=")
    if not sep or not target.strip() or not text.strip():
        raise UsageError(
            (_given(assignment), " is not NAME=VALUE"),
            hint=("write e.g. ", Given("params", "theta1=0.5", ["theta1=0.5"])),
        )
    numbers = []
    for cell in (c.strip() for c in text.split(",")):
        value = float(cell) if NUMBER.match(cell) else None
        if value is None or value in (float("inf"), float("-inf")):
            raise UsageError(
                (_given(assignment), f": {cell!r} is not a finite decimal number"),
                hint="write plain decimals such as 0.5 or -1.25e-3",
            )
        exact = decimal_value(cell)
        if exact is None:
            raise UsageError((_given(assignment), f": {cell} is far below float64's range"))
        numbers.append((value, exact))
    return target.strip(), numbers


def _flat_index(assignment: str, name: str, text: str, shape: tuple[int, ...]) -> int:
    parts = [part.strip() for part in text.split(",")]
    index = tuple(int(part) for part in parts if part)
    if not all(parts) or len(index) != len(shape) or any(i >= n for i, n in zip(index, shape)):
        raise UsageError(
            (_given(assignment), f": {name} has shape {shape}, no element [{text}]"),
            hint=f"elements are {element_names(name, shape)[0]} … {element_names(name, shape)[-1]}"
            if shape
            else f"{name} is a scalar: write {name}=VALUE",
        )
    return int(np.ravel_multi_index(index, shape))
