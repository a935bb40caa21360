"""An error names the option the way its reader gave it: the Python API by its argument
(``data=``, ``params=['theta1']``), the command line by its flag (``--data``), as it always did.

Each case raises the same error both ways, in-process: ``gradcmp.compare`` and click's
CliRunner on the ``gradcmp run`` command. The command line's messages are pinned to what it
printed before the API spoke its own words.
"""

from __future__ import annotations

import inspect
import pickle
import re

import numpy as np
import pytest
from click.testing import CliRunner

from gradcmp.api import compare
from gradcmp.cli import cli
from gradcmp.dtypes import parse_dtypes
from gradcmp.errors import (
    API_ARGUMENTS,
    CLI_FLAGS,
    EXIT_USAGE,
    GradcmpError,
    Option,
    UsageError,
    spell,
    spelt_for_api,
)
from gradcmp.loading.data import bundled_path
from gradcmp.selftest import PORT
from gradcmp.testing import assert_gradients_agree

SEED = str(bundled_path())
CSV = f"{SEED}:1"  # the seed data's header line, as the API names it
CLI_CSV = "xy.csv (bundled):1"  # … and as the command line does (its default --data)

# (id, compare()'s arguments, `gradcmp run`'s arguments, the API's message, the CLI's message).
# A "(choose from …)" hint is left out of the comparison: it lists every backend or dtype.
CASES = [
    (
        "missing data file",
        {"data": "missing.csv"},
        ["--data", "missing.csv"],
        "missing.csv: no such file (check the data= path)",
        "missing.csv: no such file (check the --data path)",
    ),
    (
        "missing .npz data file",
        {"data": "missing.npz"},
        ["--data", "missing.npz"],
        "missing.npz: no such file (check the data= path)",
        "missing.npz: no such file (check the --data path)",
    ),
    (
        "empty data path",
        {"data": ""},
        ["--data", ""],
        "the data path is empty (give a CSV file with data=)",
        "the data path is empty (give a CSV file with --data)",
    ),
    (
        "no such target column",
        {"target": "z"},
        ["--target", "z"],
        f"{CSV}: no column named 'z' (columns: x, y) (name the target column with target=)",
        f"{CLI_CSV}: no column named 'z' (columns: x, y) (name the target column with --target)",
    ),
    (
        "param not NAME=VALUE",
        {"params": ["theta1"]},
        ["--param", "theta1"],
        "params=['theta1'] is not NAME=VALUE (write e.g. params=['theta1=0.5'])",
        "--param 'theta1' is not NAME=VALUE (write e.g. --param theta1=0.5)",
    ),
    (
        "no such parameter",
        {"params": ["theta9=1"]},
        ["--param", "theta9=1"],
        "params=['theta9=1']: no parameter 'theta9' (this model's parameters are theta0, theta1)",
        "--param 'theta9=1': no parameter 'theta9' (this model's parameters are theta0, theta1)",
    ),
    (
        "param not a number",
        {"params": ["theta1=x"]},
        ["--param", "theta1=x"],
        "params=['theta1=x']: 'x' is not a finite decimal number "
        "(write plain decimals such as 0.5 or -1.25e-3)",
        "--param 'theta1=x': 'x' is not a finite decimal number "
        "(write plain decimals such as 0.5 or -1.25e-3)",
    ),
    (
        "param below float64's range",
        {"params": ["theta1=1e-999999"]},
        ["--param", "theta1=1e-999999"],
        "params=['theta1=1e-999999']: 1e-999999 is far below float64's range",
        "--param 'theta1=1e-999999': 1e-999999 is far below float64's range",
    ),
    (
        "param element of a scalar",
        {"params": ["theta1[0]=1"]},
        ["--param", "theta1[0]=1"],
        "params=['theta1[0]=1']: theta1 has shape (), no element [0] "
        "(theta1 is a scalar: write theta1=VALUE)",
        "--param 'theta1[0]=1': theta1 has shape (), no element [0] "
        "(theta1 is a scalar: write theta1=VALUE)",
    ),
    (
        "three hidden layers",
        {"model": "mlp", "hidden": (1, 2, 3)},
        ["--model", "mlp", "--hidden", "1,2,3"],
        "hidden=(1, 2, 3): the MLP has one or two hidden layers "
        "(write hidden=(16,) or hidden=(16, 8))",
        "--hidden 1,2,3: the MLP has one or two hidden layers (write --hidden 16 or --hidden 16,8)",
    ),
    (
        "hidden sizes not numbers",
        {"model": "mlp", "hidden": "1,x"},
        ["--model", "mlp", "--hidden", "1,x"],
        "hidden='1,x' is not a list of sizes (write hidden=(16, 8))",
        "--hidden '1,x' is not a list of sizes (write --hidden 16,8)",
    ),
    (
        "hidden for linear",
        {"hidden": (4,)},
        ["--hidden", "4"],
        "hidden= applies to model='mlp', not to linear",
        "--hidden applies to --model mlp, not to linear",
    ),
    (
        "seed for linear",
        {"seed": 4},
        ["--seed", "4"],
        "seed= applies to model='mlp', not to linear",
        "--seed applies to --model mlp, not to linear",
    ),
    (
        "accept for a model",
        {"accept": 0.1},
        ["--accept", "0.1"],
        "accept= applies to a loss file with two sides (loss=), not a model",
        "--accept applies to a loss file with two sides (--loss), not a model",
    ),
    (
        "unknown dtype",
        {"dtypes": "float8"},
        ["--dtype", "float8"],
        "dtypes: unknown dtype 'float8'",
        "unknown dtype 'float8'",
    ),
    (
        "no dtype",
        {"dtypes": []},
        ["--dtype", ""],
        "dtypes: no dtype named",
        "no dtype named",
    ),
    (
        "unknown backend",
        {"backends": ["nope"]},
        ["-b", "nope"],
        "backends: unknown backend 'nope'",
        "unknown backend 'nope'",
    ),
    (
        "only the reference",
        {"backends": "exact"},
        ["-b", "exact"],
        "backends: exact is the reference, which always runs: name a backend to compare with it",
        "exact is the reference, which always runs: name a backend to compare with it",
    ),
    (
        "unknown model",
        {"model": "quadratic"},
        ["--model", "quadratic"],
        "model: unknown model 'quadratic'",
        "unknown model 'quadratic'",
    ),
]


