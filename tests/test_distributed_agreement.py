"""Distributed backends (``ENGINE:N``) agree with the exact reference, rank by rank.

Every world costs seconds (N interpreters importing torch, or JAX compiling), so the worlds
are run few and together: one ``compare`` per problem, several backends each (worlds run one
after another in one gradcmp), every world computing all its dtypes at once; the tests read
the one report. See docs/design.md, "Distributed backends".
"""

from __future__ import annotations

from fractions import Fraction

import pytest
from click.testing import CliRunner

import gradcmp
from gradcmp.backends import parse_backends
from gradcmp.cli import cli
from gradcmp.errors import EXIT_USAGE, UsageError

pytestmark = pytest.mark.usefixtures("no_rank_process_survives")

# A hang must fail the run, not CI's job: far above any world's time here.
SAFETY_TIMEOUT = 300.0

# The engines over 1, 2, 4 and 8 ranks (6 rows: 6 | 3, 3 | 2, 2, 1, 1 | six of 1 and two
# ranks without rows); ``torch-ddp`` alone is 2 ranks. A torch rank costs ~4 s of CPU (torch,
# and the torch._dynamo that DDP imports), so torch runs the worlds each of its paths needs:
# DDP even (2) and uneven with empty ranks (8: loss scales 4/3 and 0), FSDP2 even (2: scalars
# held as shape (1,), dim-0 shards of size 1 over 2 ranks) — and FSDP2 uneven (4) on the mlp
# below. One rank reduces nothing (torch's scale is then 1: DDP's even path); JAX's
# one-device worlds are cheap enough to keep.
SEED_GRID = [
    "torch-ddp",
    "torch-ddp:8",
    "torch-fsdp:2",
    "jax-sharded:1",
    "jax-sharded:2",
    "jax-sharded:4",
    "jax-shardmap:1",
    "jax-shardmap:2",
    "jax-shardmap:4",
    "jax-shardmap:8",
]
SHARDS = {1: [6], 2: [3, 3], 4: [2, 2, 1, 1], 8: [1, 1, 1, 1, 1, 1, 0, 0]}
PADDING = (
    "6 rows do not split evenly over {n} devices: "
    "each block padded to {k} rows with rows of weight 0"
)


def world_size(backend: str) -> int:
    return int(backend.rpartition(":")[2])


@pytest.fixture(scope="module")
def seed_report() -> dict:
    """The bundled seed data (6 rows) on every engine and world size, float32 and float64."""
    report = gradcmp.compare(
        gradcmp.loading.data.bundled_path(),
        backends=SEED_GRID,
        dtypes="float32,float64",
        timeout=SAFETY_TIMEOUT,
    )
    return report.to_dict()


def by_backend(report: dict) -> dict[tuple[str, str], dict]:
    return {(r["backend"], r["dtype"]): r for r in report["results"]}


def test_every_engine_agrees_over_1_to_8_ranks_in_float32_and_float64(seed_report):
    results = by_backend(seed_report)
    names = [b if ":" in b else f"{b}:2" for b in SEED_GRID]
    assert sorted(results) == sorted((b, d) for b in names for d in ("float32", "float64"))
    for (backend, dtype), r in results.items():
        where = f"{backend} {dtype}: {r['status']} {r['verdict']} {r['why']} {r['note']}"
        assert r["status"] == "ok" and r["verdict"] == "agree" and r["why"] == "", where
        assert r["reference"] == "exact", where
        n = world_size(backend)
        assert r["world_size"] == n, where
        # Every rank's gradient, not rank 0's alone, held against the truth.
        assert r["ranks"] == [{"rank": k, "status": "ok", "verdict": "agree"} for k in range(n)]
        # The loss is the full batch's (the ranks' weighted losses added up), not a shard's.
        assert abs(Fraction(r["loss"]) - Fraction(2731, 12)) < Fraction(1, 1000), where
    assert seed_report["verdict"] == "agree" and seed_report["exit_code"] == 0


def test_torch_ddp_alone_means_two_ranks(seed_report):
    assert parse_backends("torch-ddp") == ["torch-ddp:2"]
    assert parse_backends("torch-ddp,torch-ddp:2") == ["torch-ddp:2"]  # the same world
    r = by_backend(seed_report)["torch-ddp:2", "float64"]
    assert (r["world_size"], r["shards"], r["engine"], r["comm"]) == (
        2,
        [3, 3],
        "torch.distributed",
        "gloo",
    )


