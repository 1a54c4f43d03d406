"""Build zoo models by name for images `(C, H, W)` and check the input shape."""

from collections.abc import Callable, Sequence

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import PRNGKeyArray

import zoo
from train.errors import UsageError

# Data are channels-first images; the MLP takes them flattened (`model_inputs`).
MODELS = ("mlp", "cnn", "c4_cnn", "d4_cnn")

# Pointwise nonlinearities by name; each has an exact twin rule.
ACTIVATIONS: dict[str, Callable[[], eqx.Module]] = {
    "relu": zoo.Relu,
    "erf": zoo.Erf,
    "gelu": zoo.Gelu,
}

# The group under which a model is invariant by construction, if any.
MODEL_GROUPS = {"c4_cnn": "C4", "d4_cnn": "D4"}


def available_models() -> tuple[str, ...]:
    """Return the model names whose builder exists in this checkout of zoo."""
    return tuple(name for name in MODELS if name == "mlp" or hasattr(zoo, name))


def check_model_input(name: str, example_shape: Sequence[int]) -> None:
    """Raise a UsageError if model `name` cannot take examples of `example_shape`."""
    if name not in MODELS:
        raise UsageError(f"Unknown model {name!r}; choose one of {', '.join(MODELS)}.")
    if name not in available_models():
        raise UsageError(
            f"Model {name!r} needs `zoo.{name}`, which this checkout of zoo lacks."
        )

    shape = tuple(example_shape)
    if len(shape) != 3:
        raise UsageError(
            f"Model {name!r} takes images (channels, height, width), got examples "
            f"of shape {shape}."
        )
    if name in MODEL_GROUPS and shape[1] != shape[2]:
        raise UsageError(
            f"Model {name!r} rotates its inputs and needs square images, got "
            f"{shape[1]}x{shape[2]} (shape {shape}); pass a square `--image-size`."
        )


def build_model(
    name: str,
    example_shape: Sequence[int],
    widths: Sequence[int],
    out_features: int,
    *,
    activation: str = "relu",
    W_std: float = 1.5,
    b_std: float | None = 0.05,
    dtype=jnp.float32,
    key: PRNGKeyArray,
) -> eqx.Module:
    """Build zoo model `name` for examples of `example_shape`."""
    check_model_input(name, example_shape)
    if activation not in ACTIVATIONS:
        raise UsageError(
            f"Unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}."
        )
    in_channels = int(example_shape[0])
    options = {
        "activation": ACTIVATIONS[activation],
        "W_std": W_std,
        "b_std": b_std,
        "dtype": dtype,
        "key": key,
    }

    if name == "mlp":
        in_features = int(np.prod(example_shape))
        return zoo.mlp(in_features, widths, out_features, **options)

    builder: Callable[..., eqx.Module] = getattr(zoo, name)
    return builder(in_channels, widths, out_features, **options)


def model_inputs(name: str, x):
    """Return a batch of images `(N, C, H, W)` in the shape model `name` takes.

    The MLP takes flat vectors, flattened channels outermost; every other
    model takes the images as they are. Group actions apply to the images,
    so transform first and flatten after.
    """
    if name == "mlp":
        return x.reshape(x.shape[0], -1)
    return x
