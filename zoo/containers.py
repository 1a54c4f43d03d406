"""Containers that compose zoo layers: stacks, residual sums, parallel branches."""

from collections.abc import Sequence
from typing import Literal

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array

from zoo.plain import Identity


class Sequential(eqx.Module):
    """Apply `layers` one after another."""

    layers: tuple[eqx.Module, ...]

    def __init__(self, layers: Sequence[eqx.Module]):
        self.layers = tuple(layers)

    def __call__(self, x: Array, *, key=None) -> Array:
        for layer in self.layers:
            x = layer(x)
        return x


class Parallel(eqx.Module):
    """Apply every branch to the same input and sum or concatenate the outputs.

    `combine="concat"` concatenates along the channel axis (axis 0 of one
    example). The twin weights each branch's kernel by its channel count.
    """

    branches: tuple[eqx.Module, ...]
    combine: str = eqx.field(static=True)

    def __init__(
        self, branches: Sequence[eqx.Module], combine: Literal["sum", "concat"] = "sum"
    ):
        if combine not in ("sum", "concat"):
            raise ValueError(f"`combine` (={combine!r}) must be 'sum' or 'concat'.")
        if len(branches) < 1:
            raise ValueError("`branches` is empty; give at least one module.")
        self.branches = tuple(branches)
        self.combine = combine

    def __call__(self, x: Array, *, key=None) -> Array:
        outputs = [branch(x) for branch in self.branches]
        if self.combine == "sum":
            shapes = {y.shape for y in outputs}
            if len(shapes) > 1:
                raise ValueError(
                    f"Parallel(combine='sum') needs equal branch output shapes, "
                    f"got {sorted(shapes)}."
                )
            return sum(outputs[1:], outputs[0])
        return jnp.concatenate(outputs, axis=0)


class Residual(eqx.Module):
    """Residual sum `branch(x) + shortcut(x)`; the shortcut defaults to identity."""

    branch: eqx.Module
    shortcut: eqx.Module

    def __init__(self, branch: eqx.Module, shortcut: eqx.Module | None = None):
        self.branch = branch
        self.shortcut = Identity() if shortcut is None else shortcut

    def __call__(self, x: Array, *, key=None) -> Array:
        y = self.branch(x)
        skip = self.shortcut(x)
        if y.shape != skip.shape:
            raise ValueError(
                f"Residual branch output {y.shape} differs from shortcut output "
                f"{skip.shape}; give a shortcut that maps to the branch's shape."
            )
        return y + skip
