"""Equinox layers and models in the NTK parameterization, free of twin code."""

from zoo.containers import Parallel, Residual, Sequential
from zoo.models import cnn, mlp
from zoo.planar import (
    GroupConv2d,
    GroupPool,
    LiftingConv2d,
    c4_cnn,
    d4_cnn,
    group_cnn,
)
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
    "GroupConv2d",
    "GroupPool",
    "Identity",
    "LeakyRelu",
    "LiftingConv2d",
    "Parallel",
    "Relu",
    "Residual",
    "Sequential",
    "c4_cnn",
    "cnn",
    "d4_cnn",
    "group_cnn",
    "mlp",
]
