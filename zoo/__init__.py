"""Equinox layers and models in the NTK parameterization; knows nothing of twins."""

from zoo.containers import Parallel, Residual, Sequential
from zoo.models import cnn, mlp
from zoo.plain import (
    ABRelu,
    Conv2d,
    Dense,
    Erf,
    Flatten,
    Gelu,
    GlobalAvgPool,
    Identity,
    LeakyRelu,
    Relu,
)

__all__ = [
    "ABRelu",
    "Conv2d",
    "Dense",
    "Erf",
    "Flatten",
    "Gelu",
    "GlobalAvgPool",
    "Identity",
    "LeakyRelu",
    "Parallel",
    "Relu",
    "Residual",
    "Sequential",
    "cnn",
    "mlp",
]
