"""Roto-translation groups of the pixel grid: C4 and D4 (p4 and p4m).

Group elements are indexed `0 .. order - 1`. Element `k` of C4 is a rotation
by `k` quarter turns counterclockwise about the image centre. D4 adds the
reflections: element `k >= 4` first flips the image along its width axis,
then rotates it by `k - 4` quarter turns.
"""

import functools
import math
from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from zoo.containers import Sequential
from zoo.plain import (
    Dense,
    Padding,
    Relu,
    check_padding,
    check_rank,
    check_std,
    conv2d_nchw,
)

GROUP_ORDERS = {"C4": 4, "D4": 8}


def group_order(group: str) -> int:
    """Return the number of elements of `group` ("C4" or "D4")."""
    if group not in GROUP_ORDERS:
        raise ValueError(f"`group` (={group!r}) must be one of {sorted(GROUP_ORDERS)}.")
    return GROUP_ORDERS[group]


def transform_images(x: Array, group: str, element: int) -> Array:
    """Apply group element `element` to images whose last two axes are (H, W).

    Rotations need square images, so a non-square input raises a ValueError.
    """
    order = group_order(group)
    if not 0 <= element < order:
        raise ValueError(
            f"`element` (={element}) must lie in 0..{order - 1} for {group}."
        )
    if x.ndim < 2 or x.shape[-1] != x.shape[-2]:
        raise ValueError(
            f"{group} acts on square images, got trailing shape {x.shape[-2:]}; "
            "crop or resize the images to equal height and width."
        )

    if element >= 4:
        x = jnp.flip(x, axis=-1)
    return jnp.rot90(x, element % 4, axes=(-2, -1))


@functools.cache
def multiplication_table(group: str) -> np.ndarray:
    """Return `table` with `table[a, b]` the index of the product `a b`.

    The product acts as `transform_images(x, group, table[a, b]) ==
    transform_images(transform_images(x, group, b), group, a)`: `b` acts first.
    """
    order = group_order(group)
    probe = np.arange(9.0).reshape(3, 3)

    def transform(image, element):
        # Concrete values even when the first call happens inside a jit trace.
        with jax.ensure_compile_time_eval():
            return np.asarray(transform_images(image, group, element))

    images = [transform(probe, g) for g in range(order)]
    table = np.zeros((order, order), dtype=int)
    for a in range(order):
        for b in range(order):
            product = transform(images[b], a)
            matches = [c for c in range(order) if np.array_equal(images[c], product)]
            table[a, b] = matches[0]
    return table


def inverse_elements(group: str) -> np.ndarray:
    """Return `inverse` with `inverse[g]` the index of `g^-1`."""
    table = multiplication_table(group)
    return np.argmax(table == 0, axis=1)


def transform_group_features(f: Array, group: str, element: int) -> Array:
    """Apply group element `a` to feature maps on the group, shape (..., |G|, H, W).

    Implements `(a f)_k(t) = f_{a^-1 k}(a^-1 t)`: the group axis is permuted
    by left multiplication with `a^-1` and every map is transformed as an image.
    """
    order = group_order(group)
    if not 0 <= element < order:
        raise ValueError(
            f"`element` (={element}) must lie in 0..{order - 1} for {group}."
        )
    if f.ndim < 3 or f.shape[-3] != order:
        raise ValueError(
            f"Feature maps on {group} need shape (..., {order}, H, W), got {f.shape}."
        )

    inverse = inverse_elements(group)[element]
    permutation = multiplication_table(group)[inverse]
    return transform_images(jnp.take(f, permutation, axis=-3), group, element)


def _check_size(name: str, size) -> None:
    if not (isinstance(size, int) and size > 0):
        raise ValueError(f"`{name}` (={size!r}) must be a positive integer.")


def _check_centred_filter(kernel_size: int, padding: str) -> None:
    # An even filter under SAME or CIRCULAR padding is centred half a pixel off
    # the output pixel, so rotating it about its own centre is no group action.
    if padding != "VALID" and kernel_size % 2 == 0:
        raise ValueError(
            f"`kernel_size` (={kernel_size}) must be odd with padding {padding!r}, "
            "because a rotated even filter is off centre by half a pixel; use an odd "
            "`kernel_size` or padding 'VALID'."
        )


