"""Plain (non-equivariant) layers in the NTK parameterization.

Every weight is drawn from N(0, 1). A linear layer scales its weighted sum by
`W_std / sqrt(fan_in)` and adds `b_std * bias`, so the infinite-width kernels
depend on `W_std` and `b_std` only, never on the width.

Each layer acts on one example, channels first: vectors are `(features,)` and
images are `(channels, height, width)`. Use `jax.vmap` for batches.
"""

import math
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

Padding = Literal["VALID", "SAME", "CIRCULAR"]
PADDINGS = ("VALID", "SAME", "CIRCULAR")


def check_rank(name: str, x: Array, rank: int, layout: str) -> None:
    """Raise a ValueError unless `x` has `rank` axes, naming the expected layout."""
    if x.ndim != rank:
        raise ValueError(
            f"{name} expects one example of shape {layout}, got shape {x.shape}. "
            "Use jax.vmap over the batch axis."
        )


def check_padding(padding: str) -> None:
    if padding not in PADDINGS:
        raise ValueError(f"`padding` (={padding!r}) must be one of {PADDINGS}.")


def check_std(name: str, value: float | None, allow_none: bool) -> None:
    if value is None and allow_none:
        return
    if value is None or not value >= 0:
        raise ValueError(f"`{name}` (={value!r}) must be a number >= 0.")


def same_pads(size: int, kernel_size: int, stride: int) -> tuple[int, int]:
    """Return the (low, high) padding that `lax` uses for SAME on one axis."""
    out_size = -(-size // stride)
    total = max((out_size - 1) * stride + kernel_size - size, 0)
    return total // 2, total - total // 2


def conv2d_nchw(
    x: Float[Array, "c h w"],
    weight: Float[Array, "o c q q"],
    padding: Padding,
    stride: int = 1,
) -> Float[Array, "o h2 w2"]:
    """Cross-correlate one channels-first image with `weight` (no scaling).

    CIRCULAR pads by wrapping around with the same amounts as SAME, as
    neural-tangents does, so both sides agree on every padding mode.
    """
    lax_padding = padding
    if padding == "CIRCULAR":
        q = weight.shape[-1]
        pads = [same_pads(size, q, stride) for size in x.shape[1:]]
        x = jnp.pad(x, [(0, 0), *pads], mode="wrap")
        lax_padding = "VALID"

    y = jax.lax.conv_general_dilated(
        x[None],
        weight,
        window_strides=(stride, stride),
        padding=lax_padding,
        dimension_numbers=("NCHW", "OIHW", "NCHW"),
    )
    return y[0]


class Dense(eqx.Module):
    """Fully connected layer: `y = W_std / sqrt(in) * W x + b_std * b`."""

    weight: Float[Array, "out in"]
    bias: Float[Array, " out"] | None
    in_features: int = eqx.field(static=True)
    out_features: int = eqx.field(static=True)
    W_std: float = eqx.field(static=True)
    b_std: float | None = eqx.field(static=True)

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        W_std: float = 1.0,
        b_std: float | None = None,
        dtype=jnp.float32,
        key: PRNGKeyArray,
    ):
        """**Arguments:**

        - `in_features`, `out_features`: input and output sizes.
        - `W_std`: weight standard deviation in the NTK parameterization.
        - `b_std`: bias standard deviation; `None` builds the layer without bias.
        - `dtype`: parameter dtype.
        - `key`: PRNG key for the N(0, 1) initialisation.
        """
        for name, size in (
            ("in_features", in_features),
            ("out_features", out_features),
        ):
            if not (isinstance(size, int) and size > 0):
                raise ValueError(f"`{name}` (={size!r}) must be a positive integer.")
        check_std("W_std", W_std, allow_none=False)
        check_std("b_std", b_std, allow_none=True)

        weight_key, bias_key = jax.random.split(key)
        self.weight = jax.random.normal(weight_key, (out_features, in_features), dtype)
        self.bias = None
        if b_std is not None:
            self.bias = jax.random.normal(bias_key, (out_features,), dtype)
        self.in_features = in_features
        self.out_features = out_features
        self.W_std = W_std
        self.b_std = b_std

    def __call__(self, x: Float[Array, " in"], *, key=None) -> Float[Array, " out"]:
        check_rank("Dense", x, 1, "(in_features,)")
        if x.shape[0] != self.in_features:
            raise ValueError(
                f"Dense expects {self.in_features} input features, got {x.shape[0]}."
            )

        x = x.astype(self.weight.dtype)
        y = self.W_std / math.sqrt(self.in_features) * (self.weight @ x)
        if self.bias is not None:
            y = y + self.b_std * self.bias
        return y


