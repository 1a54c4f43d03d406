"""Twin rules for the roto-translation layers of `zoo.planar` (C4 and D4).

Kernel layout. A kernel between feature maps on a group G carries two group
indices, `K_{g,g'}(t, t')`. After a lifting or group convolution it depends
on them only through the relative element `r = g' g^-1`, so
`K_{g,g'} = B_{g' g^-1}`, and shifting both indices by the same right factor
leaves it unchanged. The rules store only the |G| blocks `B_r`:

- `nngp`, `ntk`: `(N1, N2, |G|, H, H', W, W')`, block `r` at index 2;
- `cov1`, `cov2`: `(N, |G|, H, H, W, W)`, the same blocks for `K(x, x)`.

`derive_full_blocks` builds the same twin on all |G|^2 blocks
`(N1, N2, |G|, |G|', H, H', W, W')` straight from the formulas, as a
reference for tests and memory comparisons, and `expand_kernel` maps a
relative-layout kernel to that full layout.

Notation: `q` is the filter side, `y` runs over the `q x q` filter offsets,
`r . y` is the pixel map of element `r` (as `zoo.planar.transform_images`
moves pixels), and `C(K)(t, u) = (1/q^2) sum_y K(t + y, u + y)` is the
plain convolution operator on kernels (zero padding for SAME, wrap-around on
both arguments for CIRCULAR). Every formula is applied to the NNGP `K`; the
NTK follows `T' = K' + W_std^2 A(T)` with the same linear operator `A`.
"""

import contextlib
import contextvars
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from twins._nt import nt, stax
from twins.core import (
    PLAIN,
    Layout,
    NTLayer,
    Twin,
    derive,
    register_rule,
    unused_apply,
    unused_init,
)
from zoo import planar
from zoo.plain import same_pads

# Block layout, "relative" or "full", that lifting layers emit during translation.
_BLOCKS_IN_USE = contextvars.ContextVar("twins_planar_blocks", default="relative")

_GROUP_REQUIREMENTS = {
    "batch_axis": 0,
    "channel_axis": 1,
    "diagonal_spatial": stax.Diagonal(input=stax.Bool.NO, output=stax.Bool.NO),
}


@dataclasses.dataclass(frozen=True)
class GroupLayout(Layout):
    """Kernel of feature maps on `group`, as |G| relative or |G|^2 full blocks."""

    group: str = "C4"
    blocks: str = "relative"

    def pointwise(self, layer: NTLayer) -> NTLayer:
        """Apply a neural-tangents elementwise layer blockwise.

        `K'_{g,g'}(t, t') = F(K_{g,g'}(t, t'); K_{g,g}(t, t), K_{g',g'}(t', t'))`.
        In the relative layout both variances come from the identity block
        `B_e`, so the NT layer receives the blocks folded into its batch axis.
        """
        return _pointwise_layer(layer, self)

    def describe(self) -> str:
        return f"feature maps on {self.group} ({self.blocks} blocks)"


def relative_elements(group: str) -> np.ndarray:
    """Return `rel` with `rel[g, g']` the index of `g' g^-1`."""
    table = planar.multiplication_table(group)
    inverse = planar.inverse_elements(group)
    order = planar.group_order(group)
    return np.array(
        [[table[h, inverse[g]] for h in range(order)] for g in range(order)]
    )


def expand_blocks(blocks: jax.Array, group: str, axis: int) -> jax.Array:
    """Expand relative blocks at `axis` to the full layout `K_{g,g'} = B_{g' g^-1}`.

    The block axis is replaced by the two axes `(g, g')`.
    """
    rel = relative_elements(group)
    full = jnp.take(blocks, rel.reshape(-1), axis=axis)
    shape = (*blocks.shape[:axis], *rel.shape, *blocks.shape[axis + 1 :])
    return full.reshape(shape)


def expand_kernel(kernel: nt.Kernel, group: str) -> nt.Kernel:
    """Expand a relative-layout group kernel to the full |G|^2 block layout."""

    def expand(x, axis):
        return None if x is None else expand_blocks(x, group, axis)

    return kernel.replace(
        nngp=expand(kernel.nngp, 2),
        ntk=expand(kernel.ntk, 2),
        cov1=expand(kernel.cov1, 1),
        cov2=expand(kernel.cov2, 1),
    )


@contextlib.contextmanager
def full_blocks():
    """Translate lifting layers to the full |G|^2 block layout inside this block."""
    token = _BLOCKS_IN_USE.set("full")
    try:
        yield
    finally:
        _BLOCKS_IN_USE.reset(token)


