"""The `twinzoo` command line: `train`, `kernel` and `report`.

`twinzoo train` without arguments runs the `main` preset offline and prints
the final test accuracy of finite ensembles and twins. Invalid input ends
with a one-line error on stderr and exit code 2.
"""

import argparse
import dataclasses
import json
import logging
import sys
import time
from pathlib import Path

from train.errors import UsageError

logger = logging.getLogger("train.cli")

DEFAULT_OUT = "runs"
DEFAULT_CACHE = ".cache/twinzoo"

# Model options of `kernel` when left out; data options default to DataSpec.
KERNEL_WIDTHS = (64, 64)
KERNEL_ACTIVATION = "relu"
KERNEL_BATCH_SIZE = 32

# Options of `train` that override fields of the preset's TrainConfig.
OVERRIDES = (
    "widths", "activation", "ensemble_size", "steps", "learning_rate", "optimizer", "momentum",
    "batch_size", "augment", "group", "seed", "dataset", "data_path", "n_train",
    "n_test", "image_size", "n_off_manifold", "log_every", "checkpoint_every",
    "kernel_batch_size", "diag_reg", "wandb_mode", "wandb_project",
)  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    from train.data import DataSpec
    from train.presets import PRESETS

    data = DataSpec()
    parser = argparse.ArgumentParser(
        prog="twinzoo",
        description="Train finite ensembles of zoo models next to their infinite-width twins.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser(
        "train",
        help="train ensembles and twins, log to W&B",
        description="Train ensembles and twins. Options left out take the "
        "preset's value.",
        epilog=_describe_presets(PRESETS),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.add_argument(
        "--preset",
        default="main",
        help=f"named experiment: {', '.join(PRESETS)} (default: %(default)s)",
    )
    train.add_argument(
        "--model", nargs="+", help="models to train: mlp, cnn, c4_cnn, d4_cnn"
    )
    train.add_argument(
        "--experiment", help="experiment name and W&B group (default: the preset)"
    )
    _add_model_options(train)
    train.add_argument("--ensemble-size", type=int, help="number of members M")
    train.add_argument("--steps", type=int, help="training steps")
    train.add_argument(
        "--learning-rate",
        type=float,
        help="learning rate per optimizer step; the twin's time is t = learning rate x steps",
    )
    train.add_argument("--optimizer", help="sgd (gradient descent), momentum or adam")
    train.add_argument(
        "--momentum", type=float, help="momentum of the momentum optimizer"
    )
    train.add_argument(
        "--batch-size", type=int, help="minibatch size (default: full batch)"
    )
    train.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                       help="train on every training point under every group element")  # fmt: skip
    train.add_argument(
        "--group", help="group for augmentation and invariance: C4 or D4"
    )
    train.add_argument(
        "--seed", type=int, help="PRNG seed of initialisation and batches"
    )
    train.add_argument(
        "--n-off-manifold", type=int, help="number of Gaussian noise inputs"
    )
    train.add_argument("--log-every", type=int, help="steps between logged metrics")
    train.add_argument("--checkpoint-every", type=int, help="steps between checkpoints")
    train.add_argument(
        "--diag-reg", type=float, help="diagonal regulariser of the kernel solve"
    )
    train.add_argument(
        "--wandb-mode",
        help="offline (default), online or disabled; not part of the run's config",
    )
    train.add_argument("--wandb-project", help="W&B project name")
    train.add_argument(
        "--out",
        default=DEFAULT_OUT,
        help="folder for run folders (default: %(default)s)",
    )
    train.add_argument(
        "--restart", action="store_true", help="discard checkpoints and start over"
    )
    _add_common_options(train)

    kernel = commands.add_parser(
        "kernel",
        help="compute a model's twin kernel on a data set",
        description="Compute a model's twin kernel. Defaults: widths "
        f"{' '.join(map(str, KERNEL_WIDTHS))}, activation {KERNEL_ACTIVATION}, "
        f"data set {data.name}, {data.n_train} training and {data.n_test} test "
        f"points, {data.image_size} x {data.image_size} images, kernel blocks of "
        f"{KERNEL_BATCH_SIZE}.",
    )
    kernel.add_argument(
        "--model",
        default="cnn",
        help="mlp, cnn, c4_cnn or d4_cnn (default: %(default)s)",
    )
    _add_model_options(kernel)
    kernel.add_argument(
        "--get",
        default="ntk",
        choices=("ntk", "nngp"),
        help="which kernel (default: %(default)s)",
    )
    kernel.add_argument(
        "--output",
        required=True,
        help="path of the .npz file to write; .npz is appended when missing",
    )
    _add_common_options(kernel)

    report = commands.add_parser("report", help="draw figures of a finished run")
    report.add_argument("run_dir", help="a model's run folder or an experiment folder")
    return parser


