"""User loss files (``--loss FILE.py``): the contract of docs/design.md ("Loss files"), loaded
into a Model.

A loss file is code: gradcmp imports it the way pytest imports a conftest.py, so it runs with
the user's permissions. It defines

    PARAMS = {"theta0": 0.0, "w": [0.0, 0.0]}   # names → initial values (scalars, nested lists),
                                                # or a function returning them, or the path of
                                                # an .npz/.safetensors file of named arrays
    def loss(params, X, y, xp): ...             # generic, written once against ``xp``
                                                #   (optional when both ports' sides exist)
    def loss_torch(params, X, y): ...           # optional: one framework's own implementation
    def loss_jax(params, X, y): ...             #   (the two sides of a port)
    def loss_numpy(params, X, y): ...
    ACCEPT = 1e-6                               # optional: a port difference accepted
    LABELS = True                               # optional: y as integer class labels
    def grad_native(params, X, y): ...          # optional: hand-derived gradient, Python floats
    def grad_torch_dist(params, X, y, ctx): ... # optional: one rank's step, synchronised by
    def grad_jax_dist(params, X, y, ctx): ...   #   the user (backends torch-dist:N, jax-dist:N)
"""

from __future__ import annotations

import importlib.util
import sys
import traceback
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..models.base import Model
from ..params import ELEMENT

FRAMEWORKS = ("torch", "jax", "numpy")


def load(path: str | Path) -> Model:
    path = Path(path)
    module = _import(path)
    name = str(path)
    params = getattr(module, "PARAMS", None)
    if params is None:
        raise InputError("defines no PARAMS", where=name, hint='add PARAMS = {"theta0": 0.0, ...}')
    initial = _initial_params(_params_mapping(params, path), name)
    framework_losses = {}
    for framework in FRAMEWORKS:
        own = getattr(module, f"loss_{framework}", None)
        if own is not None:
            if not callable(own):
                raise InputError(f"loss_{framework} is not a function", where=name)
            framework_losses[framework] = own
    loss = getattr(module, "loss", None)
    if loss is not None and not callable(loss):
        raise InputError("loss is not a function", where=name)
    sides = [f for f in ("torch", "jax") if f in framework_losses]
    if loss is None and len(sides) < 2:
        raise InputError(
            "defines no function loss(params, X, y, xp), and not both loss_torch and loss_jax",
            where=name,
            hint="write the generic loss, or the two sides of a port (loss_torch and loss_jax)",
        )
    accept = _accepted_difference(getattr(module, "ACCEPT", 0.0), name)
    labels = getattr(module, "LABELS", False)
    if labels not in (True, False):
        raise InputError(f"LABELS = {labels!r} is not True or False", where=name)
    grad_native = getattr(module, "grad_native", None)
    first = loss if loss is not None else framework_losses[sides[0]]
    doc = (first.__doc__ or module.__doc__ or "").strip().splitlines()
    shapes = {k: v.shape for k, v in initial.items()}
    return Model(
        name=path.name,
        formula=doc[0] if doc else f"loss() in {path.name}",
        description=f"user loss file {name}",
        param_shapes=lambda shape: dict(shapes),
        loss=loss,
        native=_native_adapter(grad_native, shapes) if callable(grad_native) else None,
        native_dtypes=("float64",),
        framework_losses=framework_losses,
        initial=lambda shape: {k: v.copy() for k, v in initial.items()},
        source=name,
        accept=accept,
        integer_targets=labels,
        validate=_labels_check(name) if labels else None,
        distributed_steps=_distributed_steps(module, name),
        recipe=("file", name),
    )


def _distributed_steps(module, where: str) -> dict:
    """The file's own distributed steps (docs/design.md, "Loss files"): framework → function."""
    steps = {}
    for framework in ("torch", "jax"):
        step = getattr(module, f"grad_{framework}_dist", None)
        if step is not None:
            if not callable(step):
                raise InputError(f"grad_{framework}_dist is not a function", where=where)
            steps[framework] = step
    return steps


def _params_mapping(params, path: Path):
    """PARAMS as a mapping: a dict as written, the result of a function, or the named arrays of
    an ``.npz`` or ``.safetensors`` file (a path relative to the loss file)."""
    where = str(path)
    if callable(params):
        try:
            params = params()
        except Exception as exc:
            raise InputError(
                f"PARAMS() raised {type(exc).__name__}: {_first_line(exc)}",
                where=where_in_file(exc, path),
            ) from None
    if isinstance(params, str | Path):
        file = (path.parent / params) if not Path(params).is_absolute() else Path(params)
        if not file.is_file():
            raise InputError(
                f"PARAMS names {str(params)!r}, which is not a file ({file})", where=where
            )
        try:
            if file.suffix == ".safetensors":
                from safetensors.numpy import load_file

                return dict(load_file(str(file)))
            with np.load(file, allow_pickle=False) as archive:
                return {k: archive[k] for k in archive.files}
        except ImportError:
            raise InputError(
                "PARAMS is a .safetensors file and the safetensors package is not installed",
                where=where,
                hint="pip install safetensors, or save the weights with numpy.savez",
            ) from None
        except Exception as exc:
            raise InputError(
                f"PARAMS file {file} cannot be read: {_first_line(exc)}",
                where=where,
                hint="give an .npz (numpy.savez) or .safetensors file of named arrays",
            ) from None
    return params


def _labels_check(where: str):
    """``LABELS = True``: the target must hold class labels, integers 0, 1, 2, …"""

    def check(data) -> None:
        y = np.asarray(data.y)
        bad = np.flatnonzero(~np.isfinite(y) | (y < 0) | (y != np.round(y)) | (y >= 2**31))
        if bad.size:
            raise InputError(
                f"target {data.target!r} row {bad[0] + 1} = {float(y[bad[0]])!r} is not a class "
                "label (an integer 0, 1, 2, …), and the loss file sets LABELS = True",
                where=data.path,
                hint="give integer labels, or drop LABELS from the loss file",
            )

    return check


