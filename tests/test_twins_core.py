"""The translator's contract: rules, errors, and neural-tangents compatibility."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import twins
import zoo
from twins import nt, stax


class _Unregistered(eqx.Module):
    def __call__(self, x, *, key=None):
        return x


def _small_cnn():
    return zoo.cnn(3, [8, 8], 2, residual=True, key=jax.random.PRNGKey(0))


def _images(n, seed=0):
    return jax.random.normal(jax.random.PRNGKey(seed), (n, 3, 5, 5), jnp.float64)


def test_unregistered_module_raises_type_error():
    model = zoo.Sequential(
        [zoo.Dense(3, 4, key=jax.random.PRNGKey(0)), _Unregistered()]
    )
    with pytest.raises(TypeError, match="_Unregistered") as error:
        twins.derive(model)
    assert "register_rule" in str(error.value)


def test_duplicate_rule_rejected():
    with pytest.raises(ValueError, match="exists already"):
        twins.register_rule(zoo.Dense)(lambda module, layout: None)


def test_every_zoo_layer_has_rule():
    zoo_types = [
        value
        for value in vars(zoo).values()
        if isinstance(value, type) and issubclass(value, eqx.Module)
    ]
    missing = [t.__name__ for t in zoo_types if t not in twins.registered_types()]
    assert missing == []


def test_mlp_twin_matches_hand_built_stax():
    model = zoo.mlp(
        5,
        [16, 16],
        3,
        activation=zoo.Erf,
        W_std=1.3,
        b_std=0.2,
        key=jax.random.PRNGKey(1),
    )
    reference = stax.serial(
        stax.Dense(16, W_std=1.3, b_std=0.2),
        stax.Erf(),
        stax.Dense(16, W_std=1.3, b_std=0.2),
        stax.Erf(),
        stax.Dense(3, W_std=1.3, b_std=0.2),
    )[2]
    x1 = jax.random.normal(jax.random.PRNGKey(2), (4, 5), jnp.float64)
    x2 = jax.random.normal(jax.random.PRNGKey(3), (3, 5), jnp.float64)

    ours = twins.derive(model).kernel_fn(x1, x2, ("nngp", "ntk"))
    theirs = reference(x1, x2, ("nngp", "ntk"))
    np.testing.assert_allclose(ours.nngp, theirs.nngp, rtol=1e-12)
    np.testing.assert_allclose(ours.ntk, theirs.ntk, rtol=1e-12)


def test_cnn_twin_matches_hand_built_stax():
    model = zoo.cnn(
        3, [8, 8], 2, padding="SAME", W_std=1.4, b_std=0.1, key=jax.random.PRNGKey(1)
    )
    conv = {
        "padding": "SAME",
        "W_std": 1.4,
        "b_std": 0.1,
        "dimension_numbers": ("NCHW", "OIHW", "NCHW"),
    }
    reference = stax.serial(
        stax.Conv(8, (3, 3), **conv),
        stax.Relu(),
        stax.Conv(8, (3, 3), **conv),
        stax.Relu(),
        stax.GlobalAvgPool(channel_axis=1),
        stax.Dense(2, W_std=1.4, b_std=0.1, channel_axis=1),
    )[2]
    x1, x2 = _images(3), _images(2, seed=1)

    ours = twins.derive(model).kernel_fn(x1, x2, "ntk")
    theirs = reference(x1, x2, "ntk")
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_kernel_fn_works_with_nt_batch():
    twin = twins.derive(_small_cnn())
    x1, x2 = _images(4), _images(6, seed=1)
    whole = twin.kernel_fn(x1, x2, ("nngp", "ntk"))
    batched = nt.batch(twin.kernel_fn, batch_size=2)(x1, x2, ("nngp", "ntk"))
    np.testing.assert_allclose(batched.nngp, whole.nngp, rtol=1e-10)
    np.testing.assert_allclose(batched.ntk, whole.ntk, rtol=1e-10)


def test_kernel_fn_works_with_nt_predict():
    twin = twins.derive(_small_cnn())
    x_train, x_test = _images(5), _images(3, seed=1)
    y_train = jax.random.normal(jax.random.PRNGKey(4), (5, 2), jnp.float64)
    predict = nt.predict.gradient_descent_mse_ensemble(
        twin.kernel_fn, x_train, y_train, diag_reg=1e-8
    )

    at_zero = predict(0.0, x_test, "ntk", compute_cov=False)
    at_infinity_train = predict(None, x_train, "ntk", compute_cov=False)
    np.testing.assert_allclose(at_zero, 0.0, atol=1e-12)
    np.testing.assert_allclose(at_infinity_train, y_train, atol=1e-5)


def test_residual_sum_of_two_nonlinear_branches_rejected():
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    model = zoo.Sequential(
        [
            zoo.Dense(3, 4, key=keys[0]),
            zoo.Relu(),
            zoo.Residual(zoo.Identity()),
            zoo.Dense(4, 1, key=keys[1]),
        ]
    )
    twin = twins.derive(model)
    with pytest.raises(ValueError, match="end every branch but one"):
        twin.kernel_fn(jnp.ones((2, 3)), None, "nngp")


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.full((2, 3, 5, 5), np.nan), "NaN"),
        (np.ones((3, 5, 5)), "takes batches of shape"),
        (np.ones((2, 1, 5, 5)), "takes batches of shape"),
    ],
)
def test_kernel_fn_rejects_bad_x1(bad, message):
    twin = twins.derive(_small_cnn())
    with pytest.raises(ValueError, match=message):
        twin.kernel_fn(bad, None, "ntk")


def test_x2_none_equals_x1_x1():
    twin = twins.derive(_small_cnn())
    x = _images(3)
    np.testing.assert_allclose(
        twin.kernel_fn(x, None, "ntk"), twin.kernel_fn(x, x, "ntk"), rtol=1e-12
    )


def test_leading_flatten_accepts_image_batches():
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    model = zoo.Sequential([zoo.Flatten(), zoo.mlp(3 * 5 * 5, [8], 2, key=keys[0])])
    kernel = twins.derive(model).kernel_fn(_images(2), None, "ntk")
    assert kernel.shape == (2, 2)


def test_leading_activation_still_checks_shape():
    model = zoo.Sequential([zoo.Relu(), zoo.Dense(4, 2, key=jax.random.PRNGKey(0))])
    with pytest.raises(ValueError, match="takes batches of shape"):
        twins.derive(model).kernel_fn(jnp.ones((2, 5)), None, "ntk")


def test_group_conv_first_rejected():
    model = zoo.Sequential(
        [
            zoo.GroupConv2d(2, 4, 3, group="C4", key=jax.random.PRNGKey(0)),
            zoo.GroupPool(),
        ]
    )
    with pytest.raises(TypeError, match="LiftingConv2d before it"):
        twins.derive(model)


def test_kernel_fn_rejects_mismatched_x2():
    twin = twins.derive(_small_cnn())
    x1 = _images(2)
    x2 = jax.random.normal(jax.random.PRNGKey(1), (2, 3, 4, 4), jnp.float64)
    with pytest.raises(ValueError, match="examples have shape"):
        twin.kernel_fn(x1, x2, "ntk")


def test_kernel_fn_rejects_unknown_get():
    twin = twins.derive(_small_cnn())
    with pytest.raises(ValueError, match="unknown kernel fields"):
        twin.kernel_fn(_images(2), None, ("ntk", "foo"))


def test_vector_shape_error_omits_image_hint():
    twin = twins.derive(zoo.mlp(4, [8], 2, key=jax.random.PRNGKey(0)))
    with pytest.raises(ValueError, match=r"takes batches of shape \(N, 4\)\.$"):
        twin.kernel_fn(jnp.ones((2, 5)), None, "ntk")