def _describe_presets(presets: dict) -> str:
    """Return the `train --help` epilog: each preset's models and main values."""
    from train.presets import GROUP_WIDTH_DIVISOR

    lines = ["presets:"]
    for name, preset in presets.items():
        config = preset.config
        lines.append(f"  {name}: {preset.description}")
        widths = " ".join(map(str, config.widths))
        lines.append(
            f"    models {' '.join(preset.models)}, widths {widths}, "
            f"{config.activation}, {config.ensemble_size} members,"
        )
        lines.append(
            f"    {config.steps} steps at learning rate {config.learning_rate:g}, "
            f"{config.n_train} {config.dataset} training points"
        )
    divisors = ", ".join(f"{m} 1/{d}" for m, d in GROUP_WIDTH_DIVISOR.items())
    lines.append(f"Group models get a fraction of the preset's widths ({divisors})")
    lines.append("unless `--widths` is given.")
    return "\n".join(lines)


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--widths", type=int, nargs="+", help="hidden widths (channels)"
    )
    parser.add_argument("--activation", help="relu, erf or gelu")
    parser.add_argument("--dataset", help="mnist5k (offline), mnist, fashion_mnist, cifar10, nct_crc, pathmnist")  # fmt: skip
    parser.add_argument("--data-path", help="data folder or file (tfds data dir, NCT-CRC folder, PathMNIST .npz)")  # fmt: skip
    parser.add_argument("--n-train", type=int, help="number of training points")
    parser.add_argument("--n-test", type=int, help="number of test points")
    parser.add_argument(
        "--image-size",
        type=int,
        help="side in pixels after down-scaling; 0 keeps the original size",
    )
    parser.add_argument(
        "--kernel-batch-size", type=int, help="block size of kernel computation"
    )


def _add_common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cache-dir",
        default=DEFAULT_CACHE,
        help="cache of prepared data (default: %(default)s)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.captureWarnings(True)
    # jax reports every accelerator backend it fails to find at INFO level.
    logging.getLogger("jax").setLevel(logging.WARNING)
    try:
        if args.command == "train":
            command_train(args)
        elif args.command == "kernel":
            command_kernel(args)
        else:
            command_report(args)
    except UsageError as error:
        logger.debug("Invalid input", exc_info=True)
        print(f"twinzoo: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        logger.error(
            "Interrupted; rerun the same command to resume from the last checkpoint"
        )
        return 130
    return 0


def check_widths(widths: list[int] | None) -> None:
    """Raise a UsageError for a `--widths` value that is not a positive integer.

    Runs before presets scale group widths down, so 0 never becomes width 1.
    """
    for width in widths or ():
        if width <= 0:
            raise UsageError(
                f"`--widths` contains {width}; pass positive integers, e.g. `--widths 32 32`."
            )


def experiment_configs(args: argparse.Namespace):
    """Return (experiment name, [TrainConfig per model]) from the preset and options."""
    from train.models import available_models
    from train.presets import get_preset, model_config

    check_widths(args.widths)
    preset = get_preset(args.preset)
    overrides = {}
    for name in OVERRIDES:
        value = getattr(args, name, None)
        if value is None:
            continue
        if name == "widths":
            value = tuple(value)
        if name == "image_size" and value == 0:
            value = None
        overrides[name] = value
    base = dataclasses.replace(preset.config, **overrides)

    models = list(args.model) if args.model else list(preset.models)
    if not args.model:
        missing = [m for m in models if m not in available_models()]
        for model in missing:
            logger.warning("Skipping %s: zoo.%s is not in this checkout", model, model)
        models = [m for m in models if m not in missing]
    scale = args.widths is None
    configs = [model_config(base, model, scale_group_widths=scale) for model in models]
    return args.experiment or args.preset, configs


def command_train(args: argparse.Namespace) -> None:
    from train.config import validate
    from train.runner import run_training

    experiment, configs = experiment_configs(args)
    for config in configs:
        validate(config)

    results = {}
    started = time.perf_counter()
    for config in configs:
        run_dir = Path(args.out) / experiment / config.model
        results[config.model] = run_training(
            config,
            run_dir,
            experiment,
            cache_dir=Path(args.cache_dir),
            progress=not args.no_progress,
            restart=args.restart,
        )
    elapsed = time.perf_counter() - started
    print(format_table(results))
    print(
        f"{len(results)} runs in {elapsed:.0f} s; run folders under {Path(args.out) / experiment}"
    )