def derive_full_blocks(model) -> Twin:
    """Derive the twin of `model` storing all |G|^2 group blocks.

    Same kernels as `twins.derive`, at |G| times the memory and more compute;
    a reference for tests and for the memory comparison in the benchmark.
    """
    with full_blocks():
        return derive(model)


# Kernel operators on arrays whose trailing axes are (H, H', W, W').


def shift_conv(k: jax.Array, kernel_size: int, padding: str) -> jax.Array:
    """Return `C(k)(t, u) = (1/q^2) sum_y k(t + y, u + y)` on the trailing axes.

    The window sum factorizes over the (H, H') and (W, W') axis pairs, and
    each pair sums `q` diagonal shifts of the padded array.
    """
    lead = k.ndim - 4
    for axis in (lead, lead + 2):
        size = k.shape[axis]
        if padding == "VALID":
            pads, out = (0, 0), size - kernel_size + 1
        else:
            pads, out = same_pads(size, kernel_size, 1), size
        if pads != (0, 0):
            widths = [(0, 0)] * k.ndim
            widths[axis] = widths[axis + 1] = pads
            mode = "wrap" if padding == "CIRCULAR" else "constant"
            k = jnp.pad(k, widths, mode=mode)

        total = 0.0
        for shift in range(kernel_size):
            window = jax.lax.slice_in_dim(k, shift, shift + out, axis=axis)
            total = total + jax.lax.slice_in_dim(
                window, shift, shift + out, axis=axis + 1
            )
        k = total / kernel_size
    return k


def transform_second(k: jax.Array, group: str, element: int) -> jax.Array:
    """Apply `element` to the second-argument pixel axes (H', W') of `k`."""
    if element == 0:
        return k
    lead = k.ndim - 4
    swap = (*range(lead), lead, lead + 2, lead + 1, lead + 3)
    return planar.transform_images(k.transpose(swap), group, element).transpose(swap)


def rotated_conv(
    k: jax.Array, group: str, element: int, kernel_size: int, padding: str
) -> jax.Array:
    """Return `(1/q^2) sum_y k(t + y, t' + r . y)` for `r = element`.

    Computed as `transform_r(C(transform_{r^-1}(k)))` on the second-argument
    pixel axes, because `k(t + y, t' + r . y) = k~(t + y, r^-1 . t' + y)` with
    `k~(t, u) = k(t, r . u)`; pixel maps are taken about the image centre.
    """
    inverse = int(planar.inverse_elements(group)[element])
    k = transform_second(k, group, inverse)
    k = shift_conv(k, kernel_size, padding)
    return transform_second(k, group, element)


# The three kernel transformations behind each layer, on either block layout.


def _lift(k, batch_ndim, module, blocks):
    """Lifting: `B_r = A_r(K) = (1/q^2) sum_y K(t + y, t' + r . y)`."""
    # neural-tangents starts the NTK of the inputs as the scalar 0.
    if k is None or jnp.ndim(k) == 0:
        return k
    order = planar.group_order(module.group)

    def block(element):
        return rotated_conv(
            k, module.group, element, module.kernel_size, module.padding
        )

    if blocks == "relative":
        return jnp.stack([block(r) for r in range(order)], axis=batch_ndim)

    # Reference path: one operator per pair (g, g'), with r = g' g^-1.
    rel = relative_elements(module.group)
    rows = [
        jnp.stack([block(int(rel[g, h])) for h in range(order)], batch_ndim)
        for g in range(order)
    ]
    return jnp.stack(rows, batch_ndim)


def _group_conv(k, batch_ndim, module, blocks):
    """Group conv: `K'_{g,g'} = (1/|S|) sum_{h in S} A_{g'g^-1}(K_{gh,g'h})`.

    In the relative layout `K_{gh,g'h} = B_{g' g^-1}` for every `h`, so the
    support drops out: `B'_r = A_r(B_r)`.
    """
    if k is None or jnp.ndim(k) == 0:
        return k
    group, order = module.group, planar.group_order(module.group)
    q, padding = module.kernel_size, module.padding

    if blocks == "relative":
        moved = jnp.moveaxis(k, batch_ndim, 0)
        out = [rotated_conv(moved[r], group, r, q, padding) for r in range(order)]
        return jnp.stack(out, axis=batch_ndim)

    table = planar.multiplication_table(group)
    mean = 0.0
    for h in module.support:
        right = table[:, h]
        shifted = jnp.take(jnp.take(k, right, axis=batch_ndim), right, batch_ndim + 1)
        mean = mean + shifted / len(module.support)
    mean = jnp.moveaxis(jnp.moveaxis(mean, batch_ndim + 1, 0), batch_ndim + 1, 0)
    rel = relative_elements(group)
    rows = []
    for g in range(order):
        row = [
            rotated_conv(mean[g, h], group, int(rel[g, h]), q, padding)
            for h in range(order)
        ]
        rows.append(jnp.stack(row, batch_ndim))
    return jnp.stack(rows, batch_ndim)


