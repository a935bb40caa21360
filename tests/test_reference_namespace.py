"""The ``xp`` a generic loss gets from the reference: the array API's differentiable part,
an AttributeError for what it lacks (which still makes the reference fall back), and the
usage error's hint when numpy (the preflight's xp) lacks a function."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from gradcmp.cli import cli
from gradcmp.reference import highprec as hp

ARRAY_API = """
    abs acos acosh add asin asinh atan atan2 atanh ceil clip concat cos cosh cumulative_sum
    divide exp expm1 expand_dims floor log log1p log2 log10 logaddexp matmul matrix_transpose
    max maximum mean min minimum multiply negative permute_dims positive pow prod reciprocal
    reshape round sign sin sinh sqrt square squeeze stack std subtract sum take tan tanh
    tensordot trunc var vecdot where moveaxis flip repeat broadcast_to broadcast_arrays
    asarray astype zeros ones full zeros_like ones_like eye linspace arange
    equal not_equal less less_equal greater greater_equal isnan isinf isfinite argmax argmin
""".split()


def test_the_namespace_has_the_array_api_functions_and_erf():
    missing = [
        name for name in [*ARRAY_API, "erf", "arcsin", "arctan2"] if not hasattr(hp.xp, name)
    ]
    assert not missing
    assert hasattr(hp.xp.linalg, "vector_norm") and hasattr(hp.xp.linalg, "matmul")


def test_a_missing_function_is_an_attribute_error_and_unsupported():
    assert not hasattr(hp.xp, "nope") and not hasattr(hp.xp.linalg, "nope")
    with pytest.raises(AttributeError) as info:
        hp.xp.nope  # noqa: B018
    assert isinstance(info.value, hp.UnsupportedOperation)
    assert str(info.value) == (
        "xp.nope is not in gradcmp's reference namespace (see docs/ports.md for the list)"
    )
    with pytest.raises(hp.UnsupportedOperation, match=r"xp\.linalg\.svd is not in"):
        hp.xp.linalg.svd  # noqa: B018


def test_a_loss_with_a_missing_function_makes_the_reference_fall_back():
    with pytest.raises(hp.UnsupportedOperation, match=r"xp\.sinc is not in"):
        hp.value_and_grad(
            lambda p, X, y, xp: xp.sum(xp.sinc(p["w"])),
            {"w": np.ones(2)},
            np.ones((1, 1)),
            np.ones(1),
        )


def _array_api_loss(params, X, y, xp):
    """Most of the namespace at once: trigonometric and hyperbolic functions, reductions with
    axes, joins, norms, batched matrix products."""
    w, v = params["w"], params["v"]
    z = X @ w  # (n, 3)
    h = xp.concat([xp.tanh(z), xp.atan(z) * 0.5, xp.asinh(z)], axis=1)  # (n, 9)
    s = xp.stack([xp.sin(z), xp.cos(z)], axis=0)  # (2, n, 3)
    batched = xp.matmul(s, xp.expand_dims(v, axis=0))  # (2, n, 3) @ (1, 3, 2)
    spread = xp.var(h, axis=0, correction=1) + xp.std(z, axis=1, correction=0)[0]
    norms = xp.linalg.vector_norm(h, axis=1) + xp.max(z, axis=1) - xp.min(z, axis=1)
    angle = xp.atan2(z[:, 0], xp.exp(z[:, 1]))
    ramp = xp.cumulative_sum(xp.take(xp.clip(z[:, 2], min=-0.5, max=0.5), xp.arange(3), axis=0))
    squash = xp.squeeze(xp.permute_dims(xp.expand_dims(v, axis=2), (2, 0, 1)), axis=0)
    return (
        xp.mean(xp.square(norms - y))
        + xp.sum(spread)
        + xp.sum(batched * batched) / 10
        + xp.mean(xp.reciprocal(1.5 + xp.sinh(angle) ** 2))
        + xp.sum(ramp)
        + xp.sum(xp.log1p(xp.abs(squash)))
        + xp.prod(xp.cosh(v[0] / 4))
    )


def test_a_loss_in_array_api_names_matches_torch_float64():
    torch = pytest.importorskip("torch")
    xp_torch = pytest.importorskip("array_api_compat.torch")
    rng = np.random.default_rng(21)
    X, y = rng.normal(size=(6, 4)), rng.normal(size=6)
    params = {"w": rng.normal(size=(4, 3)) * 0.5, "v": rng.normal(size=(3, 2))}
    out, grads = hp.value_and_grad(_array_api_loss, params, X, y)
    tensors = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    value = _array_api_loss(tensors, torch.tensor(X), torch.tensor(y), xp_torch)
    value.backward()
    np.testing.assert_allclose(float(out.f), value.item(), rtol=1e-13)
    for name, tensor in tensors.items():
        np.testing.assert_allclose(grads[name].f, tensor.grad.numpy(), rtol=1e-11, atol=1e-13)


def test_the_preflight_says_which_xp_function_numpy_lacks(tmp_path):
    path = tmp_path / "erf.py"
    path.write_text(
        'PARAMS = {"w": 0.5}\n\ndef loss(params, X, y, xp):\n'
        '    return xp.mean(xp.erf(params["w"] * X[:, 0]) - y)\n'
    )
    result = CliRunner().invoke(cli, ["run", "--loss", str(path)])
    assert result.exit_code == 2
    (message,) = result.stderr.splitlines()
    assert (
        f"{path}:4: loss() raised AttributeError: module 'numpy' has no attribute 'erf'" in message
    )
    assert "xp.erf is not in numpy's namespace" in message
    assert "PARAMS' shapes" not in message