def _check_image(name: str, x: Array, kernel_size: int, padding: str) -> None:
    if x.shape[-1] != x.shape[-2]:
        raise ValueError(
            f"{name} needs square images, got height {x.shape[-2]} and width "
            f"{x.shape[-1]}; crop or resize the images to equal height and width."
        )
    if padding == "VALID" and kernel_size > x.shape[-1]:
        raise ValueError(
            f"{name} with padding 'VALID' needs images of side >= `kernel_size` "
            f"(={kernel_size}), got side {x.shape[-1]}."
        )


def _init_bias(key: PRNGKeyArray, size: int, b_std: float | None, dtype):
    if b_std is None:
        return None
    return jax.random.normal(key, (size,), dtype)


class LiftingConv2d(eqx.Module):
    """Lifting convolution from images to feature maps on the group G = C4 or D4.

    Implements `y_{o,g}(t) = W_std / sqrt(c q^2) * sum_{c,y} x_c(t + y)
    W_{o,c}(g^-1 y) + b_std * b_o`: one 2D cross-correlation per group element
    `g`, with the filter transformed by `g` as `transform_images` transforms
    an image. Input `(C, H, W)`, output `(C_out, |G|, H', W')`.

    A globally supported lifting layer is `kernel_size` equal to the image
    side with padding `"VALID"`: its output is `1 x 1` in space.
    """

    weight: Float[Array, "out in q q"]
    bias: Float[Array, " out"] | None
    in_channels: int = eqx.field(static=True)
    out_channels: int = eqx.field(static=True)
    kernel_size: int = eqx.field(static=True)
    group: str = eqx.field(static=True)
    padding: str = eqx.field(static=True)
    W_std: float = eqx.field(static=True)
    b_std: float | None = eqx.field(static=True)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        group: str = "C4",
        padding: Padding = "SAME",
        W_std: float = 1.0,
        b_std: float | None = None,
        dtype=jnp.float32,
        key: PRNGKeyArray,
    ):
        """**Arguments:**

        - `in_channels`, `out_channels`: channel counts.
        - `kernel_size`: side `q` of the square filter; odd unless padding is VALID.
        - `group`: `"C4"` (rotations) or `"D4"` (rotations and reflections).
        - `padding`: `"VALID"`, `"SAME"` (zeros) or `"CIRCULAR"` (wrap around).
        - `W_std`, `b_std`, `dtype`, `key`: as for `zoo.Conv2d`.
        """
        for name, size in (
            ("in_channels", in_channels),
            ("out_channels", out_channels),
            ("kernel_size", kernel_size),
        ):
            _check_size(name, size)
        group_order(group)
        check_padding(padding)
        _check_centred_filter(kernel_size, padding)
        check_std("W_std", W_std, allow_none=False)
        check_std("b_std", b_std, allow_none=True)

        weight_key, bias_key = jax.random.split(key)
        shape = (out_channels, in_channels, kernel_size, kernel_size)
        self.weight = jax.random.normal(weight_key, shape, dtype)
        self.bias = _init_bias(bias_key, out_channels, b_std, dtype)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.group = group
        self.padding = padding
        self.W_std = W_std
        self.b_std = b_std

    def __call__(
        self, x: Float[Array, "c h w"], *, key=None
    ) -> Float[Array, "o g h2 w2"]:
        check_rank("LiftingConv2d", x, 3, "(channels, height, width)")
        if x.shape[0] != self.in_channels:
            raise ValueError(
                f"LiftingConv2d expects {self.in_channels} input channels, got "
                f"{x.shape[0]} (input shape {x.shape}; images are channels first)."
            )
        _check_image("LiftingConv2d", x, self.kernel_size, self.padding)

        x = x.astype(self.weight.dtype)
        order = group_order(self.group)
        # (out, |G|, in, q, q): filter g is the filter transformed by g.
        filters = jnp.stack(
            [transform_images(self.weight, self.group, g) for g in range(order)], 1
        )
        filters = filters.reshape(-1, *self.weight.shape[1:])
        y = conv2d_nchw(x, filters, self.padding)
        y = y.reshape(self.out_channels, order, *y.shape[1:])

        fan_in = self.in_channels * self.kernel_size**2
        y = self.W_std / math.sqrt(fan_in) * y
        if self.bias is not None:
            y = y + self.b_std * self.bias[:, None, None, None]
        return y


