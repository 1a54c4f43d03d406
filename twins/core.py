"""The translator: walk a zoo model and compose one twin rule per module.

A rule maps one zoo module to a neural-tangents layer, the triple
`(init_fn, apply_fn, kernel_fn)`, whose `kernel_fn` propagates the NNGP and
NTK through that module. The translator composes the triples with
`stax.serial`, so the result is a neural-tangents kernel function.

Rules also carry a `Layout`: how the kernel of the features at that point is
stored. Plain features use neural-tangents' own layout. Group feature maps
use layouts that later rule files define (see `twins.planar`), and a
pointwise nonlinearity calls the current layout to adapt its layer.
"""

import dataclasses
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from twins._nt import nt, stax
from zoo import plain

NTLayer = tuple[Callable, Callable, Callable]


@dataclasses.dataclass(frozen=True)
class Layout:
    """Storage scheme of the twin's kernel for the features at one point of a model.

    The base layout is neural-tangents' own: `nngp` has shape
    `(N1, N2, *spatial pairs)`, pairs interleaved as `(H, H', W, W')`.
    """

    def pointwise(self, layer: NTLayer) -> NTLayer:
        """Adapt a neural-tangents elementwise layer to this layout."""
        return layer

    def describe(self) -> str:
        return "plain features"


PLAIN = Layout()

Rule = Callable[[Any, Layout], tuple[NTLayer, Layout]]
_RULES: dict[type, Rule] = {}


def register_rule(module_type: type) -> Callable[[Rule], Rule]:
    """Register `rule(module, layout) -> (nt_layer, layout_out)` for `module_type`.

    Example:

    ```python
    @twins.register_rule(MyLayer)
    def my_layer_rule(module, layout):
        return stax.Dense(module.out_features, W_std=module.W_std), layout
    ```
    """

    def decorate(rule: Rule) -> Rule:
        if module_type in _RULES:
            raise ValueError(
                f"A twin rule for {module_type.__qualname__} exists already."
            )
        _RULES[module_type] = rule
        return rule

    return decorate


def registered_types() -> tuple[type, ...]:
    """Return every module type that has a twin rule."""
    return tuple(_RULES)


def to_stax(module: Any, layout: Layout = PLAIN) -> tuple[NTLayer, Layout]:
    """Translate `module` into a neural-tangents layer and the layout it outputs."""
    rule = _RULES.get(type(module))
    if rule is None:
        name = f"{type(module).__module__}.{type(module).__qualname__}"
        raise TypeError(
            f"No twin rule for module type {name}. Register one with "
            f"`@twins.register_rule({type(module).__qualname__})` on a function "
            "`rule(module, layout) -> ((init_fn, apply_fn, kernel_fn), layout)`."
        )
    return rule(module, layout)


def unused_apply(*args, **kwargs):
    """Stand-in `apply_fn` for twin layers: finite networks are the zoo models."""
    raise NotImplementedError(
        "A twin computes kernels only; run the finite network with the zoo model."
    )


def unused_init(rng, input_shape):
    """Stand-in `init_fn` for twin layers: finite networks are the zoo models."""
    raise NotImplementedError(
        "A twin computes kernels only; initialise the finite network with the zoo model."
    )


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """The example rank and channel count that a model's first layer takes."""

    rank: int
    channels: int
    layer_name: str

    def describe(self) -> str:
        if self.rank == 1:
            return f"(N, {self.channels})"
        return f"(N, {self.channels}, height, width)"


# Leaf layers that keep an example's shape, so the input check looks past them.
_SHAPE_PRESERVING = (
    plain.Relu,
    plain.ABRelu,
    plain.LeakyRelu,
    plain.Erf,
    plain.Gelu,
    plain.Identity,
)
_UNKNOWN = object()


def input_spec(module: Any) -> InputSpec | None:
    """Find the input shape of the first layer with `in_features` or `in_channels`.

    Returns `None` when a layer that changes the shape, such as `Flatten`,
    comes first: the model's input shape is then not known in advance.
    """
    spec = _first_input_spec(module)
    return None if spec is _UNKNOWN else spec