class Conv2d(eqx.Module):
    """2D convolution: `y(t) = W_std / sqrt(c q^2) * sum_{c,y} W_c(y) x_c(t + y) + b`."""

    weight: Float[Array, "out in q q"]
    bias: Float[Array, " out"] | None
    in_channels: int = eqx.field(static=True)
    out_channels: int = eqx.field(static=True)
    kernel_size: int = eqx.field(static=True)
    stride: int = eqx.field(static=True)
    padding: str = eqx.field(static=True)
    W_std: float = eqx.field(static=True)
    b_std: float | None = eqx.field(static=True)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        stride: int = 1,
        padding: Padding = "SAME",
        W_std: float = 1.0,
        b_std: float | None = None,
        dtype=jnp.float32,
        key: PRNGKeyArray,
    ):
        """**Arguments:**

        - `in_channels`, `out_channels`: channel counts.
        - `kernel_size`: side `q` of the square filter.
        - `stride`: the same stride on both axes.
        - `padding`: `"VALID"`, `"SAME"` (zeros) or `"CIRCULAR"` (wrap around).
        - `W_std`, `b_std`, `dtype`, `key`: as for `Dense`.
        """
        for name, size in (
            ("in_channels", in_channels),
            ("out_channels", out_channels),
            ("kernel_size", kernel_size),
            ("stride", stride),
        ):
            if not (isinstance(size, int) and size > 0):
                raise ValueError(f"`{name}` (={size!r}) must be a positive integer.")
        check_padding(padding)
        check_std("W_std", W_std, allow_none=False)
        check_std("b_std", b_std, allow_none=True)

        weight_key, bias_key = jax.random.split(key)
        shape = (out_channels, in_channels, kernel_size, kernel_size)
        self.weight = jax.random.normal(weight_key, shape, dtype)
        self.bias = None
        if b_std is not None:
            self.bias = jax.random.normal(bias_key, (out_channels,), dtype)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.W_std = W_std
        self.b_std = b_std

    def __call__(
        self, x: Float[Array, "c h w"], *, key=None
    ) -> Float[Array, "o h2 w2"]:
        check_rank("Conv2d", x, 3, "(channels, height, width)")
        if x.shape[0] != self.in_channels:
            raise ValueError(
                f"Conv2d expects {self.in_channels} input channels, got {x.shape[0]} "
                f"(input shape {x.shape}; images are channels first)."
            )

        # The parameters fix the compute dtype, as in a float32 model fed float64 data.
        x = x.astype(self.weight.dtype)
        fan_in = self.in_channels * self.kernel_size**2
        y = conv2d_nchw(x, self.weight, self.padding, self.stride)
        y = self.W_std / math.sqrt(fan_in) * y
        if self.bias is not None:
            y = y + self.b_std * self.bias[:, None, None]
        return y


class Relu(eqx.Module):
    """`max(x, 0)`, elementwise."""

    def __call__(self, x: Array, *, key=None) -> Array:
        return jax.nn.relu(x)


class ABRelu(eqx.Module):
    """`a * min(x, 0) + b * max(x, 0)`, elementwise."""

    a: float = eqx.field(static=True)
    b: float = eqx.field(static=True)

    def __call__(self, x: Array, *, key=None) -> Array:
        return self.a * jnp.minimum(x, 0) + self.b * jnp.maximum(x, 0)


class LeakyRelu(eqx.Module):
    """`x` for `x > 0` and `alpha * x` otherwise, elementwise."""

    alpha: float = eqx.field(static=True)

    def __call__(self, x: Array, *, key=None) -> Array:
        return jnp.where(x > 0, x, self.alpha * x)


class Erf(eqx.Module):
    """`a * erf(b * x) + c`, elementwise."""

    a: float = eqx.field(static=True, default=1.0)
    b: float = eqx.field(static=True, default=1.0)
    c: float = eqx.field(static=True, default=0.0)

    def __call__(self, x: Array, *, key=None) -> Array:
        return self.a * jax.scipy.special.erf(self.b * x) + self.c


class Gelu(eqx.Module):
    """Gaussian error linear unit `x * Phi(x)`, exact or with the tanh formula."""

    approximate: bool = eqx.field(static=True, default=False)

    def __call__(self, x: Array, *, key=None) -> Array:
        return jax.nn.gelu(x, approximate=self.approximate)


class GlobalAvgPool(eqx.Module):
    """Mean over every spatial axis: `(channels, *spatial) -> (channels,)`."""

    def __call__(self, x: Array, *, key=None) -> Array:
        if x.ndim < 2:
            raise ValueError(
                f"GlobalAvgPool expects (channels, *spatial), got shape {x.shape}."
            )
        return jnp.mean(x, axis=tuple(range(1, x.ndim)))


class Flatten(eqx.Module):
    """Reshape one example to a vector, channels outermost (C-order)."""

    def __call__(self, x: Array, *, key=None) -> Array:
        return jnp.reshape(x, (-1,))


class Identity(eqx.Module):
    """Return the input unchanged, the default shortcut of `Residual`."""

    def __call__(self, x: Array, *, key=None) -> Array:
        return x
