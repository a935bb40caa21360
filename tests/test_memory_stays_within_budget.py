"""Memory (issue 13, item 2): a memory-mapped float64 master is read a part at a time and its
pages let go (the dataset's digest unchanged), autodiff beyond a budget runs on row blocks
added exactly (the same verdicts, within τ), JAX uses the inputs in place, and every call's
peak memory is measured."""

from __future__ import annotations

import hashlib
import json
from fractions import Fraction

import numpy as np
import pytest

from gradcmp.api import compare
from gradcmp.backends import BACKENDS
from gradcmp.backends.blocks import row_blocks, weighted_sum
from gradcmp.dtypes import FLOAT32, FLOAT64
from gradcmp.judging.execute import OK, execute
from gradcmp.judging.runner import run
from gradcmp.loading import data as data_module
from gradcmp.loading.pages import parts, release
from gradcmp.models import get_model
from gradcmp.params import Params
from gradcmp.problem import Problem


def old_digest(dataset) -> str:
    """The digest as it was computed before (whole arrays): baselines depend on it."""
    digest = hashlib.sha256("\x00".join((*dataset.feature_names, dataset.target)).encode())
    digest.update(np.asarray(dataset.X).tobytes())
    digest.update(np.asarray(dataset.y).tobytes())
    return digest.hexdigest()


def random_npy(tmp_path, rows: int = 3000, features: int = 1, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((rows, features))
    y = X @ np.arange(1, features + 1) + rng.standard_normal(rows)
    path = tmp_path / f"data-{rows}-{features}.npy"
    np.save(path, np.column_stack([X, y]))  # row-major: columns are strided views of the map
    return path


def test_digest_is_taken_on_the_values_as_written(tmp_path):
    seed = data_module.load(None)
    assert seed.sha256 == old_digest(seed)
    for features in (1, 3):
        mapped = data_module.load(random_npy(tmp_path, 5000, features))
        assert mapped.sha256 == old_digest(mapped)
    # A float32-only run leaves the digest what it was (it is a property of the data).
    model = get_model("linear")
    problem = Problem(model, mapped, Params.from_arrays(model.initial_params(mapped)))
    problem.inputs(FLOAT32)
    assert mapped.sha256 == old_digest(mapped)


def test_released_pages_read_back_unchanged(tmp_path):
    array = np.load(random_npy(tmp_path, 200_000), mmap_mode="r")
    column = array[:, 1]
    before = np.array(column)
    for _, _, part in parts(column, rows=4096):
        part.sum()
    release(column)
    assert np.array_equal(np.asarray(column), before)
    release(np.ones(10))  # not a file's pages: nothing happens


def test_float32_inputs_are_the_rounded_master(tmp_path):
    path = random_npy(tmp_path, 300_000, 2)  # > 1 MiB: made a part at a time
    mapped = compare(path, backends="numpy", dtypes="float32").problem
    X, y = mapped.inputs(FLOAT32)
    assert X.flags.c_contiguous and not X.flags.writeable
    assert np.array_equal(X, np.asarray(mapped.data.X).astype(np.float32))
    assert np.array_equal(y, np.asarray(mapped.data.y).astype(np.float32))
    assert X.ctypes.data % 64 == 0


@pytest.mark.parametrize("model", ["linear", "logistic"])
def test_same_numbers_from_a_memory_mapped_master(tmp_path, model):
    """The .npy read in place gives the numbers and verdicts of the same values in memory."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((4000, 2))
    y = (X[:, 0] > 0).astype(float) if model == "logistic" else X @ [1.0, -2.0]
    path = tmp_path / "d.npy"
    np.save(path, np.column_stack([X, y]))
    backends = "numpy,native"
    from_file = compare(path, model, backends=backends, dtypes="float32")
    in_memory = compare((X, y), model, backends=backends, dtypes="float32")
    assert from_file.problem.data.sha256 == old_digest(in_memory.problem.data)
    for a, b in zip(from_file.results, in_memory.results):
        assert (a.verdict, a.loss, a.grads) == (b.verdict, b.loss, b.grads)
    assert from_file.reference.as_written.outputs() == in_memory.reference.as_written.outputs()


def test_weighted_sum_is_exact():
    values = [np.array([0.1, 1e300]), np.array([0.2, -1e300]), np.array([0.3, 5.0])]
    got = weighted_sum(values, [3, 3, 1], 7, FLOAT64)
    want = (3 * Fraction(0.1) + 3 * Fraction(0.2) + Fraction(0.3)) / 7
    assert got[0] == float(want)
    assert got[1] == float(Fraction(5, 7))


AUTODIFF = ["torch-grad", "torch-backward", "torch-func", "jax-grad", "jax-fwd"]


@pytest.mark.parametrize("name", AUTODIFF)
@pytest.mark.parametrize("model", ["linear", "logistic"])
def test_blocks_agree_as_the_whole_does(monkeypatch, name, model):
    from gradcmp.backends import missing_modules

    if missing_modules(BACKENDS[name]):
        pytest.skip(f"{name} not installed")
    rng = np.random.default_rng(1)
    X = rng.standard_normal((2000, 2))
    y = (X[:, 1] > 0).astype(float) if model == "logistic" else X @ [0.5, 2.0] + 1
    monkeypatch.setenv("GRADCMP_BLOCK_BYTES", "0")
    whole = compare((X, y), model, backends=name, dtypes="float32,float64")
    # 2000 rows × 12 or 24 bytes: blocks of 320 (float32) or 128 rows (float64)
    monkeypatch.setenv("GRADCMP_BLOCK_BYTES", "16384")
    assert row_blocks(whole.problem, FLOAT32) is not None
    blocked = compare((X, y), model, backends=name, dtypes="float32,float64")
    for a, b in zip(whole.results, blocked.results):
        assert b.status == OK and "row blocks" in b.note, b.note
        assert a.verdict == b.verdict == "agree", (a.why, b.why)
        for k, error in b.errors.items():
            assert error.ratio <= 1, (k, error)
            assert b.grads.get(k, b.loss) == pytest.approx(a.grads.get(k, a.loss), rel=1e-4)


def test_small_data_and_loss_files_run_whole(seed_problem, monkeypatch):
    assert row_blocks(seed_problem, FLOAT32) is None
    monkeypatch.setenv("GRADCMP_BLOCK_BYTES", "8")
    assert row_blocks(seed_problem, FLOAT32) is None  # 6 rows: too few to split


def test_jax_uses_large_inputs_in_place(tmp_path):
    pytest.importorskip("jax")
    from gradcmp.backends._jax import jax_inputs

    problem = compare(random_npy(tmp_path, 300_000), backends="numpy", dtypes="float32").problem
    X_np, _ = problem.inputs(FLOAT32)
    with jax_inputs(problem, FLOAT32) as (_, X, _, _, _):
        assert X.unsafe_buffer_pointer() == X_np.ctypes.data


def test_every_call_reports_its_peak_memory(seed_problem):
    outcome = execute(seed_problem, "numpy", FLOAT64, None)
    assert outcome.status == OK
    if outcome.peak_bytes is None:
        pytest.skip("no /proc/self/clear_refs here")
    assert outcome.peak_bytes >= 0


def test_json_timings_name_each_calls_peak_memory(seed_problem):
    report = run(seed_problem, ["native", "numpy"], [FLOAT32, FLOAT64])
    peaks = json.loads(json.dumps(report.to_dict()["timings"]))["peak_bytes"]
    assert set(peaks) == {"native/float32", "native/float64", "numpy/float32", "numpy/float64"}
    assert all(v is None or v >= 0 for v in peaks.values())