def format_table(results: dict[str, dict]) -> str:
    """Return the final test accuracy table: finite ensemble vs twin, per test set."""
    columns = [("test", "upright"), ("test_rotated", "rotated")]
    header = f"{'model':<8} {'test set':<8} {'finite':>8} {'twin':>8}"
    lines = [
        "final test accuracy (finite ensemble mean vs twin)",
        header,
        "-" * len(header),
    ]
    for model, final in results.items():
        for split, label in columns:
            finite = final.get(f"{split}/accuracy/finite_mean")
            twin = final.get(f"{split}/accuracy/twin")
            if finite is None or twin is None:
                continue
            lines.append(f"{model:<8} {label:<8} {finite:>8.3f} {twin:>8.3f}")
    return "\n".join(lines)


def command_kernel(args: argparse.Namespace) -> None:
    import jax
    import numpy as np

    import twins
    from train.data import DataSpec, load_dataset
    from train.models import MODELS, build_model, check_model_input, model_inputs
    from train.predictor import compute_kernel

    if args.model not in MODELS:
        raise UsageError(
            f"Unknown model {args.model!r}; choose one of {', '.join(MODELS)}."
        )
    check_widths(args.widths)
    output = kernel_output_path(args.output)

    spec = DataSpec()
    fields = {
        k: getattr(args, k) for k in ("n_train", "n_test", "image_size", "data_path")
    }
    spec = dataclasses.replace(
        spec, **{k: v for k, v in fields.items() if v is not None}
    )
    if args.image_size == 0:
        spec = dataclasses.replace(spec, image_size=None)
    if args.dataset is not None:
        spec = dataclasses.replace(spec, name=args.dataset)
    batch_size = args.kernel_batch_size or KERNEL_BATCH_SIZE
    if batch_size <= 0:
        raise UsageError(f"`--kernel-batch-size` (={batch_size}) must be positive.")

    dataset = load_dataset(spec, Path(args.cache_dir))
    check_model_input(args.model, dataset.example_shape)
    widths = tuple(args.widths or KERNEL_WIDTHS)
    model = build_model(
        args.model,
        dataset.example_shape,
        widths,
        dataset.num_classes,
        activation=args.activation or KERNEL_ACTIVATION,
        key=jax.random.PRNGKey(0),
    )
    kernel_fn = twins.derive(model).kernel_fn
    progress = not args.no_progress

    logger.info("Computing the %s of %s on %s", args.get, args.model, spec.name)
    arrays = {"train_labels": dataset.train.labels}
    x_train = model_inputs(args.model, dataset.train.x)
    arrays["train_train"] = compute_kernel(
        kernel_fn,
        x_train,
        None,
        args.get,
        batch_size,
        "train x train",
        progress,
    )
    for name, split in dataset.tests.items():
        arrays[f"{name}_train"] = compute_kernel(
            kernel_fn,
            model_inputs(args.model, split.x),
            x_train,
            args.get,
            batch_size,
            f"{name} x train",
            progress,
        )
        arrays[f"{name}_labels"] = split.labels
    meta = {
        "model": args.model,
        "widths": list(widths),
        "get": args.get,
        **dataclasses.asdict(spec),
    }
    arrays["meta"] = np.asarray(json.dumps(meta))

    output.parent.mkdir(parents=True, exist_ok=True)
    np.savez(output, **arrays)
    logger.info("Wrote %s with %s", output, ", ".join(sorted(arrays)))


def kernel_output_path(output: str) -> Path:
    """Return the file `np.savez` writes for `--output`: `.npz` appended when missing."""
    path = Path(output)
    if path.is_dir():
        raise UsageError(
            f"`--output` {path} is a directory; pass a file path such as {path / 'kernel.npz'}."
        )
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
        if path.is_dir():
            raise UsageError(
                f"`--output` would write {path}, which is a directory; pass another file path."
            )
    return path


def command_report(args: argparse.Namespace) -> None:
    from train.report import report_run

    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise UsageError(
            f"Run folder {run_dir} not found; pass a folder that `twinzoo train` wrote."
        )
    paths = report_run(run_dir)
    if not paths:
        raise UsageError(
            f"No metrics.jsonl under {run_dir}; is it a twinzoo run folder?"
        )
    for path in paths:
        print(path)


if __name__ == "__main__":
    sys.exit(main())