def _accepted_difference(value, where: str) -> float:
    """ACCEPT: the relative difference between a port's sides the user knowingly accepts
    (an eps of 1e-6 against 1e-5); it is still reported, never hidden."""
    try:
        accept = float(value)
    except (TypeError, ValueError):
        accept = -1.0
    if not (0.0 <= accept < 1.0):
        raise InputError(f"ACCEPT = {value!r} is not a relative difference in [0, 1)", where=where)
    return accept


def _import(path: Path):
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "no such file"
        raise InputError(what, where=str(path), hint="give the path of a Python file")
    module_name = f"gradcmp_loss_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise InputError("cannot be imported as Python", where=str(path))
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except SystemExit as exc:
        del sys.modules[module_name]
        raise InputError(f"importing it called sys.exit({exc.code!r})", where=str(path)) from None
    except SyntaxError as exc:
        del sys.modules[module_name]
        raise InputError(
            f"syntax error: {exc.msg}", where=f"{path}:{exc.lineno}", hint="fix the file"
        ) from None
    except Exception as exc:
        del sys.modules[module_name]
        raise InputError(
            f"importing it raised {type(exc).__name__}: {_first_line(exc)}",
            where=where_in_file(exc, path),
        ) from None
    return module


def where_in_file(exc: BaseException, path: Path | str) -> str:
    """``FILE:LINE`` of the deepest frame of ``exc``'s traceback that is in ``path``."""
    target = str(Path(path).resolve())
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if str(Path(frame.filename).resolve()) == target:
            line = frame.lineno
    return f"{path}:{line}" if line else str(path)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else ""


def _initial_params(params, where: str) -> dict[str, np.ndarray]:
    if not isinstance(params, dict) or not params:
        raise InputError(
            "PARAMS is not a non-empty dict of name → value",
            where=where,
            hint='write PARAMS = {"theta0": 0.0, "w": [0.0, 0.0]}',
        )
    initial = {}
    for key, value in params.items():
        if not isinstance(key, str) or not ELEMENT.match(key) or "[" in key or key == "loss":
            raise InputError(
                f"PARAMS name {key!r} is not a Python identifier (or is 'loss')", where=where
            )
        try:
            array = np.array(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise InputError(
                f"PARAMS[{key!r}] is not a number or a nested list of numbers", where=where
            ) from None
        if not np.isfinite(array).all():
            raise InputError(f"PARAMS[{key!r}] is not finite", where=where)
        if array.size == 0:
            raise InputError(f"PARAMS[{key!r}] is empty", where=where)
        initial[key] = array
    return initial


def _native_adapter(grad_native, shapes: dict[str, tuple[int, ...]]):
    """``grad_native(params, X, y)`` (Python floats and nested lists) as a Model.native.

    It returns {name: gradient} or (loss, {name: gradient}); values are numbers or nested
    lists shaped like the parameter.
    """

    def native(params, rows, target, scalar):
        nested = {k: np.reshape(v, shapes[k]).tolist() for k, v in params.items()}
        answer = grad_native(nested, rows, target)
        loss, grads = answer if isinstance(answer, tuple) else (None, answer)
        if not isinstance(grads, dict):
            raise TypeError(f"grad_native returned {type(grads).__name__}, not a dict")
        return loss, {
            k: np.ravel(np.asarray(v, dtype=np.float64)).tolist() for k, v in grads.items()
        }

    return native


def preflight(problem) -> None:
    """Run the generic loss once in numpy float64, so that a loss that cannot run on this data
    (a parameter that does not fit, a non-scalar result) is a usage error naming the line,
    not a failure of every backend."""
    model = problem.model
    X, y = problem.data.X, problem.data.y
    if model.integer_targets:
        y = np.asarray(y).astype(np.int64)
    params = {k: v.copy() for k, v in problem.params.values.items()}
    try:
        with np.errstate(all="ignore"):
            value = model.loss(params, X, y, np)
    except Exception as exc:
        hint = "check PARAMS' shapes against the data's features"
        # xp.erf, xp.linalg.foo: numpy (xp here) raises AttributeError naming itself as obj.
        owner = getattr(getattr(exc, "obj", None), "__name__", None)
        if isinstance(exc, AttributeError) and isinstance(owner, str):
            if owner == "numpy" or owner.startswith("numpy."):
                function = f"xp{owner[len('numpy') :]}.{exc.name}"
                hint = (
                    f"{function} is not in numpy's namespace, and the generic loss runs with "
                    "numpy, JAX, torch and gradcmp's reference as xp: use the functions they "
                    "share, the array API's (docs/ports.md lists them)"
                )
        raise InputError(
            f"loss() raised {type(exc).__name__}: {_first_line(exc)}",
            where=where_in_file(exc, model.source),
            hint=hint,
        ) from None
    kind = np.asarray(value).dtype.kind if value is not None else "O"
    if kind not in "fiu" and not hasattr(value, "dtype"):
        raise InputError(
            f"loss() returned {type(value).__name__}, not a number",
            where=model.source,
            hint="return a real scalar, e.g. xp.mean(...)",
        )
    if kind == "c":
        raise InputError("loss() returned a complex number", where=model.source)
    if np.size(value) != 1:
        raise InputError(
            f"loss() returned an array of shape {np.shape(value)}, not a scalar",
            where=model.source,
            hint="reduce it, e.g. with xp.mean",
        )
