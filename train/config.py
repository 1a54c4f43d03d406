"""The configuration of one training run, and its validation."""

import dataclasses
import math

from train.data import DATASETS, DataSpec, check_spec
from train.ensemble import OPTIMIZERS
from train.errors import UsageError
from train.models import ACTIVATIONS, MODELS

WANDB_MODES = ("offline", "online", "disabled")
GROUPS = ("C4", "D4")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything that determines one run: model, data, training and logging.

    `learning_rate` and `steps` fix the twin's training time
    t = learning_rate x steps for full-batch gradient descent (`optimizer="sgd"`,
    `batch_size=None`). `group` is the group for the invariance error and for
    `augment`, which trains on every training point under every group element.
    """

    model: str = "cnn"
    widths: tuple[int, ...] = (64, 64)
    activation: str = "relu"
    ensemble_size: int = 8
    steps: int = 1000
    learning_rate: float = 1.0
    optimizer: str = "sgd"
    momentum: float = 0.9
    batch_size: int | None = None
    augment: bool = False
    group: str = "C4"
    W_std: float = 1.5
    b_std: float | None = 0.05
    seed: int = 0
    dataset: str = "mnist5k"
    data_path: str | None = None
    n_train: int = 256
    n_test: int = 256
    image_size: int | None = 8
    n_off_manifold: int = 64
    log_every: int = 50
    checkpoint_every: int = 250
    kernel_batch_size: int = 32
    diag_reg: float = 0.0
    wandb_mode: str = "offline"
    wandb_project: str = "twinzoo"

    def data_spec(self) -> DataSpec:
        return DataSpec(
            name=self.dataset,
            n_train=self.n_train,
            n_test=self.n_test,
            image_size=self.image_size,
            data_path=self.data_path,
        )

    def training_time(self, step: int) -> float:
        """Return the twin's time for `step`: lr x step, over (1 - momentum) with momentum.

        Heavy-ball momentum moves like gradient descent with learning rate
        lr / (1 - momentum) once its velocity settles; Adam has no such time,
        so the twin is then compared at lr x step only as a reference.
        """
        rate = self.learning_rate
        if self.optimizer == "momentum":
            rate = rate / (1.0 - self.momentum)
        return rate * step

    def to_json(self) -> dict:
        values = dataclasses.asdict(self)
        values["widths"] = list(self.widths)
        return values

    @classmethod
    def from_json(cls, values: dict) -> "TrainConfig":
        values = dict(values)
        values["widths"] = tuple(values["widths"])
        return cls(**values)


def validate(config: TrainConfig) -> None:
    """Raise a UsageError naming the first invalid field of `config`."""
    if config.model not in MODELS:
        raise UsageError(
            f"Unknown model {config.model!r}; choose one of {', '.join(MODELS)}."
        )
    if config.activation not in ACTIVATIONS:
        raise UsageError(
            f"Unknown activation {config.activation!r}; choose one of "
            f"{', '.join(ACTIVATIONS)}."
        )
    if config.dataset not in DATASETS:
        raise UsageError(
            f"Unknown data set {config.dataset!r}; choose one of {', '.join(DATASETS)}."
        )
    if config.optimizer not in OPTIMIZERS:
        raise UsageError(
            f"Unknown optimizer {config.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}."
        )
    if config.wandb_mode not in WANDB_MODES:
        raise UsageError(
            f"`wandb_mode` (={config.wandb_mode!r}) must be one of {', '.join(WANDB_MODES)}."
        )
    if config.group not in GROUPS:
        raise UsageError(
            f"`group` (={config.group!r}) must be one of {', '.join(GROUPS)}."
        )

    if not config.widths or not all(
        isinstance(w, int) and w > 0 for w in config.widths
    ):
        raise UsageError(
            f"`widths` (={list(config.widths)!r}) must be positive integers."
        )
    positive_ints = (
        "ensemble_size",
        "steps",
        "n_train",
        "n_test",
        "log_every",
        "checkpoint_every",
        "kernel_batch_size",
    )
    for field in positive_ints:
        value = getattr(config, field)
        if not (isinstance(value, int) and value > 0):
            raise UsageError(f"`{field}` (={value!r}) must be a positive integer.")
    if not (isinstance(config.n_off_manifold, int) and config.n_off_manifold >= 0):
        raise UsageError(f"`n_off_manifold` (={config.n_off_manifold!r}) must be >= 0.")
    if config.batch_size is not None and not (
        isinstance(config.batch_size, int) and config.batch_size > 0
    ):
        raise UsageError(
            f"`batch_size` (={config.batch_size!r}) must be a positive integer, "
            "or None for full-batch gradient descent."
        )

    if not (math.isfinite(config.learning_rate) and config.learning_rate > 0):
        raise UsageError(
            f"`learning_rate` (={config.learning_rate!r}) must be a positive number."
        )
    if not (0 <= config.momentum < 1):
        raise UsageError(f"`momentum` (={config.momentum!r}) must lie in [0, 1).")
    if not config.diag_reg >= 0:
        raise UsageError(f"`diag_reg` (={config.diag_reg!r}) must be >= 0.")
    if config.checkpoint_every % config.log_every:
        raise UsageError(
            f"`checkpoint_every` (={config.checkpoint_every}) must be a multiple of "
            f"`log_every` (={config.log_every}), so that a resumed run logs the "
            "same steps."
        )
    check_spec(config.data_spec())
