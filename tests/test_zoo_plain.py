"""Finite plain layers: NTK parameterization, padding modes and input checks."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import zoo

KEY = jax.random.PRNGKey(0)


def test_dense_scales_by_fan_in():
    layer = zoo.Dense(4, 3, W_std=2.0, b_std=0.5, key=KEY)
    x = jnp.arange(4.0)
    expected = 2.0 / math.sqrt(4) * layer.weight @ x + 0.5 * layer.bias
    np.testing.assert_allclose(layer(x), expected, rtol=1e-6)


def test_dense_without_bias_has_no_bias():
    assert zoo.Dense(4, 3, key=KEY).bias is None


@pytest.mark.parametrize(
    "padding, size_out", [("SAME", 6), ("VALID", 4), ("CIRCULAR", 6)]
)
def test_conv2d_output_size(padding, size_out):
    layer = zoo.Conv2d(2, 5, 3, padding=padding, key=KEY)
    assert layer(jnp.ones((2, 6, 6))).shape == (5, size_out, size_out)


def test_conv2d_circular_commutes_with_cyclic_shift():
    layer = zoo.Conv2d(2, 3, 3, padding="CIRCULAR", key=KEY)
    x = jax.random.normal(KEY, (2, 7, 7))
    shifted = jnp.roll(x, (2, -3), axis=(1, 2))
    np.testing.assert_allclose(
        layer(shifted), jnp.roll(layer(x), (2, -3), axis=(1, 2)), atol=1e-5
    )


def test_conv2d_stride_halves_size():
    layer = zoo.Conv2d(1, 1, 2, stride=2, padding="VALID", key=KEY)
    assert layer(jnp.ones((1, 6, 6))).shape == (1, 3, 3)


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: zoo.Dense(0, 3, key=KEY), "in_features"),
        (lambda: zoo.Dense(3, 3, W_std=-1.0, key=KEY), "W_std"),
        (lambda: zoo.Conv2d(1, 1, 3, padding="REFLECT", key=KEY), "padding"),
        (lambda: zoo.Conv2d(1, 1, 0, key=KEY), "kernel_size"),
        (lambda: zoo.Parallel([zoo.Relu()], combine="max"), "combine"),
        (lambda: zoo.cnn(1, [4, 8], 2, residual=True, key=KEY), "equal widths"),
        (lambda: zoo.mlp(3, [], 2, key=KEY), "widths"),
    ],
)
def test_bad_hyperparameters_raise(build, message):
    with pytest.raises(ValueError, match=message):
        build()


@pytest.mark.parametrize(
    "layer, x, message",
    [
        (zoo.Dense(4, 2, key=KEY), jnp.ones((5,)), "4 input features"),
        (zoo.Dense(4, 2, key=KEY), jnp.ones((2, 4)), "jax.vmap"),
        (zoo.Conv2d(3, 2, 3, key=KEY), jnp.ones((1, 5, 5)), "3 input channels"),
        (zoo.Conv2d(3, 2, 3, key=KEY), jnp.ones((5, 5)), "channels, height, width"),
    ],
)
def test_wrong_input_shapes_raise(layer, x, message):
    with pytest.raises(ValueError, match=message):
        layer(x)


def test_residual_and_parallel_shapes():
    keys = jax.random.split(KEY, 3)
    residual = zoo.Residual(zoo.Dense(3, 3, key=keys[0]))
    concat = zoo.Parallel(
        [zoo.Dense(3, 2, key=keys[1]), zoo.Dense(3, 4, key=keys[2])], "concat"
    )
    x = jnp.ones(3)
    np.testing.assert_allclose(residual(x), residual.branch(x) + x, rtol=1e-6)
    assert concat(x).shape == (6,)


@pytest.mark.parametrize(
    "activation, reference",
    [
        (zoo.Relu(), lambda x: np.maximum(x, 0)),
        (zoo.ABRelu(-0.5, 2.0), lambda x: np.where(x > 0, 2.0 * x, -0.5 * x)),
        (zoo.LeakyRelu(0.1), lambda x: np.where(x > 0, x, 0.1 * x)),
    ],
)
def test_activations_match_formula(activation, reference):
    x = np.linspace(-2, 2, 9)
    np.testing.assert_allclose(activation(jnp.asarray(x)), reference(x), rtol=1e-6)