@dataclasses.dataclass(frozen=True)
class _ConvSpec:
    """The static hyperparameters of a lifting or group conv, hashable for jit."""

    group: str
    kernel_size: int
    padding: str
    support: tuple[int, ...] | None
    W_std: float
    b_std: float | None

    @classmethod
    def of(cls, module) -> "_ConvSpec":
        return cls(
            module.group,
            module.kernel_size,
            module.padding,
            getattr(module, "support", None),
            module.W_std,
            module.b_std,
        )


def _propagate_linear(
    nngp, ntk, cov1, cov2, *, spec: _ConvSpec, blocks: str, lift: bool
):
    """Return `K' = W_std^2 A(K) + b_std^2` and `T' = K' + W_std^2 A(T)`.

    `K` stands for nngp, cov1 and cov2, `T` for the NTK.
    """
    transform = _lift if lift else _group_conv
    nngp = _affine(transform(nngp, 2, spec, blocks), spec)
    if ntk is not None:
        ntk = nngp + spec.W_std**2 * transform(ntk, 2, spec, blocks)
    cov1 = _affine(transform(cov1, 1, spec, blocks), spec)
    cov2 = _affine(transform(cov2, 1, spec, blocks), spec)
    return nngp, ntk, cov1, cov2


# Jitted with the layer's hyperparameters as static arguments, so every twin
# with the same layer and kernel shapes reuses one compiled function. The
# full-block reference runs op by op: its |G|^2 unrolled blocks compile slowly.
_propagate_linear_jit = jax.jit(
    _propagate_linear, static_argnames=("spec", "blocks", "lift")
)


def _affine(k, module):
    if k is None:
        return None
    k = module.W_std**2 * k
    if module.b_std is not None:
        k = k + module.b_std**2
    return k


def _check_kernel(k: nt.Kernel, name: str) -> None:
    if k.diagonal_spatial or not k.diagonal_batch:
        raise NotImplementedError(
            f"The {name} twin needs `diagonal_spatial=False` and "
            f"`diagonal_batch=True`, got {k.diagonal_spatial} and {k.diagonal_batch}; "
            "call kernel_fn without these arguments."
        )
    if k.mask1 is not None or k.mask2 is not None:
        raise NotImplementedError(f"The {name} twin does not support masked inputs.")


def _unreverse(x, batch_ndim):
    """Undo neural-tangents' lazy reversal of the spatial pairs (W, W', H, H')."""
    if x is None:
        return None
    order = (
        *range(batch_ndim),
        batch_ndim + 2,
        batch_ndim + 3,
        batch_ndim,
        batch_ndim + 1,
    )
    return x.transpose(order)


def _linear_layer(module, blocks: str, lift: bool) -> NTLayer:
    """Twin of a lifting (`lift=True`) or group convolution as an NT triple."""
    spec = _ConvSpec.of(module)
    name = type(module).__qualname__

    @stax.requires(**_GROUP_REQUIREMENTS)
    def kernel_fn(k: nt.Kernel, **kwargs) -> nt.Kernel:
        _check_kernel(k, name)
        cov1, nngp, cov2, ntk = k.cov1, k.nngp, k.cov2, k.ntk
        if lift and (nngp.ndim != 6 or nngp.shape[2] != nngp.shape[4]):
            raise ValueError(
                f"{name} needs the kernel of square images, shape (N1, N2, H, H', "
                f"W, W') with H == W, got {nngp.shape}; crop or resize the images "
                "to equal height and width."
            )
        if lift and k.is_reversed:
            cov1, cov2 = _unreverse(cov1, 1), _unreverse(cov2, 1)
            nngp, ntk = _unreverse(nngp, 2), _unreverse(ntk, 2)

        side = nngp.shape[-1]
        if module.padding == "VALID" and module.kernel_size > side:
            raise ValueError(
                f"{name} with padding 'VALID' needs feature maps of side >= "
                f"`kernel_size` (={module.kernel_size}), got side {side}."
            )

        propagate = _propagate_linear_jit if blocks == "relative" else _propagate_linear
        nngp, ntk, cov1, cov2 = propagate(
            nngp, ntk, cov1, cov2, spec=spec, blocks=blocks, lift=lift
        )

        # After a lifting conv the image shape is the output's spatial shape.
        spatial = nngp.shape[-1]
        shape1 = (k.shape1[0], module.out_channels, planar.group_order(module.group))
        return k.replace(
            nngp=nngp,
            ntk=ntk,
            cov1=cov1,
            cov2=cov2,
            is_gaussian=True,
            is_reversed=False,
            is_input=False,
            shape1=(*shape1, spatial, spatial),
            shape2=(k.shape2[0], *shape1[1:], spatial, spatial),
            batch_axis=0,
            channel_axis=1,
        )

    return unused_init, unused_apply, kernel_fn


