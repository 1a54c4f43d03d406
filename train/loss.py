"""The training loss whose normalisation matches the twin's predictor."""

import jax.numpy as jnp
from jaxtyping import Array, Float


def mse_loss(
    predictions: Float[Array, "n k"], targets: Float[Array, "n k"]
) -> Float[Array, ""]:
    """Return `0.5 * mean((f - y)^2)` over every sample and output.

    `neural_tangents.predict.gradient_descent_mse` integrates the gradient flow
    `df/dt = -Theta (f - y) / y.size`, which is the flow of exactly this loss.
    Full-batch gradient descent with learning rate `lr` for `steps` steps
    therefore reaches the predictor's time `t = lr * steps`, which
    tests/test_training_time.py checks.
    """
    return 0.5 * jnp.mean((predictions - targets) ** 2)
