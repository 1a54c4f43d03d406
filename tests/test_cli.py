"""The twinzoo CLI: one-line errors for bad input, `kernel`, `report`, the table."""

import numpy as np
import pytest

from train.cli import format_table, main

TINY = ["train", "--preset", "tiny", "--no-progress", "--wandb-mode", "disabled"]


def _error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("twinzoo: error:")]
    assert len(lines) == 1, err
    return lines[0]


def _write_npz(path, shape=(28, 28, 3), nan=False):
    rng = np.random.RandomState(0)
    train = rng.randint(0, 256, size=(20, *shape)).astype(np.float64)
    if nan:
        train[0, 0, 0, 0] = np.nan
    np.savez(
        path,
        train_images=train,
        train_labels=(np.arange(20) % 2).reshape(-1, 1),
        test_images=rng.randint(0, 256, size=(10, *shape)).astype(np.float64),
        test_labels=(np.arange(10) % 2).reshape(-1, 1),
    )


@pytest.mark.parametrize(
    "extra, named",
    [
        (["--dataset", "imagenet"], "'imagenet'"),
        (["--ensemble-size", "0"], "`ensemble_size` (=0)"),
        (["--learning-rate", "-0.1"], "`learning_rate` (=-0.1)"),
        (["--model", "resnet"], "'resnet'"),
        (["--preset", "huge"], "'huge'"),
        (["--steps", "0"], "`steps` (=0)"),
    ],
)
def test_bad_option_one_line_error(tmp_path, capsys, extra, named):
    code = main([*TINY, "--out", str(tmp_path), *extra])

    assert code == 2
    assert named in _error_line(capsys)


def test_missing_data_folder_named(tmp_path, capsys):
    missing = tmp_path / "no-such-folder"
    args = ["--dataset", "nct_crc", "--data-path", str(missing), "--out", str(tmp_path)]
    code = main([*TINY, *args])

    assert code == 2
    assert str(missing) in _error_line(capsys)


def test_nan_in_data_named(tmp_path, capsys):
    path = tmp_path / "pathmnist.npz"
    _write_npz(path, nan=True)
    args = ["--dataset", "pathmnist", "--data-path", str(path), "--n-train", "20"]
    code = main([*TINY, *args, "--n-test", "4", "--out", str(tmp_path)])

    assert code == 2
    assert "1 NaN" in _error_line(capsys)


def test_wrong_image_shape_named(tmp_path, capsys):
    path = tmp_path / "wide.npz"
    _write_npz(path, shape=(28, 20, 3))
    args = ["--dataset", "pathmnist", "--data-path", str(path), "--image-size", "0"]
    code = main(
        [*TINY, *args, "--model", "c4_cnn", "--n-test", "4", "--out", str(tmp_path)]
    )

    assert code == 2
    line = _error_line(capsys)
    assert "'c4_cnn'" in line
    assert "28x20" in line


def test_kernel_command_writes_npz(tmp_path, capsys):
    output = tmp_path / "kernel.npz"
    args = ["kernel", "--model", "mlp", "--widths", "16", "--n-train", "10"]
    code = main([*args, "--n-test", "6", "--image-size", "7", "--output", str(output)])

    assert code == 0
    with np.load(output) as kernel:
        assert kernel["train_train"].shape == (10, 10)
        assert kernel["test_train"].shape == (6, 10)
        assert kernel["test_rotated_train"].shape == (6, 10)
        np.testing.assert_allclose(
            kernel["train_train"], kernel["train_train"].T, rtol=1e-10
        )
        assert np.all(np.linalg.eigvalsh(kernel["train_train"]) > -1e-8)


def test_train_then_report(tmp_path, capsys):
    out = tmp_path / "runs"
    code = main(
        [
            *TINY,
            "--steps",
            "10",
            "--log-every",
            "5",
            "--checkpoint-every",
            "5",
            "--out",
            str(out),
        ]
    )
    printed = capsys.readouterr().out

    assert code == 0
    assert "mlp      upright" in printed
    assert "mlp      rotated" in printed

    code = main(["report", str(out / "tiny")])
    assert code == 0
    assert (out / "tiny" / "mlp" / "plots" / "test.png").exists()


def test_report_missing_folder(tmp_path, capsys):
    code = main(["report", str(tmp_path / "nothing")])

    assert code == 2
    assert "nothing" in _error_line(capsys)


def test_table_lists_models_and_test_sets():
    results = {
        "c4_cnn": {
            "test/accuracy/finite_mean": 0.8,
            "test/accuracy/twin": 0.85,
            "test_rotated/accuracy/finite_mean": 0.79,
            "test_rotated/accuracy/twin": 0.85,
        },
        "cnn": {"test/accuracy/finite_mean": 0.7, "test/accuracy/twin": 0.75},
    }
    lines = format_table(results).splitlines()

    assert "c4_cnn   upright     0.800    0.850" in lines
    assert "c4_cnn   rotated     0.790    0.850" in lines
    assert "cnn      upright     0.700    0.750" in lines
    assert not any(line.startswith("cnn      rotated") for line in lines)


