"""No framework is imported until a backend of it runs, and none is left changed after."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gradcmp.dtypes import FLOAT32, FLOAT64
from gradcmp.judging.runner import OK, run

FRAMEWORKS = ("torch", "jax")


def imported_after(code: str) -> list[str]:
    names = f"','.join(m for m in {FRAMEWORKS!r} if m in sys.modules)"
    probe = f"{code}\nimport sys\nprint('IMPORTED:' + {names})"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("IMPORTED:"), done.stdout
    return [m for m in last.removeprefix("IMPORTED:").split(",") if m]


@pytest.mark.parametrize(
    "code",
    [
        "import gradcmp",
        "from gradcmp.cli import cli; cli.main(['--help'], standalone_mode=False)",
        "from gradcmp.cli import cli; cli.main(['backends'], standalone_mode=False)",
        "from gradcmp.cli import cli; cli.main(['models'], standalone_mode=False)",
        "from gradcmp.cli import cli; cli.main(['run', '-b', 'native'], standalone_mode=False)",
    ],
)
def test_no_framework_imported(code):
    assert imported_after(code) == []


def test_jax_float64_runs_in_float64_without_changing_the_callers_x64(seed_problem):
    jax = pytest.importorskip("jax")
    before = jax.config.jax_enable_x64
    (result,) = run(seed_problem, ["jax-grad"], [FLOAT64]).results
    assert result.status == OK
    # Really float64: within a float64 ULP (float32 arithmetic would be ~2**29 float64 ULPs off).
    assert all(e.ulp <= 1 for e in result.errors.values()), result.errors
    assert jax.config.jax_enable_x64 == before


def test_jax_float32_ignores_a_callers_x64(seed_problem):
    jax = pytest.importorskip("jax")
    with jax.enable_x64(True):
        (result,) = run(seed_problem, ["jax-grad"], [FLOAT32]).results
        assert jax.config.jax_enable_x64 is True
    assert result.status == OK
    assert all(e.ulp <= 2 for e in result.errors.values())


def test_torch_state_untouched(seed_problem):
    torch = pytest.importorskip("torch")
    default_dtype = torch.get_default_dtype()
    with torch.no_grad():  # a caller with grad disabled still gets gradients
        results = run(seed_problem, ["torch-grad", "torch-backward"], [FLOAT32, FLOAT64]).results
        assert not torch.is_grad_enabled()
    assert all(r.status == OK for r in results), [r.note for r in results]
    assert torch.get_default_dtype() == default_dtype
