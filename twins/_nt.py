"""The one place that imports neural-tangents and sets up JAX for twins.

neural-tangents 0.6.5 imports its TensorFlow bridge `neural_tangents.experimental`
eagerly. twinzoo never uses that bridge, and the lock file keeps TensorFlow out
of the environment, so an empty module replaces it before the import.
Twin kernels and kernel solves run in float64, so x64 is switched on here.
"""

import importlib.util
import sys
import types

import jax

jax.config.update("jax_enable_x64", True)

if importlib.util.find_spec("tensorflow") is None:
    sys.modules.setdefault(
        "neural_tangents.experimental", types.ModuleType("neural_tangents.experimental")
    )

import neural_tangents as nt
from neural_tangents import stax

__all__ = ["nt", "stax"]