def test_default_train_is_main_preset():
    from train.cli import build_parser, experiment_configs

    experiment, configs = experiment_configs(build_parser().parse_args(["train"]))

    assert experiment == "main"
    assert [c.model for c in configs] == ["c4_cnn", "cnn"]
    assert configs[0].widths == tuple(w // 4 for w in configs[1].widths)
    assert all(c.dataset == "mnist5k" and c.wandb_mode == "offline" for c in configs)


def test_explicit_widths_not_scaled():
    from train.cli import build_parser, experiment_configs

    args = build_parser().parse_args(["train", "--model", "c4_cnn", "--widths", "16"])
    _, configs = experiment_configs(args)

    assert configs[0].widths == (16,)


@pytest.mark.slow
def test_main_job_prints_table(tmp_path):
    """The default `twinzoo train` (minutes on 2 cores): both models, both test sets."""
    import subprocess
    import sys

    command = [sys.executable, "-m", "train.cli", "train", "--no-progress"]
    command += ["--out", str(tmp_path / "runs"), "--cache-dir", str(tmp_path / "cache")]
    result = subprocess.run(command, capture_output=True, text=True, check=False)

    assert result.returncode == 0, result.stderr
    for model in ("c4_cnn", "cnn"):
        for test_set in ("upright", "rotated"):
            assert f"{model:<8} {test_set:<8}" in result.stdout


@pytest.mark.parametrize("width", ["0", "-3"])
def test_train_rejects_nonpositive_width(tmp_path, capsys, width):
    code = main([*TINY, "--out", str(tmp_path), "--widths", width])

    assert code == 2
    assert f"`--widths` contains {width}" in _error_line(capsys)


KERNEL = ["kernel", "--n-train", "8", "--n-test", "8", "--no-progress"]


def test_kernel_rejects_nonpositive_width(tmp_path, capsys):
    output = tmp_path / "x.npz"
    code = main([*KERNEL, "--model", "mlp", "--widths", "0", "--output", str(output)])

    assert code == 2
    assert "`--widths` contains 0" in _error_line(capsys)


def test_kernel_rejects_unknown_model(tmp_path, capsys):
    output = tmp_path / "x.npz"
    # The data file is missing too, and the model must be checked first.
    data = ["--dataset", "pathmnist", "--data-path", str(tmp_path / "no.npz")]
    code = main([*KERNEL, *data, "--model", "resnet", "--output", str(output)])

    assert code == 2
    assert "'resnet'" in _error_line(capsys)


def test_corrupt_pathmnist_named(tmp_path, capsys):
    path = tmp_path / "x.npz"
    path.write_text("not an archive\n")
    args = ["--dataset", "pathmnist", "--data-path", str(path), "--out", str(tmp_path)]
    code = main([*TINY, *args])

    assert code == 2
    line = _error_line(capsys)
    assert str(path) in line
    assert "not a valid PathMNIST .npz" in line
    assert "allow_pickle" not in line


def test_pathmnist_directory_named(tmp_path, capsys):
    args = ["--dataset", "pathmnist", "--data-path", str(tmp_path)]
    code = main([*TINY, *args, "--out", str(tmp_path / "runs")])

    assert code == 2
    line = _error_line(capsys)
    assert "is a directory" in line
    assert "not found" not in line


def test_data_path_rejected_for_mnist5k(tmp_path, capsys):
    args = ["--dataset", "mnist5k", "--data-path", str(tmp_path)]
    code = main([*TINY, *args, "--out", str(tmp_path / "runs")])

    assert code == 2
    line = _error_line(capsys)
    assert "'mnist5k'" in line
    assert "nct_crc, pathmnist" in line


def test_unreadable_checkpoint_suggests_restart(tmp_path, capsys):
    out = tmp_path / "runs"
    args = [*TINY, "--steps", "10", "--log-every", "5", "--checkpoint-every", "5"]
    assert main([*args, "--out", str(out)]) == 0
    run_dir = out / "tiny" / "mlp"
    (run_dir / "final.json").unlink()
    checkpoint = max((run_dir / "checkpoints").glob("step-*.eqx"))
    checkpoint.write_bytes(checkpoint.read_bytes()[:10])
    capsys.readouterr()

    code = main([*args, "--out", str(out)])

    assert code == 2
    line = _error_line(capsys)
    assert str(checkpoint) in line
    assert "--restart" in line


def test_wandb_mode_change_reuses_run(tmp_path, capsys):
    out = tmp_path / "runs"
    args = [*TINY, "--steps", "5", "--log-every", "5", "--checkpoint-every", "5"]
    assert main([*args, "--out", str(out)]) == 0

    code = main([*args, "--out", str(out), "--wandb-mode", "offline"])

    assert code == 0
    assert "different config" not in capsys.readouterr().err


def test_kernel_output_gets_npz_suffix(tmp_path, caplog):
    output = tmp_path / "xk"
    args = [*KERNEL, "--model", "mlp", "--widths", "8", "--image-size", "0"]
    with caplog.at_level("INFO", logger="train.cli"):
        code = main([*args, "--output", str(output)])

    assert code == 0
    assert (tmp_path / "xk.npz").is_file()
    assert f"Wrote {output}.npz" in caplog.text


def test_kernel_output_directory_rejected(tmp_path, capsys):
    code = main([*KERNEL, "--model", "mlp", "--output", str(tmp_path)])

    assert code == 2
    line = _error_line(capsys)
    assert str(tmp_path) in line
    assert "is a directory" in line


def test_train_help_lists_presets(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    printed = " ".join(capsys.readouterr().out.split())

    assert "tiny, " in printed or ", tiny" in printed
    assert "(default: main)" in printed
    assert "learning rate per optimizer step" in printed
    assert "0 keeps the original size" in printed
