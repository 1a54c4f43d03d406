"""One training run: a finite ensemble and its twin, logged at the same times.

The run folder `<out>/<experiment>/<model>` contains

- `config.json`: the `TrainConfig`; a rerun with a different one is rejected,
- `kernels.npz`: the twin's kernel blocks, reused on resume,
- `checkpoints/`: ensemble and optimiser state every `checkpoint_every` steps,
- `metrics.jsonl`: one JSON object per logged step (finite, twin, members),
- `final.json`: the metrics of the last step, written when the run ends,
- `plots/` and `wandb/`: figures and the W&B run.

Rerunning the same command resumes from the last checkpoint; a finished run
returns its final metrics without training again.
"""

import json
import logging
import os
import shutil
import warnings
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

import twins
from train.checkpoint import load_checkpoint, save_checkpoint
from train.config import TrainConfig, validate
from train.data import Dataset, check_finite, load_dataset
from train.ensemble import (
    Trainer,
    init_ensemble,
    make_optimizer,
    orbit_augment,
    predict_members,
)
from train.errors import UsageError
from train.logging_wandb import WandbLogger
from train.metrics import invariance_error, member_values, split_metrics
from train.models import build_model, check_model_input, model_inputs
from train.predictor import KernelStore, max_learning_rate, twin_predictions
from train.report import close_figures, make_figures, read_history, save_figures

logger = logging.getLogger(__name__)

RUN_FILES = (
    "config.json",
    "kernels.npz",
    "checkpoints",
    "metrics.jsonl",
    "final.json",
    "plots",
)


def logged_steps(config: TrainConfig) -> list[int]:
    """Return the steps at which metrics are logged: 0, log_every, ..., steps."""
    steps = list(range(0, config.steps + 1, config.log_every))
    if steps[-1] != config.steps:
        steps.append(config.steps)
    return steps


# Fields that change only where metrics are sent, not the run's results, so a
# rerun may change them without `--restart`.
LOGGING_FIELDS = ("wandb_mode", "wandb_project")


def prepare_run_folder(run_dir: Path, config: TrainConfig, restart: bool) -> None:
    """Create the run folder, or check that an existing one has the same config."""
    config_path = run_dir / "config.json"
    if restart:
        for name in RUN_FILES:
            path = run_dir / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    if config_path.exists():
        stored = json.loads(config_path.read_text())
        current = config.to_json()
        changed = sorted(
            k
            for k in current
            if k not in LOGGING_FIELDS and stored.get(k) != current[k]
        )
        if changed:
            details = ", ".join(
                f"{k}: {stored.get(k)!r} -> {current[k]!r}" for k in changed
            )
            raise UsageError(
                f"Run folder {run_dir} contains a run with a different config "
                f"({details}); pass `--restart` to start over or `--out` for a new folder."
            )
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    temporary = config_path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(config.to_json(), indent=2, sort_keys=True))
    os.replace(temporary, config_path)


def evaluation_inputs(config: TrainConfig, dataset: Dataset) -> dict[str, np.ndarray]:
    """Return the inputs metrics are computed on, including off-manifold noise.

    Off-manifold inputs are standard Gaussian images, the scale of the
    standardised data but far from any digit.
    """
    inputs = {"train": dataset.train.x}
    inputs.update({name: split.x for name, split in dataset.tests.items()})
    if config.n_off_manifold:
        rng = np.random.RandomState(config.seed + 12345)
        shape = (config.n_off_manifold, *dataset.example_shape)
        inputs["off_manifold"] = rng.standard_normal(shape).astype(np.float32)
    return inputs


