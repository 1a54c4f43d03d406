"""Infinite-width twins of zoo models: exact NNGP and NTK kernels.

`twins.derive(model).kernel_fn` is a neural-tangents kernel function, usable
with `neural_tangents.predict` and `neural_tangents.batch`. Importing twins
switches on JAX's float64 mode (kernel solves run in float64).
"""

from twins._nt import nt, stax
from twins.core import (
    PLAIN,
    Layout,
    Twin,
    derive,
    register_rule,
    registered_types,
    to_stax,
)
from twins import plain as _plain_rules  # noqa: F401  (registers the rules)
from twins import planar as _planar_rules  # noqa: F401  (registers the rules)

__all__ = [
    "PLAIN",
    "Layout",
    "Twin",
    "derive",
    "nt",
    "register_rule",
    "registered_types",
    "stax",
    "to_stax",
]