def test_rows_are_split_contiguously_and_uneven_shards_are_reported(seed_report):
    for (backend, dtype), r in by_backend(seed_report).items():
        n = world_size(backend)
        where = f"{backend} {dtype}"
        assert r["shards"] == SHARDS[n], where
        # jit over an even sharding computes the loss as written: no reduction to choose.
        even_jit = backend.startswith("jax-sharded") and n in (1, 2)
        assert r["reduction"] == (None if even_jit else "mean"), where
        assert r["startup_seconds"] >= 0, where
        padding = PADDING.format(n=n, k=max(SHARDS[n]))
        if backend.startswith("jax") and n in (4, 8):
            # JAX shards only evenly: the padding is said, and it changed nothing above.
            assert r["note"] == padding, where
            assert r["comm"] == "XLA collectives, cpu devices", where
        else:  # torch takes uneven shards as they are; even shards need no padding
            assert r["note"] == "", where


def test_ranks_without_rows_still_take_part(seed_report):
    """8 ranks over 6 rows: ranks 6 and 7 hold none, yet join every reduction (else the others
    wait for them forever) and add exactly nothing."""
    results = by_backend(seed_report)
    for backend in ("torch-ddp:8", "jax-shardmap:8"):
        for dtype in ("float32", "float64"):
            r = results[backend, dtype]
            assert r["shards"] == [1, 1, 1, 1, 1, 1, 0, 0]
            assert [s["status"] for s in r["ranks"]] == ["ok"] * 8
            assert r["verdict"] == "agree"


@pytest.fixture(scope="module")
def mlp_report() -> dict:
    """The mlp — matrices, vectors and a scalar; W1 is 1 × 8, so FSDP2's dim-0 shards leave
    three of four ranks without a row of it — on FSDP2 over uneven rows (2, 2, 1, 1), and on
    uneven JAX shards (the per-row weighted loss through a network)."""
    report = gradcmp.compare(
        gradcmp.loading.data.bundled_path(),
        model="mlp",
        backends=["torch-fsdp:4", "jax-sharded:4"],
        dtypes="float64",
        timeout=SAFETY_TIMEOUT,
    )
    return report.to_dict()


def test_an_mlp_with_scalar_and_matrix_parameters_agrees_on_uneven_shards(mlp_report):
    results = {r["backend"]: r for r in mlp_report["results"]}
    assert set(results) == {"torch-fsdp:4", "jax-sharded:4"}
    for r in results.values():
        where = f"{r['backend']}: {r['status']} {r['verdict']} {r['why']} {r['note']}"
        assert r["status"] == "ok" and r["verdict"] == "agree", where
        assert r["reference"] == "highprec", where
        # The scalar came back a scalar (FSDP2 held it as shape (1,)), the matrix whole.
        assert "b_out" in r["grads"] and "W1[0,7]" in r["grads"], where
        assert [s["status"] for s in r["ranks"]] == ["ok"] * 4, where
        assert (r["shards"], r["reduction"]) == ([2, 2, 1, 1], "mean"), where
    assert results["torch-fsdp:4"]["note"] == ""  # torch takes uneven shards as they are
    assert results["jax-sharded:4"]["note"] == PADDING.format(n=4, k=2)


CENTRED = '''\
"""The squared residuals about the batch's own mean residual: not a mean over rows."""
PARAMS = {"theta0": 0.0, "theta1": [0.0]}


def loss(params, X, y, xp):
    r = params["theta0"] + X @ params["theta1"] - y
    c = r - xp.mean(r)  # each shard's own mean is another
    return xp.mean(c * c) / 2
'''