def run_training(
    config: TrainConfig,
    run_dir: Path,
    experiment: str,
    *,
    cache_dir: Path | None = None,
    progress: bool = True,
    restart: bool = False,
) -> dict:
    """Train the ensemble, compute the twin at every logged step, log both.

    Returns the final step's metrics (the contents of `final.json`).
    """
    validate(config)
    dataset = load_dataset(config.data_spec(), cache_dir)
    check_model_input(config.model, dataset.example_shape)
    for name, split in [("train", dataset.train), *dataset.tests.items()]:
        check_finite(split.x, f"{config.dataset} {name} inputs")
    height, width = dataset.example_shape[1:]
    if config.augment and height != width:
        raise UsageError(
            f"`augment` rotates images and needs square ones, got {height}x{width}; "
            "pass a square `--image-size`."
        )
    prepare_run_folder(run_dir, config, restart)

    final_path = run_dir / "final.json"
    if final_path.exists():
        logger.info("Run %s is finished already; reusing %s", run_dir, final_path)
        return json.loads(final_path.read_text())

    logger.info(
        "Starting %s: %d members, widths %s, %d steps at lr %g on %s (%d train points)",
        config.model, config.ensemble_size, list(config.widths), config.steps,
        config.learning_rate, config.dataset, len(dataset.train.x),
    )  # fmt: skip
    inputs = evaluation_inputs(config, dataset)
    x_fit, y_fit = dataset.train.x, dataset.train.y
    if config.augment:
        x_fit, y_fit = orbit_augment(x_fit, y_fit, config.group)
        logger.info(
            "Training on the full %s orbit: %d points", config.group, len(x_fit)
        )

    steps = logged_steps(config)
    twin = compute_twin(config, dataset, inputs, x_fit, y_fit, steps, run_dir, progress)

    trainer, state = build_trainer(config, dataset, x_fit, y_fit)

    start, history = 0, []
    checkpoint = load_checkpoint(run_dir / "checkpoints", state)
    if checkpoint is not None:
        start, state, _ = checkpoint
        history = read_history(run_dir / "metrics.jsonl", last_step=start)
        logger.info("Resuming %s from the checkpoint at step %d", run_dir, start)
    # Rows logged after the checkpoint (or before the first one) are redone.
    _rewrite_history(run_dir / "metrics.jsonl", history)

    wandb_logger = WandbLogger(
        config.wandb_mode,
        run_dir,
        config.wandb_project,
        group=experiment,
        name=config.model,
        config=dict(config.to_json(), experiment=experiment, resumed_from_step=start),
    )
    try:
        for row in history:
            wandb_logger.log(row["step"], _scalars(row))
        history = _train_loop(
            config, trainer, state, start, steps, dataset, inputs, twin,
            history, run_dir, wandb_logger, progress,
        )  # fmt: skip
        final = _scalars(history[-1])
        _finish(run_dir, final, history, config, wandb_logger)
    finally:
        wandb_logger.finish()
    return final


def build_trainer(
    config: TrainConfig, dataset: Dataset, x_fit: np.ndarray, y_fit: np.ndarray
) -> tuple[Trainer, tuple]:
    """Initialise the ensemble and its optimiser; return the trainer and the state."""

    def build(key):
        return build_model(
            config.model,
            dataset.example_shape,
            config.widths,
            dataset.num_classes,
            activation=config.activation,
            W_std=config.W_std,
            b_std=config.b_std,
            key=key,
        )

    init_key, batch_key = jax.random.split(jax.random.PRNGKey(config.seed))
    params, static = eqx.partition(
        init_ensemble(build, config.ensemble_size, init_key), eqx.is_inexact_array
    )
    trainer = Trainer(
        static,
        make_optimizer(config.optimizer, config.learning_rate, config.momentum),
        jnp.asarray(model_inputs(config.model, x_fit)),
        jnp.asarray(y_fit),
        config.batch_size,
        batch_key,
    )
    state = (params, trainer.init_state(params))
    return trainer, state


def compute_twin(
    config: TrainConfig,
    dataset: Dataset,
    inputs: dict[str, np.ndarray],
    x_fit: np.ndarray,
    y_fit: np.ndarray,
    steps: list[int],
    run_dir: Path,
    progress: bool,
) -> dict[str, np.ndarray]:
    """Return the twin's mean outputs (T, N, K) on every evaluation input."""
    member = build_model(
        config.model,
        dataset.example_shape,
        config.widths,
        dataset.num_classes,
        activation=config.activation,
        W_std=config.W_std,
        b_std=config.b_std,
        key=jax.random.PRNGKey(0),
    )
    kernel_fn = twins.derive(member).kernel_fn
    store_inputs = {name: model_inputs(config.model, x) for name, x in inputs.items()}
    store_inputs["train"] = model_inputs(config.model, x_fit)
    store = KernelStore(
        kernel_fn,
        store_inputs,
        config.kernel_batch_size,
        run_dir / "kernels.npz",
        progress,
    )

    if config.optimizer == "sgd":
        limit = max_learning_rate(store, y_fit)
        if config.learning_rate > limit:
            warnings.warn(
                f"`learning_rate` (={config.learning_rate}) exceeds {limit:.4g}, the "
                "largest stable gradient-descent step for the twin's NTK; the finite "
                "ensemble is likely to diverge.",
                stacklevel=2,
            )
    if config.optimizer == "adam":
        warnings.warn(
            "The twin predictor describes gradient flow; with Adam its curves are "
            "shown at t = lr x steps for reference only.",
            stacklevel=2,
        )

    times = np.asarray([config.training_time(step) for step in steps])
    names = [name for name in store_inputs if name != "train"]
    outputs = twin_predictions(
        store, y_fit, times, ["train", *names], diag_reg=config.diag_reg
    )
    # With augmentation the fit set is element-major, so its first N points
    # are the original training points.
    outputs["train"] = outputs["train"][:, : len(dataset.train.x)]
    return outputs