SUPPORTS = ("all", "identity")


def resolve_support(group: str, support) -> tuple[int, ...]:
    """Return the group elements of a filter `support` as sorted unique indices.

    `support` is `"all"`, `"identity"` or a tuple of element indices.
    """
    order = group_order(group)
    if support == "all":
        return tuple(range(order))
    if support == "identity":
        return (0,)
    if isinstance(support, str) or not isinstance(support, (tuple, list)):
        raise TypeError(
            f"`support` (={support!r}) must be 'all', 'identity' or a tuple of "
            f"element indices in 0..{order - 1}."
        )
    elements = tuple(support)
    valid = all(isinstance(h, (int, np.integer)) and 0 <= h < order for h in elements)
    if not elements or not valid or len(set(elements)) != len(elements):
        raise ValueError(
            f"`support` (={support!r}) must be a non-empty tuple of distinct element "
            f"indices in 0..{order - 1} for {group}."
        )
    return tuple(sorted(int(h) for h in elements))


class GroupConv2d(eqx.Module):
    """Group convolution between feature maps on G = C4 or D4.

    Implements `y_{o,g}(t) = W_std / sqrt(c |S| q^2) * sum_{c, h in S, y}
    x_{c, g h}(t + y) W_{o,c,h}(g^-1 y) + b_std * b_o`, where `S` is the
    rotation (and reflection) support of the filter and `g h` the group
    product of `zoo.planar.multiplication_table`. Input `(C, |G|, H, W)`,
    output `(C_out, |G|, H', W')`.
    """

    weight: Float[Array, "out in s q q"]
    bias: Float[Array, " out"] | None
    in_channels: int = eqx.field(static=True)
    out_channels: int = eqx.field(static=True)
    kernel_size: int = eqx.field(static=True)
    group: str = eqx.field(static=True)
    support: tuple[int, ...] = eqx.field(static=True)
    padding: str = eqx.field(static=True)
    W_std: float = eqx.field(static=True)
    b_std: float | None = eqx.field(static=True)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        group: str = "C4",
        support: str | tuple[int, ...] = "all",
        padding: Padding = "SAME",
        W_std: float = 1.0,
        b_std: float | None = None,
        dtype=jnp.float32,
        key: PRNGKeyArray,
    ):
        """**Arguments:**

        - `in_channels`, `out_channels`: channel counts.
        - `kernel_size`: side `q` of the square filter; odd unless padding is VALID.
        - `group`: `"C4"` or `"D4"`.
        - `support`: group elements the filter covers: `"all"`, `"identity"`
          (a filter on the identity only), or a tuple of element indices.
        - `padding`: `"VALID"`, `"SAME"` (zeros) or `"CIRCULAR"` (wrap around).
        - `W_std`, `b_std`, `dtype`, `key`: as for `zoo.Conv2d`.
        """
        for name, size in (
            ("in_channels", in_channels),
            ("out_channels", out_channels),
            ("kernel_size", kernel_size),
        ):
            _check_size(name, size)
        group_order(group)
        support = resolve_support(group, support)
        check_padding(padding)
        _check_centred_filter(kernel_size, padding)
        check_std("W_std", W_std, allow_none=False)
        check_std("b_std", b_std, allow_none=True)

        weight_key, bias_key = jax.random.split(key)
        shape = (out_channels, in_channels, len(support), kernel_size, kernel_size)
        self.weight = jax.random.normal(weight_key, shape, dtype)
        self.bias = _init_bias(bias_key, out_channels, b_std, dtype)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.group = group
        self.support = support
        self.padding = padding
        self.W_std = W_std
        self.b_std = b_std

    def __call__(
        self, x: Float[Array, "c g h w"], *, key=None
    ) -> Float[Array, "o g h2 w2"]:
        order = group_order(self.group)
        check_rank("GroupConv2d", x, 4, f"(channels, {order}, height, width)")
        if x.shape[0] != self.in_channels or x.shape[1] != order:
            raise ValueError(
                f"GroupConv2d expects shape ({self.in_channels}, {order}, H, W) for "
                f"{self.in_channels} channels on {self.group}, got {x.shape}."
            )
        _check_image("GroupConv2d", x, self.kernel_size, self.padding)

        x = x.astype(self.weight.dtype)
        table = multiplication_table(self.group)
        # Output element g reads the input elements g h, h in S.
        indices = table[:, list(self.support)]
        inputs = x[:, indices].transpose(1, 0, 2, 3, 4)
        inputs = inputs.reshape(order, -1, *x.shape[2:])
        filters = jnp.stack(
            [transform_images(self.weight, self.group, g) for g in range(order)]
        )
        filters = filters.reshape(order, self.out_channels, -1, *filters.shape[-2:])
        y = jax.vmap(conv2d_nchw, in_axes=(0, 0, None))(inputs, filters, self.padding)
        y = y.transpose(1, 0, 2, 3)

        fan_in = self.in_channels * len(self.support) * self.kernel_size**2
        y = self.W_std / math.sqrt(fan_in) * y
        if self.bias is not None:
            y = y + self.b_std * self.bias[:, None, None, None]
        return y