def _pointwise_layer(layer: NTLayer, layout: GroupLayout) -> NTLayer:
    """Wrap an NT elementwise layer so it acts on every block of a group kernel."""
    _, _, nt_kernel_fn = layer
    order = planar.group_order(layout.group)
    diagonal = np.arange(order)

    def call(k, nngp, ntk, var1, var2):
        # var1 (M1, ...) and var2 (M2, ...) contain the variances behind each
        # row and column of nngp (M1, M2, ...). NOTE: this relies on the
        # elementwise layers of neural-tangents 0.6.5 reading cov1 and cov2
        # only through their diagonals (`get_diagonal_outer_prods`).
        side = nngp.shape[-1]
        channels = k.shape1[1]
        sub = k.replace(
            nngp=nngp,
            ntk=ntk,
            cov1=var1,
            cov2=var2,
            shape1=(var1.shape[0], channels, side, side),
            shape2=(var2.shape[0], channels, side, side),
            is_reversed=False,
            batch_axis=0,
            channel_axis=1,
        )
        out = nt_kernel_fn(sub)
        return out.nngp, out.ntk

    def fold_relative(k):
        n1, n2 = k.nngp.shape[:2]
        spatial = k.nngp.shape[3:]
        cov2 = k.cov1 if k.cov2 is None else k.cov2
        var1, var2 = k.cov1[:, 0], jnp.repeat(cov2[:, 0], order, axis=0)

        def fold(x):
            return None if x is None else x.reshape(n1, n2 * order, *spatial)

        nngp, ntk = call(k, fold(k.nngp), fold(k.ntk), var1, var2)
        unfold = (n1, n2, order, *spatial)
        nngp = nngp.reshape(unfold)
        ntk = None if ntk is None else ntk.reshape(unfold)

        def covariance(blocks):
            # Blocks B_r(x, x) of one example, shape (|G|, ...).
            if blocks is None:
                return None
            var = blocks[:1]
            return call(k, blocks[None], None, var, jnp.repeat(var, order, 0))[0][0]

        return (
            nngp,
            ntk,
            jax.vmap(covariance)(k.cov1),
            _vmap_or_none(covariance, k.cov2),
        )

    def fold_full(k):
        n1, n2 = k.nngp.shape[:2]
        spatial = k.nngp.shape[4:]
        cov2 = k.cov1 if k.cov2 is None else k.cov2
        var1 = k.cov1[:, diagonal, diagonal].reshape(n1 * order, *spatial)
        var2 = cov2[:, diagonal, diagonal].reshape(n2 * order, *spatial)

        def fold(x):
            if x is None:
                return None
            x = x.transpose(0, 2, 1, 3, *range(4, x.ndim))
            return x.reshape(n1 * order, n2 * order, *spatial)

        def unfold(x):
            if x is None:
                return None
            x = x.reshape(n1, order, n2, order, *spatial)
            return x.transpose(0, 2, 1, 3, *range(4, x.ndim))

        nngp, ntk = call(k, fold(k.nngp), fold(k.ntk), var1, var2)

        def covariance(blocks):
            # Blocks K_{g,g'}(x, x) of one example, shape (|G|, |G|, ...).
            var = blocks[diagonal, diagonal]
            return call(k, blocks, None, var, var)[0]

        return (
            unfold(nngp),
            unfold(ntk),
            jax.vmap(covariance)(k.cov1),
            _vmap_or_none(covariance, k.cov2),
        )

    fold = fold_relative if layout.blocks == "relative" else fold_full

    @stax.requires(diagonal_spatial=stax.Diagonal())
    def kernel_fn(k: nt.Kernel, **kwargs) -> nt.Kernel:
        if not k.is_gaussian:
            raise ValueError(
                "The input to a nonlinearity must be Gaussian; put a lifting or "
                "group convolution before it."
            )
        nngp, ntk, cov1, cov2 = fold(k)
        return k.replace(nngp=nngp, ntk=ntk, cov1=cov1, cov2=cov2, is_gaussian=False)

    return unused_init, unused_apply, kernel_fn