def _first_input_spec(module: Any):
    if isinstance(getattr(module, "in_features", None), int):
        return InputSpec(1, module.in_features, type(module).__qualname__)
    if isinstance(getattr(module, "in_channels", None), int):
        return InputSpec(3, module.in_channels, type(module).__qualname__)

    children = _child_modules(module)
    if not children:
        return None if isinstance(module, _SHAPE_PRESERVING) else _UNKNOWN
    for child in children:
        spec = _first_input_spec(child)
        if spec is not None:
            return spec
    return None


def _child_modules(module: Any) -> list:
    if not dataclasses.is_dataclass(module):
        return []
    children = []
    for field in dataclasses.fields(module):
        value = getattr(module, field.name, None)
        values = value if isinstance(value, (tuple, list)) else (value,)
        children.extend(child for child in values if isinstance(child, eqx.Module))
    return children


def _check_input(name: str, x: Any, spec: InputSpec | None) -> None:
    """Reject inputs of the wrong shape, and NaN or infinite values when concrete."""
    if x is None or isinstance(x, nt.Kernel):
        return
    shape = tuple(np.shape(x))
    if spec is not None and (len(shape) != spec.rank + 1 or shape[1] != spec.channels):
        hint = "; images are channels first." if spec.rank > 1 else "."
        raise ValueError(
            f"`{name}` has shape {shape}, but the model's first layer "
            f"({spec.layer_name}) takes batches of shape {spec.describe()}{hint}"
        )
    if isinstance(x, jax.core.Tracer):
        return
    values = np.asarray(x)
    if not np.all(np.isfinite(values)):
        count = int(np.size(values) - np.count_nonzero(np.isfinite(values)))
        raise ValueError(
            f"`{name}` contains {count} NaN or infinite values; clean the data "
            "before computing kernels."
        )


@dataclasses.dataclass(frozen=True)
class Twin:
    """The infinite-width twin of a zoo model.

    `kernel_fn(x1, x2=None, get=None, **kwargs)` behaves like a
    neural-tangents kernel function: `get` is `"nngp"`, `"ntk"`, a tuple of
    both, or `None` for the whole `nt.Kernel`. Inputs are batches
    `(N, *example_shape)` with the example shape the zoo model takes.
    """

    stax_layer: NTLayer
    layout: Layout
    model_name: str
    inputs: InputSpec | None = None

    def kernel_fn(self, x1, x2=None, get=None, **kwargs):
        _check_input("x1", x1, self.inputs)
        _check_input("x2", x2, self.inputs)
        _check_same_example_shape(x1, x2)
        _check_get(get)
        return self.stax_layer[2](x1, x2, get, **kwargs)


KERNEL_FIELDS = tuple(field.name for field in dataclasses.fields(nt.Kernel))


def _check_get(get) -> None:
    names = (get,) if isinstance(get, str) else (get or ())
    unknown = [name for name in names if name not in KERNEL_FIELDS]
    if unknown:
        raise ValueError(
            f"`get` (={get!r}) names unknown kernel fields {unknown}; use "
            "'nngp', 'ntk', a tuple of them, or None for the whole nt.Kernel."
        )


def _check_same_example_shape(x1, x2) -> None:
    if x2 is None or isinstance(x1, nt.Kernel) or isinstance(x2, nt.Kernel):
        return
    shape1, shape2 = tuple(np.shape(x1))[1:], tuple(np.shape(x2))[1:]
    if shape1 != shape2:
        raise ValueError(
            f"`x1` examples have shape {shape1} but `x2` examples have shape "
            f"{shape2}; a twin compares examples of one shape, so resize them."
        )


def derive(model: eqx.Module) -> Twin:
    """Derive the infinite-width twin (exact NNGP and NTK) of a zoo model.

    Raises:
        TypeError: if a module in `model` has no registered twin rule.
    """
    layer, layout = to_stax(model, PLAIN)
    if layout != PLAIN:
        raise ValueError(
            f"The model ends on {layout.describe()}; end it with a pooling layer "
            "so that its output is an ordinary vector or image."
        )
    # `stax.serial` of one layer wraps it with neural-tangents' input handling.
    layer = stax.serial(layer)
    return Twin(layer, layout, type(model).__qualname__, input_spec(model))


def float64(x) -> jnp.ndarray:
    """Cast an array to float64, the dtype of every kernel solve."""
    return jnp.asarray(x, dtype=jnp.float64)