POOLS = ("group_and_space", "group")


class GroupPool(eqx.Module):
    """Mean over the group (and space) of feature maps on a group.

    `over="group_and_space"`: `(C, |G|, H, W) -> (C,)`, `y_c = mean_{g,t} x_{c,g}(t)`.
    `over="group"`: `(C, |G|, H, W) -> (C, H, W)`, `y_c(t) = mean_g x_{c,g}(t)`.
    """

    over: str = eqx.field(static=True, default="group_and_space")

    def __check_init__(self):
        if self.over not in POOLS:
            raise ValueError(f"`over` (={self.over!r}) must be one of {POOLS}.")

    def __call__(self, x: Array, *, key=None) -> Array:
        check_rank("GroupPool", x, 4, "(channels, group, height, width)")
        axes = (1, 2, 3) if self.over == "group_and_space" else (1,)
        return jnp.mean(x, axis=axes)


def group_cnn(
    group: str,
    in_channels: int,
    widths: Sequence[int],
    out_features: int,
    *,
    kernel_size: int = 3,
    padding: Padding = "CIRCULAR",
    support: str | tuple[int, ...] = "all",
    activation: Callable[[], eqx.Module] = Relu,
    W_std: float = 1.5,
    b_std: float | None = 0.05,
    dtype=jnp.float32,
    key: PRNGKeyArray,
) -> Sequential:
    """Build a group CNN on `group`, invariant to its rotations (and reflections).

    Layers: LiftingConv2d, then [activation, GroupConv2d] per further width,
    activation, GroupPool over group and space, Dense. As in `zoo.cnn`,
    `widths` are the output channels of the lifting and group convs.
    """
    widths = tuple(widths)
    if not widths or not all(isinstance(w, int) and w > 0 for w in widths):
        raise ValueError(
            f"`widths` (={widths!r}) must be a non-empty list of positive ints."
        )
    group_order(group)

    keys = jax.random.split(key, len(widths) + 1)
    options = {"padding": padding, "W_std": W_std, "b_std": b_std, "dtype": dtype}
    layers = [
        LiftingConv2d(
            in_channels, widths[0], kernel_size, group=group, key=keys[0], **options
        )
    ]
    for fan_in, width, layer_key in zip(widths[:-1], widths[1:], keys[1:]):
        layers.append(activation())
        layers.append(
            GroupConv2d(
                fan_in,
                width,
                kernel_size,
                group=group,
                support=support,
                key=layer_key,
                **options,
            )
        )
    layers.append(activation())
    layers.append(GroupPool("group_and_space"))
    layers.append(
        Dense(
            widths[-1],
            out_features,
            W_std=W_std,
            b_std=b_std,
            dtype=dtype,
            key=keys[-1],
        )
    )
    return Sequential(layers)


def c4_cnn(in_channels: int, widths: Sequence[int], out_features: int, **kwargs):
    """Build `group_cnn("C4", ...)`: a CNN invariant to quarter-turn rotations."""
    return group_cnn("C4", in_channels, widths, out_features, **kwargs)


def d4_cnn(in_channels: int, widths: Sequence[int], out_features: int, **kwargs):
    """Build `group_cnn("D4", ...)`: invariant to quarter turns and reflections."""
    return group_cnn("D4", in_channels, widths, out_features, **kwargs)
