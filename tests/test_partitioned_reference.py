"""Data split into Parquet partitions: read as one dataset by ``gradcmp run``, and the exact
reference added up from the partitions' parts (what ``python -m gradcmp.dist`` does across
ranks) equals the reference of the whole data, exactly."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from gradcmp.distributed.partial_reference import combined, partial
from gradcmp.dtypes import DTYPES
from gradcmp.errors import InputError
from gradcmp.loading import data
from gradcmp.loading.partitions import for_rank, partition_files, rows_of
from gradcmp.models import get_model, mlp
from gradcmp.params import Params
from gradcmp.problem import Problem
from gradcmp.reference.compute import compute_reference

pq = pytest.importorskip("pyarrow.parquet")
pa = pytest.importorskip("pyarrow")


def _write_parts(directory, sizes, seed=0):
    rng = np.random.default_rng(seed)
    tables = []
    for i, n in enumerate(sizes):
        x = rng.normal(size=n)
        table = {"x": x, "x2": rng.normal(size=n), "y": 3 * x + rng.normal(size=n)}
        pq.write_table(pa.table(table), directory / f"part-{i:05d}.parquet")
        tables.append(table)
    return tables


def test_a_directory_of_partitions_reads_as_the_rows_in_file_order(tmp_path):
    tables = _write_parts(tmp_path, [3, 5, 2])
    dataset = data.load(tmp_path)
    assert dataset.rows == 10
    assert dataset.feature_names == ("x", "x2")
    np.testing.assert_array_equal(dataset.y, np.concatenate([t["y"] for t in tables]))


def test_an_empty_directory_is_one_clear_error(tmp_path):
    with pytest.raises(InputError, match="no .parquet files"):
        data.load(tmp_path)


def test_partitions_go_to_ranks_in_contiguous_runs(tmp_path):
    _write_parts(tmp_path, [1] * 5)
    files = partition_files(tmp_path)
    runs = [for_rank(files, r, 3) for r in range(3)]
    assert [len(r) for r in runs] == [2, 2, 1]
    assert [f for run in runs for f in run] == files


@pytest.mark.parametrize("model_name", ["linear", "mlp"])
def test_the_parts_of_the_reference_add_up_to_the_whole_exactly(model_name):
    """linear: the exact reference, equal exactly; mlp: the high-precision one, whose parts
    each carry their own 200-bit evaluation error: equal far below any dtype's rounding."""
    dataset = data.load(None)
    model = get_model("linear") if model_name == "linear" else mlp.make((3,), 0)
    params = Params.from_arrays(model.initial_params(dataset))
    dtypes = [DTYPES["float64"], DTYPES["float32"]]
    whole = compute_reference(Problem(model, dataset, params), dtypes)
    bounds = [(0, 2), (2, 3), (3, 6)]
    parts = []
    for rank, (start, stop) in enumerate(bounds):
        local = Problem(model, rows_of(dataset, start, stop), params)
        w = Fraction(stop - start, dataset.rows)
        parts.append(partial(compute_reference(local, dtypes), w, local, first=rank == 0))
    added = combined(parts)
    for d in ("float64", "float32"):
        got, want = added.by_dtype[d].outputs(), whole.by_dtype[d].outputs()
        assert got.keys() == want.keys()
        if model_name == "linear":
            assert got == want
        else:
            scale = max(abs(v) for v in want.values())
            assert all(abs(got[k] - want[k]) <= Fraction(1, 2**150) * scale for k in want)
        assert added.rounding[d].values == whole.rounding[d].values
        assert added.rounding[d].rounded == whole.rounding[d].rounded
    if model_name == "linear":  # the rule's M is a sum over rows: it adds the same way
        assert added.by_dtype["float64"].magnitudes == whole.by_dtype["float64"].magnitudes
