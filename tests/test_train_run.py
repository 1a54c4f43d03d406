"""End-to-end tiny runs: metrics of both sides, offline W&B files, reuse, report."""

import dataclasses
import json

import numpy as np
import pytest

from train.errors import UsageError
from train.presets import get_preset
from train.report import report_run
from train.runner import logged_steps, run_training
from train.wandb_files import find_run_files, read_run

TINY = dataclasses.replace(
    get_preset("tiny").config, steps=20, log_every=5, checkpoint_every=10
)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "tiny" / "mlp"
    final = run_training(TINY, run_dir, "tiny", progress=False)
    return run_dir, final


def test_final_metrics_have_both_sides(tiny_run):
    _, final = tiny_run
    for split in ("train", "test", "test_rotated"):
        for side in ("finite_mean", "twin", "members_mean", "members_std"):
            assert f"{split}/accuracy/{side}" in final
            assert f"{split}/loss/{side}" in final
    assert "off_manifold/twin_distance/rms" in final
    assert "test/invariance_error/finite_mean" in final


def test_metrics_file_has_every_logged_step(tiny_run):
    run_dir, _ = tiny_run
    rows = [
        json.loads(line)
        for line in (run_dir / "metrics.jsonl").read_text().splitlines()
    ]

    assert [row["step"] for row in rows] == [0, 5, 10, 15, 20]
    assert [row["train_time"] for row in rows] == [
        TINY.learning_rate * s for s in (0, 5, 10, 15, 20)
    ]
    assert len(rows[-1]["members"]["test/accuracy"]) == TINY.ensemble_size


def test_twin_starts_at_zero(tiny_run):
    run_dir, _ = tiny_run
    first = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[0])

    # The infinite ensemble's mean output is 0 before training: loss = 0.5 * mean(y^2).
    assert first["test/loss/twin"] == pytest.approx(0.5 / 10)


def test_wandb_file_has_finite_and_twin_per_step(tiny_run):
    run_dir, _ = tiny_run
    files = find_run_files(run_dir / "wandb")
    assert len(files) == 1
    run = read_run(files[0])

    scalar_rows = [row for row in run["history"] if "test/accuracy/twin" in row]
    assert [row["_step"] for row in scalar_rows] == [0, 5, 10, 15, 20]
    for row in scalar_rows:
        for split in ("train", "test", "test_rotated"):
            assert f"{split}/accuracy/finite_mean" in row
            assert f"{split}/accuracy/twin" in row
            assert f"{split}/loss/finite_mean" in row
            assert f"{split}/loss/twin" in row
        assert "train_time" in row


def test_wandb_file_has_config_group_and_plots(tiny_run):
    run_dir, _ = tiny_run
    run = read_run(find_run_files(run_dir / "wandb")[0])

    assert run["run"]["group"] == "tiny"
    assert run["run"]["name"] == "mlp"
    assert run["config"]["learning_rate"] == TINY.learning_rate
    assert run["config"]["ensemble_size"] == TINY.ensemble_size
    logged = set().union(*run["history"])
    assert any(key.startswith("plots/test") for key in logged)
    assert any(key.startswith("compare/test/accuracy") for key in logged)


def test_finished_run_is_reused(tiny_run):
    run_dir, final = tiny_run
    again = run_training(TINY, run_dir, "tiny", progress=False)

    assert again == final
    assert len(find_run_files(run_dir / "wandb")) == 1


def test_changed_config_rejected(tiny_run):
    run_dir, _ = tiny_run
    changed = dataclasses.replace(TINY, learning_rate=0.5)
    with pytest.raises(UsageError, match="learning_rate: 1.0 -> 0.5"):
        run_training(changed, run_dir, "tiny", progress=False)


def test_report_writes_figures(tiny_run):
    run_dir, _ = tiny_run
    paths = report_run(run_dir)

    assert {p.name for p in paths} >= {
        "test.png",
        "test_rotated.png",
        "twin_distance.png",
    }
    assert all(p.stat().st_size > 0 for p in paths)


def test_logged_steps_end_on_last_step():
    config = dataclasses.replace(TINY, steps=12, log_every=5, checkpoint_every=5)
    assert logged_steps(config) == [0, 5, 10, 12]


def test_augmented_run_trains_on_orbit(tmp_path):
    config = dataclasses.replace(
        TINY, augment=True, steps=5, log_every=5, checkpoint_every=5
    )
    final = run_training(config, tmp_path / "aug", "aug", progress=False)

    with np.load(tmp_path / "aug" / "kernels.npz") as kernels:
        assert kernels["ntk:train:train"].shape == (4 * TINY.n_train, 4 * TINY.n_train)
    assert np.isfinite(final["test/accuracy/twin"])


def test_rows_before_first_checkpoint_redone(tmp_path):
    config = dataclasses.replace(TINY, steps=10, log_every=5, checkpoint_every=10)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    # A run killed after logging step 0 but before its first checkpoint.
    (run_dir / "metrics.jsonl").write_text(json.dumps({"step": 0}) + "\n")
    run_training(config, run_dir, "tiny", progress=False)

    rows = [
        json.loads(line)
        for line in (run_dir / "metrics.jsonl").read_text().splitlines()
    ]
    assert [row["step"] for row in rows] == [0, 5, 10]
