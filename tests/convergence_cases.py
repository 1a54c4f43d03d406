"""Model families whose finite kernels must converge to their twins.

Together the cases must use every module type that has a twin rule; the
coverage test in `test_convergence.py` fails otherwise. Add the cases for a
new rule file to `CASES` at the bottom.
"""

import jax

import zoo
from tests.harness import ConvergenceCase

# Many output channels make the Monte-Carlo NNGP estimate precise.
OUTPUTS = 2048


def _mlp(width, key):
    return zoo.mlp(6, [width, width], OUTPUTS, activation=zoo.Relu, key=key)


def _mlp_erf_gelu(width, key):
    keys = jax.random.split(key, 3)
    return zoo.Sequential(
        [
            zoo.Dense(6, width, W_std=1.2, b_std=0.1, key=keys[0]),
            zoo.Erf(),
            zoo.Dense(width, width, W_std=1.3, b_std=None, key=keys[1]),
            zoo.Gelu(),
            zoo.Dense(width, OUTPUTS, W_std=1.0, b_std=0.2, key=keys[2]),
        ]
    )


def _mlp_leaky_parallel(width, key):
    keys = jax.random.split(key, 5)
    branches = zoo.Parallel(
        [
            zoo.Sequential([zoo.ABRelu(-0.5, 1.5), zoo.Dense(width, width, key=keys[1])]),
            zoo.Sequential([zoo.LeakyRelu(0.1), zoo.Dense(width, width // 2, key=keys[2])]),
        ],
        combine="concat",
    )
    return zoo.Sequential(
        [
            zoo.Dense(6, width, b_std=0.1, key=keys[0]),
            branches,
            # A concatenation mixes two channel distributions, so a Dense layer
            # must come before the next nonlinearity.
            zoo.Dense(width + width // 2, OUTPUTS, key=keys[3]),
        ]
    )


def _cnn_residual(width, key):
    return zoo.cnn(3, [width, width], OUTPUTS, residual=True, padding="CIRCULAR", key=key)


def _cnn_flatten(width, key):
    keys = jax.random.split(key, 4)
    return zoo.Sequential(
        [
            zoo.Conv2d(3, width, 3, padding="SAME", b_std=0.1, key=keys[0]),
            zoo.Relu(),
            zoo.Conv2d(width, width, 2, stride=2, padding="VALID", key=keys[1]),
            zoo.Relu(),
            zoo.Flatten(),
            zoo.Dense(width * 3 * 3, OUTPUTS, key=keys[2]),
        ]
    )


def _cnn_parallel_sum(width, key):
    keys = jax.random.split(key, 5)
    two_convs = zoo.Parallel(
        [
            zoo.Conv2d(width, width, 3, padding="CIRCULAR", key=keys[1]),
            zoo.Conv2d(width, width, 1, padding="SAME", key=keys[2]),
        ],
        combine="sum",
    )
    return zoo.Sequential(
        [
            zoo.Conv2d(3, width, 3, padding="CIRCULAR", key=keys[0]),
            zoo.Relu(),
            two_convs,
            zoo.Relu(),
            zoo.GlobalAvgPool(),
            zoo.Dense(width, OUTPUTS, key=keys[3]),
        ]
    )


PLAIN_CASES = [
    ConvergenceCase("mlp_relu", _mlp, (6,), slow_samples=256),
    # Smooth activations: at width 64 the error (about 0.8% with 256 samples)
    # is already at the Monte-Carlo noise level.
    ConvergenceCase(
        "mlp_erf_gelu", _mlp_erf_gelu, (6,), slow_samples=256, shows_width_trend=False
    ),
    ConvergenceCase("mlp_abrelu_leaky_concat", _mlp_leaky_parallel, (6,), slow_samples=256),
    ConvergenceCase("cnn_residual_circular", _cnn_residual, (3, 6, 6)),
    ConvergenceCase("cnn_same_valid_stride_flatten", _cnn_flatten, (3, 6, 6)),
    ConvergenceCase("cnn_parallel_sum", _cnn_parallel_sum, (3, 6, 6)),
]

from tests.convergence_cases_planar import PLANAR_CASES

CASES = [*PLAIN_CASES, *PLANAR_CASES]