def _vmap_or_none(fn, x):
    return None if x is None else jax.vmap(fn)(x)


def _pool_layer(module: planar.GroupPool, layout: GroupLayout) -> NTLayer:
    """Twin of `GroupPool`: mean of the kernel over (g, g') and, if pooled, (t, t').

    With |G| pairs per relative element, the mean over (g, g') is the mean of
    the blocks `B_r` over `r`.
    """
    group_axes = 1 if layout.blocks == "relative" else 2
    keep_space = module.over == "group"

    def pool(x, batch_ndim):
        if x is None:
            return None
        x = jnp.mean(x, axis=tuple(range(batch_ndim, batch_ndim + group_axes)))
        if not keep_space:
            x = jnp.mean(x, axis=tuple(range(batch_ndim, x.ndim)))
        return x

    requirements = dict(_GROUP_REQUIREMENTS)
    requirements["diagonal_spatial"] = stax.Diagonal(input=stax.Bool.NO)

    @stax.requires(**requirements)
    def kernel_fn(k: nt.Kernel, **kwargs) -> nt.Kernel:
        _check_kernel(k, "GroupPool")
        shape1, shape2 = k.shape1[:2], k.shape2[:2]
        if keep_space:
            shape1, shape2 = (*shape1, *k.shape1[3:]), (*shape2, *k.shape2[3:])
        return k.replace(
            nngp=pool(k.nngp, 2),
            ntk=pool(k.ntk, 2),
            cov1=pool(k.cov1, 1),
            cov2=pool(k.cov2, 1),
            is_reversed=False,
            shape1=shape1,
            shape2=shape2,
            batch_axis=0,
            channel_axis=1,
        )

    return unused_init, unused_apply, kernel_fn


def _require_group(module, layout: Layout, group: str | None) -> GroupLayout:
    name = type(module).__qualname__
    if not isinstance(layout, GroupLayout):
        raise TypeError(
            f"{name} takes feature maps on a group, but its input here is "
            f"{layout.describe()}; put a LiftingConv2d before it."
        )
    if group is not None and layout.group != group:
        raise TypeError(
            f"{name} acts on {group}, but its input is {layout.describe()}; use the "
            "same `group` for every layer of a group CNN."
        )
    return layout


@register_rule(planar.LiftingConv2d)
def lifting_conv_rule(module: planar.LiftingConv2d, layout: Layout):
    """`B_r(t, t') = W_std^2 / q^2 sum_y K(t + y, t' + r . y) + b_std^2`.

    The NTK follows `T'_r = B_r + W_std^2 / q^2 sum_y T(t + y, t' + r . y)`.
    """
    if layout != PLAIN:
        raise TypeError(
            f"LiftingConv2d takes images, but its input here is {layout.describe()}; "
            "follow a lifting layer with GroupConv2d, not another lifting layer."
        )
    blocks = _BLOCKS_IN_USE.get()
    layer = _linear_layer(module, blocks, lift=True)
    return layer, GroupLayout(module.group, blocks)


@register_rule(planar.GroupConv2d)
def group_conv_rule(module: planar.GroupConv2d, layout: Layout):
    """`B'_r(t, t') = W_std^2 / q^2 sum_y B_r(t + y, t' + r . y) + b_std^2`.

    The support `S` cancels against the fan_in `c |S| q^2`; the full layout
    computes `(1/|S|) sum_{h in S} A_{g'g^-1}(K_{gh,g'h})` instead.
    """
    layout = _require_group(module, layout, module.group)
    return _linear_layer(module, layout.blocks, lift=False), layout


@register_rule(planar.GroupPool)
def group_pool_rule(module: planar.GroupPool, layout: Layout):
    """`K' = mean_{r,t,t'} B_r(t, t')`, or `K'(t, t') = mean_r B_r(t, t')`."""
    layout = _require_group(module, layout, None)
    return _pool_layer(module, layout), PLAIN
