"""The default table fits the terminal and never cuts a number (issue 12).

Rendered at 80, 100 and 120 columns for the seed and for a 5-16-1 MLP loss file: every line
fits, nothing is elided with "…", and with ``--detail`` every value shown is its whole ``repr``
(the grid where it fits, one output per line where it does not).
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from rich.console import Console

from gradcmp import api
from gradcmp.cli import cli
from gradcmp.judging.agreement import worst_output
from gradcmp.report.table import MAX_ELEMENT_COLUMNS, columns, render

WIDTHS = (80, 100, 120)
MLP_FILE = Path(__file__).parent / "tables" / "mlp_5_16_1.py"


@pytest.fixture(scope="module")
def seed_report():
    return api.run_from_options(backends="native,torch-grad,torch-backward", workers=False)


@pytest.fixture(scope="module")
def mlp_report(tmp_path_factory):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(32, 5)).round(2)
    y = (X @ rng.normal(size=5)).round(2)
    path = tmp_path_factory.mktemp("mlp") / "mlp.csv"
    rows = [",".join(map(repr, [*map(float, r), float(t)])) for r, t in zip(X, y)]
    path.write_text("a,b,c,d,e,y\n" + "\n".join(rows) + "\n")
    return api.run_from_options(
        data=str(path), loss=str(MLP_FILE), backends="torch-grad,torch-backward", workers=False
    )


def rendered(report, width: int, **options) -> str:
    buffer = io.StringIO()
    render(report, Console(file=buffer, width=width, no_color=True), **options)
    return buffer.getvalue()


def shown_values(report) -> list[str]:
    """The repr of every computed value the detail shows: each output, or for a parameter
    tensor its worst element."""
    values = []
    for r in report.results:
        outputs = {"loss": r.loss, **r.grads}
        for group in columns(report).values():
            present = [k for k in group if k in r.errors]
            if present:
                values.append(repr(outputs[worst_output(r.errors, present)]))
    return values


def elided(text: str) -> bool:
    """Rich marks a cut cell with "…" glued to what is left of it ("227.58…", "nat…"); the
    header's "… (113 in all)" stands apart and cuts nothing."""
    return re.search(r"\S…", text) is not None


def whole(value: str, text: str) -> bool:
    """``value`` appears with no digit glued on either side (not cut, not part of another)."""
    return re.search(rf"(?<![\d.]){re.escape(value)}(?![\d])", text) is not None


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("which", ["seed_report", "mlp_report"])
def test_default_table_fits_the_width_without_eliding(request, which, width):
    report = request.getfixturevalue(which)
    text = rendered(report, width)
    too_long = [line for line in text.splitlines() if len(line) > width]
    assert not too_long
    assert not elided(text)
    table_lines = [line for line in text.splitlines() if line.startswith(("native", "torch"))]
    # One line per backend × dtype, each naming its backend whole.
    assert len(table_lines) == len(report.results)
    for r, line in zip(report.results, table_lines):
        assert line.startswith(r.backend) and r.dtype in line and r.verdict in line
    assert text.splitlines()[-1].startswith("verdict: agree")


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("which", ["seed_report", "mlp_report"])
def test_detail_shows_every_value_whole(request, which, width):
    report = request.getfixturevalue(which)
    text = rendered(report, width, detail=True)
    assert not elided(text)
    for value in shown_values(report):
        assert whole(value, text), value
    assert all(len(line) <= width for line in text.splitlines())


def test_a_grid_wider_than_the_terminal_is_printed_one_output_per_line(mlp_report):
    narrow = rendered(mlp_report, 80, detail=True)
    assert "the grid needs" in narrow and "worst element, one per line" in narrow
    assert len(mlp_report.problem.params.elements()) > MAX_ELEMENT_COLUMNS
    # The worst element of each tensor is named on its own line.
    assert re.search(r"^  w1\[\d+,\d+\] ", narrow, re.M)


def test_a_grid_that_fits_is_printed_as_a_grid(seed_report):
    wide = rendered(seed_report, 200, detail=True)
    assert "one per line" not in wide
    assert re.search(r"^ *backend +dtype +verdict +loss +theta0 +theta1", wide, re.M)


def test_plain_prints_the_whole_grid_at_its_natural_width(mlp_report):
    text = rendered(mlp_report, 80, plain=True)
    for value in shown_values(mlp_report):
        assert whole(value, text), value
    assert not elided(text)
    assert max(map(len, text.splitlines())) > 120  # the grid, not squeezed to the console


def test_piped_output_starts_with_the_table():
    """`gradcmp run | head` reads well: the header and the table come first."""
    result = CliRunner().invoke(cli, ["run", "--no-workers", "-b", "native"])
    assert result.exit_code == 0, result.output
    head = result.output.splitlines()[:10]
    assert any(re.match(r"backend +dtype +verdict +worst output +error +of τ", x) for x in head)
    assert any(x.startswith("native") and "float32" in x for x in head)


@pytest.mark.parametrize("width", [40, 60])
def test_a_narrower_terminal_drops_the_time_then_the_columns_never_a_digit(seed_report, width):
    text = rendered(seed_report, width)
    assert "the time column is left out" in text
    assert not elided(text)
    for r in seed_report.results:
        e = r.errors[worst_output(r.errors, list(r.errors))]
        assert f"{e.ratio:.2g}" in text
    assert all(len(line) <= width for line in text.splitlines())
