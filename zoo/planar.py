"""Roto-translation groups of the pixel grid: C4 and D4 (p4 and p4m).

Group elements are indexed `0 .. order - 1`. Element `k` of C4 is a rotation
by `k` quarter turns counterclockwise about the image centre. D4 adds the
reflections: element `k >= 4` first flips the image along its width axis,
then rotates it by `k - 4` quarter turns.
"""

import jax.numpy as jnp
from jaxtyping import Array

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
        raise ValueError(f"`element` (={element}) must lie in 0..{order - 1} for {group}.")
    if x.ndim < 2 or x.shape[-1] != x.shape[-2]:
        raise ValueError(
            f"{group} acts on square images, got trailing shape {x.shape[-2:]}; "
            "crop or resize the images to equal height and width."
        )

    if element >= 4:
        x = jnp.flip(x, axis=-1)
    return jnp.rot90(x, element % 4, axes=(-2, -1))
