"""Baseline models assembled from the plain layers: an MLP and a CNN."""

from typing import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import PRNGKeyArray

from zoo.containers import Residual, Sequential
from zoo.plain import Conv2d, Dense, GlobalAvgPool, Padding, Relu


def _check_widths(widths: Sequence[int]) -> tuple[int, ...]:
    widths = tuple(widths)
    if not widths or not all(isinstance(w, int) and w > 0 for w in widths):
        raise ValueError(f"`widths` (={widths!r}) must be a non-empty list of positive ints.")
    return widths


def mlp(
    in_features: int,
    widths: Sequence[int],
    out_features: int,
    *,
    activation: Callable[[], eqx.Module] = Relu,
    W_std: float = 1.5,
    b_std: float | None = 0.05,
    dtype=jnp.float32,
    key: PRNGKeyArray,
) -> Sequential:
    """Build `Dense -> activation` for each hidden width, then a Dense readout.

    The input is one flat vector; use `Flatten` first for images.
    """
    widths = _check_widths(widths)
    sizes = (in_features, *widths)
    keys = jax.random.split(key, len(widths) + 1)

    layers = []
    for (fan_in, fan_out), layer_key in zip(zip(sizes[:-1], sizes[1:]), keys):
        layers.append(Dense(fan_in, fan_out, W_std=W_std, b_std=b_std, dtype=dtype, key=layer_key))
        layers.append(activation())
    layers.append(Dense(sizes[-1], out_features, W_std=W_std, b_std=b_std, dtype=dtype, key=keys[-1]))
    return Sequential(layers)


def cnn(
    in_channels: int,
    widths: Sequence[int],
    out_features: int,
    *,
    kernel_size: int = 3,
    padding: Padding = "CIRCULAR",
    residual: bool = False,
    activation: Callable[[], eqx.Module] = Relu,
    W_std: float = 1.5,
    b_std: float | None = 0.05,
    dtype=jnp.float32,
    key: PRNGKeyArray,
) -> Sequential:
    """Build a CNN: Conv2d, then [activation, Conv2d] blocks, activation, pool, Dense.

    **Arguments:**

    - `widths`: output channels of each conv layer.
    - `residual`: make every block after the first conv a pre-activation
      residual block `x + conv(activation(x))`; all widths after the first
      must then equal the first.
    """
    widths = _check_widths(widths)
    if residual and len(set(widths)) > 1:
        raise ValueError(f"`residual=True` needs equal widths, got {widths}.")

    keys = jax.random.split(key, len(widths) + 1)
    convs = []
    fan_in = in_channels
    for width, layer_key in zip(widths, keys):
        conv = Conv2d(
            fan_in,
            width,
            kernel_size,
            padding=padding,
            W_std=W_std,
            b_std=b_std,
            dtype=dtype,
            key=layer_key,
        )
        convs.append(conv)
        fan_in = width

    layers = [convs[0]]
    for conv in convs[1:]:
        block = Sequential([activation(), conv])
        layers.append(Residual(block) if residual else block)

    layers.append(activation())
    layers.append(GlobalAvgPool())
    layers.append(Dense(fan_in, out_features, W_std=W_std, b_std=b_std, dtype=dtype, key=keys[-1]))
    return Sequential(layers)
