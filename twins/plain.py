"""Twin rules for the plain zoo layers and the containers.

Each rule reuses the neural-tangents layer with the same math, configured for
the zoo's channels-first layout: `(N, C)` vectors and `(N, C, H, W)` images.
"""

from twins._nt import stax
from twins.core import PLAIN, Layout, register_rule, to_stax, unused_apply, unused_init
from zoo import containers, plain

# Inputs to a twin are batches of the zoo's channels-first examples.
CHANNEL_AXIS = 1


@register_rule(plain.Dense)
def dense_rule(module: plain.Dense, layout: Layout):
    """K' = W_std^2 K + b_std^2 on the channel axis; T' = K' + W_std^2 T."""
    _require_plain(module, layout)
    layer = stax.Dense(
        module.out_features,
        W_std=module.W_std,
        b_std=module.b_std,
        channel_axis=CHANNEL_AXIS,
    )
    return layer, layout


@register_rule(plain.Conv2d)
def conv2d_rule(module: plain.Conv2d, layout: Layout):
    """K'(t, t') = W_std^2 / q^2 sum_y K(t + y, t' + y) + b_std^2, and T likewise."""
    _require_plain(module, layout)
    layer = stax.Conv(
        module.out_channels,
        (module.kernel_size, module.kernel_size),
        strides=(module.stride, module.stride),
        padding=module.padding,
        W_std=module.W_std,
        b_std=module.b_std,
        dimension_numbers=("NCHW", "OIHW", "NCHW"),
    )
    return layer, layout


@register_rule(plain.Relu)
def relu_rule(module, layout: Layout):
    return layout.pointwise(stax.Relu()), layout


@register_rule(plain.ABRelu)
def abrelu_rule(module: plain.ABRelu, layout: Layout):
    return layout.pointwise(stax.ABRelu(module.a, module.b)), layout


@register_rule(plain.LeakyRelu)
def leaky_relu_rule(module: plain.LeakyRelu, layout: Layout):
    return layout.pointwise(stax.LeakyRelu(module.alpha)), layout


@register_rule(plain.Erf)
def erf_rule(module: plain.Erf, layout: Layout):
    return layout.pointwise(stax.Erf(module.a, module.b, module.c)), layout


@register_rule(plain.Gelu)
def gelu_rule(module: plain.Gelu, layout: Layout):
    return layout.pointwise(stax.Gelu(module.approximate)), layout


@register_rule(plain.GlobalAvgPool)
def global_avg_pool_rule(module, layout: Layout):
    """Mean of K and T over all pairs of spatial positions."""
    _require_plain(module, layout)
    return stax.GlobalAvgPool(channel_axis=CHANNEL_AXIS), layout


@register_rule(plain.Flatten)
def flatten_rule(module, layout: Layout):
    """Mean of K and T over equal spatial positions (the spatial diagonal)."""
    _require_plain(module, layout)
    return stax.Flatten(), layout


@register_rule(plain.Identity)
def identity_rule(module, layout: Layout):
    return stax.Identity(), layout


@register_rule(containers.Sequential)
def sequential_rule(module: containers.Sequential, layout: Layout):
    layers = []
    for child in module.layers:
        layer, layout = to_stax(child, layout)
        layers.append(layer)
    return stax.serial(*layers), layout


@register_rule(containers.Parallel)
def parallel_rule(module: containers.Parallel, layout: Layout):
    """Sum of the branch kernels, or their channel-weighted mean for a concat."""
    layers, layouts = [], []
    for branch in module.branches:
        layer, branch_layout = to_stax(branch, layout)
        layers.append(layer)
        layouts.append(branch_layout)
    layout_out = _common_layout(module, layouts)

    if module.combine == "sum":
        combine = branch_sum()
    else:
        _require_plain(module, layout_out)
        combine = stax.FanInConcat(axis=CHANNEL_AXIS)
    layer = stax.serial(stax.FanOut(len(layers)), stax.parallel(*layers), combine)
    return layer, layout_out


@register_rule(containers.Residual)
def residual_rule(module: containers.Residual, layout: Layout):
    """K' = K_branch + K_shortcut, and T likewise (independent weights)."""
    branch, branch_layout = to_stax(module.branch, layout)
    shortcut, shortcut_layout = to_stax(module.shortcut, layout)
    layout_out = _common_layout(module, [branch_layout, shortcut_layout])
    layer = stax.serial(stax.FanOut(2), stax.parallel(branch, shortcut), branch_sum())
    return layer, layout_out


def branch_sum() -> tuple:
    """Sum the kernels of parallel branches: K' = sum_i K_i and T' = sum_i T_i.

    The cross terms between two branches vanish in the infinite-width limit
    when one of them ends on a layer with fresh zero-mean weights (a Gaussian
    output), so every branch but at most one must end on such a layer.
    neural-tangents' `FanInSum` demands it of every branch, which rules out
    the identity shortcut of a residual block.
    """

    @stax.requires()
    def kernel_fn(kernels, **kwargs):
        non_gaussian = sum(not k.is_gaussian for k in kernels)
        if non_gaussian > 1:
            raise ValueError(
                f"{non_gaussian} of {len(kernels)} summed branches end on a "
                "nonlinearity or an identity; end every branch but one on a "
                "Dense or Conv layer, as in a pre-activation residual block."
            )

        def add(name):
            values = [getattr(k, name) for k in kernels]
            if any(value is None for value in values):
                return None
            return sum(values[1:], values[0])

        return kernels[0].replace(
            nngp=add("nngp"),
            ntk=add("ntk"),
            cov1=add("cov1"),
            cov2=add("cov2"),
            is_gaussian=non_gaussian == 0,
        )

    return unused_init, unused_apply, kernel_fn


def _require_plain(module, layout: Layout) -> None:
    if layout != PLAIN:
        raise TypeError(
            f"{type(module).__qualname__} has a twin rule for plain features only, "
            f"but its input here is {layout.describe()}; pool over the group first "
            "or use the group version of the layer."
        )


def _common_layout(module, layouts: list[Layout]) -> Layout:
    if any(other != layouts[0] for other in layouts[1:]):
        described = ", ".join(layout.describe() for layout in layouts)
        raise TypeError(
            f"The branches of {type(module).__qualname__} end on different kernel "
            f"layouts ({described}); make every branch end on the same layout."
        )
    return layouts[0]