def shown(message: str) -> str:
    return message.split(" (choose from ")[0]


def api_error(**arguments) -> GradcmpError:
    arguments.setdefault("data", SEED)
    with pytest.raises(GradcmpError) as raised:
        compare(**arguments)
    assert raised.value.exit_code == EXIT_USAGE
    return raised.value


def cli_error(*args: str) -> str:
    result = CliRunner().invoke(cli, ["run", *args])
    assert result.exit_code == EXIT_USAGE, result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith("gradcmp: error: "), line
    return line.removeprefix("gradcmp: error: ")


@pytest.mark.parametrize(
    ("arguments", "cli_args", "api_message", "cli_message"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_the_api_names_its_argument_and_the_cli_its_flag(
    arguments, cli_args, api_message, cli_message
):
    from_api = str(api_error(**arguments))
    assert shown(from_api) == api_message
    assert "--" not in from_api and "-b " not in from_api
    assert shown(cli_error(*cli_args)) == cli_message


def test_an_option_for_mlp_given_with_a_loss_file(tmp_path):
    path = tmp_path / "port.py"
    path.write_text(PORT)
    assert str(api_error(loss=path, hidden=(4,))) == (
        "hidden= applies to model='mlp', not to a loss file"
    )
    assert cli_error("--loss", str(path), "--hidden", "4") == (
        "--hidden applies to --model mlp, not to a loss file"
    )


def test_api_only_errors_name_the_argument():
    """Values only Python can give: a mapping of parameters, arrays, an accept out of range
    (the command line refuses that one itself)."""
    assert str(api_error(params={"theta9": 1})) == (
        "params: no parameter 'theta9' (parameters are theta0, theta1)"
    )
    assert (
        str(api_error(params={"theta1": float("nan")})) == "params: parameter theta1 is not finite"
    )
    message = str(api_error(data=(np.zeros((3, 2)), np.zeros(4))))
    assert message.startswith("data: X has shape (3, 2) and y has shape (4,)"), message
    message = str(api_error(data=(np.zeros((5, 0)), np.zeros(5))))  # no feature column
    assert message.startswith("data: X has shape (5, 0) and y has shape (5,)"), message
    assert str(api_error(accept=1.5)) == "accept=1.5 is not a relative difference in [0, 1)"


def test_assert_gradients_agree_speaks_the_api():
    with pytest.raises(UsageError) as raised:
        assert_gradients_agree(SEED, params=["theta9=1"], backends=["native"])
    assert str(raised.value).startswith("params=['theta9=1']: no parameter 'theta9'")
    assert repr(raised.value).startswith("UsageError(\"params=['theta9=1']")  # args too


def test_user_text_is_shown_verbatim_never_parsed():
    """A message's options are parts of it, not fields of a template: braces the user typed
    stay braces."""
    assert str(api_error(params=["{0}=1"])).startswith("params=['{0}=1']: no parameter '{0}'")
    assert cli_error("--param", "{0}=1").startswith("--param '{0}=1': no parameter '{0}'")


def test_the_command_line_spelling_is_the_default():
    """Code other than compare() (the CLI, bench, selftest, plugins) sees the flags' words,
    and an error not about an option is shown alike by both."""
    with pytest.raises(UsageError) as raised:
        parse_dtypes("float8")
    assert str(raised.value).startswith("unknown dtype 'float8' (choose from ")
    hint = ("check the ", Option("data"), " path")
    assert spell(hint) == "check the --data path"
    with pytest.raises(UsageError) as raised, spelt_for_api():
        raise UsageError("cannot write a report to ''", hint="give a file name")
    assert str(raised.value) == "cannot write a report to '' (give a file name)"


def test_a_respelt_error_survives_pickling():
    """A pickled error (multiprocessing, pytest-xdist) keeps its parts and its reader."""
    error = pickle.loads(pickle.dumps(api_error(params=["theta1"])))
    assert type(error) is UsageError and error.exit_code == EXIT_USAGE
    assert str(error) == "params=['theta1'] is not NAME=VALUE (write e.g. params=['theta1=0.5'])"
    error.spell_for("cli")
    assert str(error) == "--param 'theta1' is not NAME=VALUE (write e.g. --param theta1=0.5)"


def test_both_tables_name_real_options():
    """Every option has a flag `gradcmp run` takes and an argument compare() takes."""
    run_flags = {flag for param in cli.commands["run"].params for flag in param.opts}
    assert set(CLI_FLAGS) == set(API_ARGUMENTS)
    assert set(CLI_FLAGS.values()) <= run_flags
    assert set(API_ARGUMENTS.values()) <= set(inspect.signature(compare).parameters)


@pytest.mark.parametrize(
    "given, message",
    [
        ({"timeout": -1}, "timeout=-1 is not a positive number of seconds"),
        ({"timeout": float("nan")}, "timeout=nan is not a positive number of seconds"),
        ({"strict": "yes"}, "strict='yes' is not True or False"),
    ],
)
def test_compare_checks_what_the_command_line_types_check(given, message):
    with pytest.raises(UsageError, match=re.escape(message)):
        compare(SEED, backends="native", **given)