def _train_loop(
    config, trainer, state, start, steps, dataset, inputs, twin, history, run_dir,
    wandb_logger, progress,
):  # fmt: skip
    params, opt_state = state
    metrics_path = run_dir / "metrics.jsonl"
    current = start
    bar = tqdm(
        total=config.steps,
        initial=start,
        desc=f"train {config.model}",
        unit="step",
        disable=not progress,
    )
    for index, step in enumerate(steps):
        if step < start or (step == start and history):
            continue
        if step > current:
            params, opt_state, _ = trainer.run(
                params, opt_state, current, step - current
            )
            bar.update(step - current)
            current = step

        row = evaluate(
            config, params, trainer.static, dataset, inputs, twin, index, step
        )
        history.append(row)
        with metrics_path.open("a") as handle:
            handle.write(json.dumps(row) + "\n")
        wandb_logger.log(step, _scalars(row))

        if step > 0 and (step % config.checkpoint_every == 0 or step == config.steps):
            meta = {"seed": config.seed, "model": config.model}
            save_checkpoint(run_dir / "checkpoints", step, (params, opt_state), meta)
    bar.close()
    return history


def evaluate(config, params, static, dataset, inputs, twin, index, step) -> dict:
    """Return the metrics row of one logged step, with per-member values."""
    row = {"step": step, "train_time": config.training_time(step)}
    members: dict[str, list[float]] = {}
    labelled = {"train": dataset.train, **dataset.tests}
    for name, x in inputs.items():
        outputs = predict_members(
            params, static, jnp.asarray(model_inputs(config.model, x))
        )
        split = labelled.get(name)
        targets = None if split is None else split.y
        labels = None if split is None else split.labels
        row.update(split_metrics(name, outputs, twin[name][index], targets, labels))
        if split is not None:
            members.update(member_values(name, outputs, targets, labels))
        if name == "test" and x.shape[-1] == x.shape[-2]:
            row["test/invariance_error/finite_mean"] = _invariance(
                config, params, static, x, outputs
            )
    row["members"] = members
    return row


def _invariance(config, params, static, x, outputs) -> float:
    from zoo.planar import group_order, transform_images

    mean = outputs.mean(axis=0)
    transformed = []
    for element in range(1, group_order(config.group)):
        x_g = model_inputs(
            config.model, transform_images(jnp.asarray(x), config.group, element)
        )
        transformed.append(predict_members(params, static, x_g).mean(axis=0))
    return invariance_error(mean, transformed)


def _scalars(row: dict) -> dict:
    return {key: value for key, value in row.items() if key not in ("members", "step")}


def _rewrite_history(path: Path, history: list[dict]) -> None:
    temporary = path.with_suffix(".jsonl.tmp")
    temporary.write_text("".join(json.dumps(row) + "\n" for row in history))
    os.replace(temporary, path)


def _finish(
    run_dir: Path, final: dict, history: list[dict], config, wandb_logger
) -> None:
    figures = make_figures(history, config.model)
    save_figures(figures, run_dir / "plots")
    last_step = history[-1]["step"]
    wandb_logger.log_curves(last_step, history)
    wandb_logger.log_figures(last_step, figures)
    close_figures(figures)

    temporary = run_dir / "final.json.tmp"
    temporary.write_text(json.dumps(final, indent=2, sort_keys=True))
    os.replace(temporary, run_dir / "final.json")
    logger.info(
        "Finished %s at step %d; final metrics in %s",
        config.model,
        last_step,
        run_dir / "final.json",
    )