def test_a_loss_that_is_not_a_mean_or_sum_over_rows_is_skipped_with_the_reason(tmp_path):
    """Split over ranks, a batch statistic becomes another function: the backend is skipped,
    saying why, rather than reported as a disagreement (or agreeing by luck)."""
    path = tmp_path / "centred.py"
    path.write_text(CENTRED)
    report = gradcmp.compare(
        gradcmp.loading.data.bundled_path(),
        loss=path,
        backends=["torch-ddp:2", "jax-shardmap:2"],
        dtypes="float64",
        timeout=SAFETY_TIMEOUT,
    )
    results = {r.backend: r for r in report.results}
    assert set(results) == {"torch-ddp:2", "jax-shardmap:2"}
    for name, r in results.items():
        assert r.status == "skipped", (name, r.status, r.note)
        assert r.note.startswith("loss is neither a mean nor a sum over rows"), (name, r.note)
    assert "(a batch statistic?" in results["torch-ddp:2"].note
    assert "cannot be split over devices" in results["jax-shardmap:2"].note


@pytest.mark.parametrize("backend", ["torch-ddp:0", "torch-ddp:9", "torch-ddp:x", "jax-dist:-1"])
def test_a_world_size_outside_1_to_8_is_a_usage_error(backend):
    result = CliRunner().invoke(cli, ["run", "-b", backend, "--dtype", "float64"])
    assert result.exit_code == EXIT_USAGE, result.output
    lines = result.stderr.splitlines()
    assert lines == [
        f"gradcmp: error: {backend}: the world size must be a whole number from 1 to 8 "
        f"(write {backend.partition(':')[0]}:4)"
    ]


@pytest.mark.parametrize("backend", ["torch-ddp:²", "torch-ddp:"])
def test_a_world_size_that_is_not_a_plain_number_is_a_usage_error(backend):
    # parse_backends, not a run: accepted, "torch-ddp:" would start a world.
    with pytest.raises(UsageError, match="the world size must be a whole number"):
        parse_backends(backend)


def test_a_world_size_is_named_one_way():
    assert parse_backends("torch-ddp:4,torch-ddp:04,torch-ddp") == ["torch-ddp:4", "torch-ddp:2"]


def test_a_loss_whose_value_splits_but_whose_gradient_does_not_is_skipped(tmp_path):
    """At w = 0 every shard's loss is 0, so values split as a mean and as a sum; the gradient
    of a batch statistic splits neither way (the review's false alarm), that of a sum one way."""
    batch = tmp_path / "batch_statistic_at_zero.py"
    batch.write_text(
        'PARAMS = {"w": [0.0]}\n\n\ndef loss(params, X, y, xp):\n'
        '    return xp.mean(X @ params["w"]) * xp.mean(y)\n'
    )
    summed = tmp_path / "sum_at_zero.py"
    summed.write_text(
        'PARAMS = {"w": [0.0]}\n\n\ndef loss(params, X, y, xp):\n'
        '    return xp.sum(y * (X @ params["w"]))\n'
    )
    for path, expected in ((batch, "skipped"), (summed, "ok")):
        report = gradcmp.compare(
            gradcmp.loading.data.bundled_path(),
            loss=path,
            backends=["torch-ddp:2", "jax-sharded:4"],
            dtypes="float64",
            timeout=SAFETY_TIMEOUT,
        )
        for r in report.results:
            assert r.status == expected, (path.name, r.backend, r.note)
            if expected == "ok":
                assert r.verdict == "agree" and r.world["reduction"] == "sum", r.why


PARAMETER_ON_SOME_RANKS = """
PARAMS = {"b": 0.5, "w": [-1.25], "c": 0.3}


def loss(params, X, y, xp):
    r = params["b"] + X @ params["w"] - y
    total = xp.mean(r * r) / 2
    mask = y < 14  # only row 0: c is in rank 0's graph only
    if bool(mask.any()):
        total = total + xp.sum(params["c"] ** 2 * X[mask][:, 0]) / X.shape[0]
    return total
"""


def test_a_parameter_only_some_ranks_use_is_reduced_by_ddp(tmp_path):
    """DDP must be told of unused parameters on every rank alike (the review's case: probed on
    row 0 only, rank 1 never used c and the collectives fell out of step)."""
    path = tmp_path / "parameter_on_some_ranks.py"
    path.write_text(PARAMETER_ON_SOME_RANKS)
    report = gradcmp.compare(
        gradcmp.loading.data.bundled_path(),
        loss=path,
        backends=["torch-ddp:2"],
        dtypes="float64",
        timeout=SAFETY_TIMEOUT,
    )
    (result,) = report.results
    assert (result.status, result.verdict) == ("ok", "agree"), result.note or result.why
