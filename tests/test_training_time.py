"""Pin the training-time convention: t = learning rate x steps.

A linearized network trained by full-batch gradient descent on `mse_loss`
must follow `nt.predict.gradient_descent_mse` on its own empirical NTK. The
steps are small, so gradient descent and gradient flow differ by O(lr).
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import zoo
from train.loss import mse_loss
from twins import nt

N_TRAIN, N_TEST, N_OUT = 12, 5, 3


def _setup():
    key_model, key_x, key_y = jax.random.split(jax.random.PRNGKey(3), 3)
    model = zoo.mlp(4, [64], N_OUT, dtype=jnp.float64, key=key_model)
    params, static = eqx.partition(model, eqx.is_inexact_array)

    def apply(p, x):
        return jax.vmap(eqx.combine(p, static))(x)

    x = jax.random.normal(key_x, (N_TRAIN + N_TEST, 4), jnp.float64)
    x_train, x_test = x[:N_TRAIN], x[N_TRAIN:]
    y_train = jax.random.normal(key_y, (N_TRAIN, N_OUT), jnp.float64)
    return apply, params, x_train, x_test, y_train


def _train_linearized(apply, params, x_train, x_test, y_train, lr, steps, loss_fn):
    """Run full-batch gradient descent on the linearized network."""
    linear = nt.linearize(apply, params)

    def loss(p):
        return loss_fn(linear(p, x_train), y_train)

    def step(p, _):
        grads = jax.grad(loss)(p)
        return jax.tree_util.tree_map(lambda a, g: a - lr * g, p, grads), None

    trained, _ = jax.lax.scan(step, params, None, length=steps)
    return linear(trained, x_train), linear(trained, x_test)


def _predictor(apply, params, x_train, x_test, y_train):
    # A finite network couples its outputs through shared features, so the
    # comparison keeps the full (N, N, K, K) NTK rather than its trace.
    ntk_fn = nt.empirical_ntk_fn(
        apply, trace_axes=(), implementation=nt.NtkImplementation.JACOBIAN_CONTRACTION
    )
    k_train = ntk_fn(x_train, None, params)
    k_test = ntk_fn(x_test, x_train, params)
    predict = nt.predict.gradient_descent_mse(
        k_train, y_train, learning_rate=1.0, trace_axes=()
    )
    f_train0, f_test0 = apply(params, x_train), apply(params, x_test)
    return lambda t: predict(t, f_train0, f_test0, k_test), k_train


def _step_size(k_train) -> float:
    """Pick lr so that the fastest mode moves 0.2% per step (gradient flow regime)."""
    flat = np.asarray(k_train).transpose(0, 2, 1, 3).reshape(y_size(), y_size())
    largest = float(np.linalg.eigvalsh(flat).max())
    return 2e-3 * y_size() / largest


def y_size() -> int:
    return N_TRAIN * N_OUT


@pytest.mark.parametrize("steps", [0, 400, 3000])
def test_linearized_gd_matches_predictor(steps):
    apply, params, x_train, x_test, y_train = _setup()
    predict, k_train = _predictor(apply, params, x_train, x_test, y_train)
    lr = _step_size(k_train)

    f_train, f_test = _train_linearized(
        apply, params, x_train, x_test, y_train, lr, steps, mse_loss
    )
    expected_train, expected_test = predict(lr * steps)

    scale = float(jnp.linalg.norm(y_train))
    assert float(jnp.linalg.norm(f_train - expected_train)) < 5e-3 * scale
    assert float(jnp.linalg.norm(f_test - expected_test)) < 5e-3 * scale


def test_summed_loss_runs_faster_than_predictor():
    """A loss without the 1 / y.size factor breaks t = lr * steps, and the test detects it."""
    apply, params, x_train, x_test, y_train = _setup()
    predict, k_train = _predictor(apply, params, x_train, x_test, y_train)
    lr = _step_size(k_train) / y_size()
    steps = 400

    def summed_loss(f, y):
        return 0.5 * jnp.sum((f - y) ** 2)

    f_train, _ = _train_linearized(
        apply, params, x_train, x_test, y_train, lr, steps, summed_loss
    )
    expected_train, _ = predict(lr * steps)
    matched_train, _ = predict(lr * steps * y_size())

    scale = float(jnp.linalg.norm(y_train))
    assert float(jnp.linalg.norm(f_train - expected_train)) > 5e-2 * scale
    assert float(jnp.linalg.norm(f_train - matched_train)) < 5e-3 * scale
