"""Reading data: what is accepted (values kept exactly, integers beyond 2**53 too), and one
clear error (with the line) for the rest."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

import gradcmp
from gradcmp.errors import InputError
from gradcmp.loading import data


def write(tmp_path, content: bytes | str, name="d.csv"):
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def test_bundled_seed_data():
    dataset = data.load(None)
    assert dataset.feature_names == ("x",)
    assert dataset.X[:, 0].tolist() == [1, 2, 3, 4, 5, 6]
    assert dataset.y.tolist() == [13, 14, 20, 21, 25, 30]
    assert dataset.all_decimal_cells() == {}


def test_repository_copy_is_the_bundled_file():
    from pathlib import Path

    repo_copy = Path(__file__).parents[1] / "data" / "xy.csv"
    assert repo_copy.read_bytes() == data.bundled_path().read_bytes()


def test_bom_crlf_spaces_blank_lines_and_target(tmp_path):
    path = write(tmp_path, b"\xef\xbb\xbfa, target ,b\r\n1, 2 ,3\r\n\r\n4,5,6e-1\r\n")
    dataset = data.load(path, target="target")
    assert dataset.feature_names == ("a", "b")
    assert dataset.X.tolist() == [[1, 3], [4, 0.6]]
    assert dataset.y.tolist() == [2, 5]
    # 6e-1 is not a float64: its exact value is kept for the reference.
    assert dataset.all_decimal_cells() == {(1, "b"): Fraction(6, 10)}


def test_big_integers_are_kept_exactly(tmp_path):
    path = write(tmp_path, "x,y\n9007199254740993,1\n")  # 2**53 + 1 rounds in float64
    dataset = data.load(path)
    assert dataset.all_decimal_cells() == {(0, "x"): Fraction(2**53 + 1)}


@pytest.mark.parametrize(
    ("content", "line", "fragment"),
    [
        ("", None, "empty"),
        ("x,y\n", 1, "no data rows"),
        ("1,2\n3,4\n", 1, "numbers, not column names"),
        ("x,x\n1,2\n", 1, "appears twice"),
        ("x,,y\n1,2,3\n", 1, "has no name"),
        ("x,y\n1,2\n3\n", 3, "1 field where the header has 2"),
        ("x,y\n1,2,3\n", 2, "3 fields"),
        ("x,y\n1,\n", 2, "empty cell"),
        ("x,y\n1,abc\n", 2, "'abc' is not a decimal number"),
        ("x,y\n1,nan\n", 2, "'nan'"),
        ("x,y\n1,inf\n", 2, "'inf'"),
        ("x,y\n1,1e999\n", 2, "overflows float64"),
        ("x,y\n1,0x1p3\n", 2, "'0x1p3'"),
        ("x,y\n1,1_000\n", 2, "'1_000'"),
        ("x,y\n1;5,2\n", 2, "'1;5'"),
        ("x,y\n1,2\n\n1,\u22122\n", 4, "is not a decimal number"),
        ("x\n1\n", 1, "no column named 'y'"),
        ("y\n1\n", 1, "no feature column"),
    ],
)
def test_rejected_with_the_line(tmp_path, content, line, fragment):
    path = write(tmp_path, content)
    with pytest.raises(InputError) as info:
        data.load(path)
    message = str(info.value)
    assert fragment in message
    where = f"{path}:{line}:" if line else f"{path}:"
    assert message.startswith(where), message


def test_invalid_utf8_and_nul(tmp_path):
    with pytest.raises(InputError, match=r":2: not valid UTF-8"):
        data.load(write(tmp_path, b"x,y\n1,\xff\n"))
    with pytest.raises(InputError, match=r":2: NUL byte"):
        data.load(write(tmp_path, b"x,y\n1,\x002\n"))


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        data.load(tmp_path / "nope.csv")
    with pytest.raises(InputError, match="is a directory"):
        data.load(tmp_path)


def test_arrays_are_float64_and_contiguous(tmp_path):
    dataset = data.load(write(tmp_path, "a,y,b\n1,2,3\n4,5,6\n"))
    assert dataset.X.dtype == np.float64 and dataset.X.flags.c_contiguous
    assert dataset.y.flags.c_contiguous


def test_a_row_major_npy_gives_the_numbers_of_the_same_data_in_memory(tmp_path):
    """.npy columns are used in place (strided views of the memory-mapped file); the backends
    still get contiguous arrays, so every number equals the one from the same data given as
    arrays (a strided X would change numpy's summation order)."""
    import gradcmp

    a = np.random.default_rng(0).normal(size=(500, 2))
    np.save(tmp_path / "d.npy", a)
    from_file = gradcmp.compare(str(tmp_path / "d.npy"), backends="native,numpy,torch-grad")
    in_memory = gradcmp.compare(
        (a[:, :1].copy(), a[:, 1].copy()), backends="native,numpy,torch-grad"
    )
    pairs = list(zip(from_file.results, in_memory.results))
    assert len(pairs) == 6
    for x, y in pairs:
        assert (x.loss, x.grads) == (y.loss, y.grads)


def test_integers_beyond_2_53_keep_their_exact_values():
    X = np.array([1, 2, 2**53 + 1, 2**60 + 3], dtype=np.int64)
    report = gradcmp.compare((X, np.arange(4)), params={"theta1": 1}, backends=["native"])
    assert report.reference.rounding["float64"].rounded == 2
    # The as-written reference is for the integers given, not their float64 roundings.
    assert report.reference.as_written.loss != report.reference.by_dtype["float64"].loss
