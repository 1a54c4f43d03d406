"""Group CNNs on C4 and D4 whose finite kernels must converge to their twins.

Together the cases use every layer of `zoo.planar` with every padding, the
three kinds of rotation support, both groups and both pooling modes.
"""

import jax

import zoo
from tests.harness import ConvergenceCase

# Many output channels make the Monte-Carlo NNGP estimate precise; the same
# count as the plain cases, kept here so that either file imports first.
OUTPUTS = 2048


def _c4_circular_all(width, key):
    keys = jax.random.split(key, 3)
    return zoo.Sequential(
        [
            zoo.LiftingConv2d(
                3, width, 3, group="C4", padding="CIRCULAR", b_std=0.05, key=keys[0]
            ),
            zoo.Relu(),
            zoo.GroupConv2d(
                width, width, 1, group="C4", support="all", b_std=0.1, key=keys[1]
            ),
            zoo.Relu(),
            zoo.GroupPool("group_and_space"),
            zoo.Dense(width, OUTPUTS, key=keys[2]),
        ]
    )


def _d4_same_identity_pool_group(width, key):
    keys = jax.random.split(key, 4)
    return zoo.Sequential(
        [
            zoo.LiftingConv2d(
                3, width, 3, group="D4", padding="SAME", b_std=0.1, key=keys[0]
            ),
            zoo.Erf(),
            zoo.GroupConv2d(
                width,
                width,
                3,
                group="D4",
                support="identity",
                padding="SAME",
                W_std=1.3,
                key=keys[1],
            ),
            zoo.Relu(),
            # Pooling over the group alone leaves an image for plain layers.
            zoo.GroupPool("group"),
            zoo.Conv2d(width, width, 3, padding="SAME", key=keys[2]),
            zoo.Relu(),
            zoo.GlobalAvgPool(),
            zoo.Dense(width, OUTPUTS, key=keys[3]),
        ]
    )


def _c4_valid_partial_support(width, key):
    keys = jax.random.split(key, 3)
    return zoo.Sequential(
        [
            zoo.LiftingConv2d(3, width, 2, group="C4", padding="VALID", key=keys[0]),
            zoo.Relu(),
            zoo.GroupConv2d(
                width,
                width,
                2,
                group="C4",
                support=(0, 3),
                padding="VALID",
                b_std=0.2,
                key=keys[1],
            ),
            zoo.Relu(),
            zoo.GroupPool("group_and_space"),
            zoo.Dense(width, OUTPUTS, key=keys[2]),
        ]
    )


def _d4_global_lifting(width, key):
    keys = jax.random.split(key, 3)
    return zoo.Sequential(
        [
            # A lifting filter as large as the image with VALID padding is global.
            zoo.LiftingConv2d(3, width, 4, group="D4", padding="VALID", key=keys[0]),
            zoo.Relu(),
            zoo.GroupConv2d(
                width, width, 1, group="D4", support=(0, 2, 5), key=keys[1]
            ),
            zoo.Relu(),
            zoo.GroupPool(),
            zoo.Dense(width, OUTPUTS, key=keys[2]),
        ]
    )


# Images of side 3 and 4 keep each group CNN cheap enough for the fast default run;
# group kernels average over |G| blocks and pixels, so few samples suffice there.
PLANAR_CASES = [
    ConvergenceCase(
        "c4_circular_support_all", _c4_circular_all, (3, 4, 4), fast_samples=4
    ),
    ConvergenceCase(
        "d4_same_identity_pool_group",
        _d4_same_identity_pool_group,
        (3, 3, 3),
        fast_samples=4,
    ),
    ConvergenceCase(
        "c4_valid_partial_support", _c4_valid_partial_support, (3, 4, 4), fast_samples=4
    ),
    # Without pixels to average over, this case fluctuates like an MLP.
    ConvergenceCase("d4_global_lifting", _d4_global_lifting, (3, 4, 4), fast_samples=8),
]
