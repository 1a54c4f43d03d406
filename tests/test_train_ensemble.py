"""Ensembles: vmapped members, the loss normalisation, optimisers and batches."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import twins  # noqa: F401  (switches on x64 as in every training run)
import zoo
from train.ensemble import (
    Trainer,
    init_ensemble,
    make_optimizer,
    orbit_augment,
    predict_members,
)
from train.errors import UsageError
from train.loss import mse_loss
from twins import nt

N, D, K = 16, 5, 3


def _data(seed=0):
    key_x, key_y = jax.random.split(jax.random.PRNGKey(seed))
    x = jax.random.normal(key_x, (N, D), jnp.float32)
    y = jax.random.normal(key_y, (N, K), jnp.float32)
    return x, y


def _ensemble(size, widths=(32,), dtype=jnp.float32, key=0):
    def build(k):
        return zoo.mlp(D, widths, K, dtype=dtype, key=k)

    members = init_ensemble(build, size, jax.random.PRNGKey(key))
    return eqx.partition(members, eqx.is_inexact_array)


def _trainer(static, x, y, optimizer="sgd", lr=0.5, batch_size=None):
    return Trainer(
        static, make_optimizer(optimizer, lr), x, y, batch_size, jax.random.PRNGKey(7)
    )


def test_members_have_distinct_parameters():
    params, _ = _ensemble(4)
    first_layer = params.layers[0].weight

    assert first_layer.shape == (4, 32, D)
    assert not np.allclose(first_layer[0], first_layer[1])


def test_vmapped_step_equals_single_member():
    x, y = _data()
    params, static = _ensemble(3)
    trainer = _trainer(static, x, y)
    trained, _, losses = trainer.run(params, trainer.init_state(params), 0, 5)

    member = jax.tree_util.tree_map(lambda a: a[1], params)
    single = _trainer(static, x, y)
    state = single.optimizer.init(member)
    for _ in range(5):
        member, state, _ = single.member_step(member, state, x, y)

    np.testing.assert_allclose(
        trained.layers[0].weight[1], member.layers[0].weight, rtol=1e-5, atol=1e-6
    )
    assert losses.shape == (5, 3)


def test_full_batch_gd_lowers_loss():
    x, y = _data()
    params, static = _ensemble(2)
    trainer = _trainer(static, x, y)
    _, _, losses = trainer.run(params, trainer.init_state(params), 0, 50)

    assert bool(jnp.all(losses[-1] < losses[0]))


def test_linear_model_follows_predictor_time():
    """A linear model is its own linearization, so GD with mse_loss hits t = lr x steps."""
    x, y = _data()
    x, y = x.astype(jnp.float64), y.astype(jnp.float64)
    model = zoo.Dense(
        D, K, W_std=1.0, b_std=0.1, dtype=jnp.float64, key=jax.random.PRNGKey(0)
    )
    params, static = eqx.partition(model, eqx.is_inexact_array)

    def apply(p, inputs):
        return jax.vmap(eqx.combine(p, static))(inputs)

    ntk_fn = nt.empirical_ntk_fn(
        apply, trace_axes=(), implementation=nt.NtkImplementation.JACOBIAN_CONTRACTION
    )
    predict = nt.predict.gradient_descent_mse(ntk_fn(x, None, params), y, trace_axes=())

    lr, steps = 0.05, 400
    batched = jax.tree_util.tree_map(lambda a: a[None], params)
    trainer = _trainer(static, x, y, lr=lr)
    trained, _, _ = trainer.run(batched, trainer.init_state(batched), 0, steps)
    finite = predict_members(trained, static, x)[0]
    expected = predict(lr * steps, apply(params, x))

    scale = float(jnp.linalg.norm(y))
    assert float(np.linalg.norm(finite - np.asarray(expected))) < 2e-2 * scale


def test_mse_loss_is_half_mean():
    f = jnp.array([[1.0, 2.0], [3.0, 4.0]])
    y = jnp.zeros((2, 2))

    assert float(mse_loss(f, y)) == pytest.approx(0.5 * (1 + 4 + 9 + 16) / 4)


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_optimizers_train(optimizer):
    x, y = _data()
    params, static = _ensemble(2)
    trainer = _trainer(static, x, y, optimizer=optimizer, lr=0.05)
    _, _, losses = trainer.run(params, trainer.init_state(params), 0, 30)

    assert bool(jnp.all(losses[-1] < losses[0]))


def test_unknown_optimizer_named():
    with pytest.raises(UsageError, match="'rmsprop'"):
        make_optimizer("rmsprop", 0.1)


def test_zero_members_rejected():
    with pytest.raises(UsageError, match="=0"):
        init_ensemble(lambda k: zoo.mlp(D, [4], K, key=k), 0, jax.random.PRNGKey(0))


def test_minibatches_repeat_by_step():
    x, y = _data()
    params, static = _ensemble(2)
    trainer = _trainer(static, x, y, batch_size=4)
    state = trainer.init_state(params)

    whole, _, whole_losses = trainer.run(params, state, 0, 6)
    half, half_state, _ = trainer.run(params, state, 0, 3)
    rest, _, rest_losses = trainer.run(half, half_state, 3, 3)

    np.testing.assert_array_equal(whole.layers[0].weight, rest.layers[0].weight)
    np.testing.assert_array_equal(whole_losses[3:], rest_losses)


def test_minibatch_differs_from_full_batch():
    x, y = _data()
    params, static = _ensemble(1)
    full = _trainer(static, x, y)
    mini = _trainer(static, x, y, batch_size=4)
    a, _, _ = full.run(params, full.init_state(params), 0, 3)
    b, _, _ = mini.run(params, mini.init_state(params), 0, 3)

    assert not np.allclose(a.layers[0].weight, b.layers[0].weight)


def test_orbit_augment_contains_every_rotation():
    x = np.random.RandomState(0).rand(3, 1, 5, 5).astype(np.float32)
    y = np.eye(3, dtype=np.float32)
    x_aug, y_aug = orbit_augment(x, y, "C4")

    assert x_aug.shape == (12, 1, 5, 5)
    np.testing.assert_array_equal(x_aug[:3], x)
    np.testing.assert_array_equal(x_aug[3:6], np.rot90(x, 1, axes=(2, 3)))
    np.testing.assert_array_equal(y_aug[9:], y)


def test_orbit_augment_d4_size():
    x = np.zeros((2, 1, 4, 4), np.float32)
    x_aug, _ = orbit_augment(x, np.zeros((2, 10), np.float32), "D4")

    assert x_aug.shape == (16, 1, 4, 4)
