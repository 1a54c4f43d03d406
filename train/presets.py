"""Named experiments: a list of models that share one training config.

`main` is the experiment that `twinzoo train` runs without arguments. It
trains a C4 group CNN and a plain CNN ensemble with their twins on 7 x 7 real
MNIST digits. Its sizes keep both models and both twins within minutes on a
2-core CPU.
"""

import dataclasses

from train.config import TrainConfig
from train.errors import UsageError


@dataclasses.dataclass(frozen=True)
class Preset:
    """An experiment: the models to train and the config they share."""

    description: str
    models: tuple[str, ...]
    config: TrainConfig


# The C4 CNN's group convolutions cost |C4|^2 = 16 times a plain conv of the
# same width, so the C4 model gets a quarter of the CNN's channels and both
# cost about the same per step. With erf, the twin NTKs of both models on
# these digits allow gradient-descent steps up to lr of about 79 (measured
# with `train.predictor.max_learning_rate`), so lr = 50 is stable and 400
# steps reach t = 2e4. ReLU caps lr near 10 and would need 8 times the steps.
_MAIN = TrainConfig(
    widths=(32, 32),
    activation="erf",
    ensemble_size=4,
    steps=400,
    learning_rate=50.0,
    n_train=128,
    n_test=128,
    image_size=7,
    n_off_manifold=32,
    log_every=25,
    checkpoint_every=100,
)

PRESETS = {
    "main": Preset(
        "C4 group CNN vs plain CNN ensembles and twins on 7x7 MNIST digits",
        ("c4_cnn", "cnn"),
        _MAIN,
    ),
    "cnn": Preset("the plain CNN of `main` alone", ("cnn",), _MAIN),
    "c4": Preset("the C4 group CNN of `main` alone", ("c4_cnn",), _MAIN),
    "mlp-augment": Preset(
        "an MLP trained on the full C4 orbit of every digit",
        ("mlp",),
        dataclasses.replace(_MAIN, widths=(256,), augment=True, n_train=64),
    ),
    "tiny": Preset(
        "a seconds-long MLP run for tests and smoke checks",
        ("mlp",),
        TrainConfig(
            model="mlp",
            widths=(32,),
            ensemble_size=2,
            steps=40,
            learning_rate=1.0,
            n_train=20,
            n_test=20,
            image_size=7,
            n_off_manifold=4,
            log_every=10,
            checkpoint_every=20,
            kernel_batch_size=10,
        ),
    ),
}

# Channels of the C4 model relative to the preset's widths (see above).
GROUP_WIDTH_DIVISOR = {"c4_cnn": 4, "d4_cnn": 8}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise UsageError(
            f"Unknown preset {name!r}; choose one of {', '.join(PRESETS)}."
        )
    return PRESETS[name]


def model_config(
    preset_config: TrainConfig, model: str, scale_group_widths: bool
) -> TrainConfig:
    """Return the config of `model` in an experiment, with group widths scaled down."""
    widths = preset_config.widths
    divisor = GROUP_WIDTH_DIVISOR.get(model, 1) if scale_group_widths else 1
    widths = tuple(max(1, w // divisor) for w in widths)
    return dataclasses.replace(preset_config, model=model, widths=widths)
