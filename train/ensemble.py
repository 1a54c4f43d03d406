"""Finite-width ensembles: M members trained side by side with `eqx.filter_vmap`.

The members share the architecture and the training data and differ only in
their initialisation. Their parameters and optimiser states are stacked on a
leading member axis, and one jitted `lax.scan` runs a segment of steps for all
members at once.
"""

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, PRNGKeyArray, PyTree

from train.errors import UsageError
from train.loss import mse_loss

OPTIMIZERS = ("sgd", "momentum", "adam")


def make_optimizer(
    name: str, learning_rate: float, momentum: float = 0.9
) -> optax.GradientTransformation:
    """Return the optax optimiser `name`; plain `sgd` is gradient descent."""
    if name == "sgd":
        return optax.sgd(learning_rate)
    if name == "momentum":
        return optax.sgd(learning_rate, momentum=momentum)
    if name == "adam":
        return optax.adam(learning_rate)
    raise UsageError(
        f"Unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}."
    )


def init_ensemble(
    build: Callable[[PRNGKeyArray], eqx.Module], size: int, key: PRNGKeyArray
) -> eqx.Module:
    """Build `size` members from independent keys, stacked on a leading axis."""
    if not (isinstance(size, int) and size > 0):
        raise UsageError(f"`ensemble_size` (={size!r}) must be a positive integer.")
    keys = jax.random.split(key, size)
    return eqx.filter_vmap(build)(keys)


def ensemble_size(params: PyTree) -> int:
    """Return the number of members, the length of the leading parameter axis."""
    return int(jax.tree_util.tree_leaves(params)[0].shape[0])


def orbit_augment(
    x: np.ndarray, y: np.ndarray, group: str
) -> tuple[np.ndarray, np.ndarray]:
    """Return every training point under every group element, element-major.

    The result has `|G| N` points. A mean loss over them gives each orbit the
    weight that its original point has in the plain mean loss.
    """
    from zoo.planar import group_order, transform_images

    images = [
        np.asarray(transform_images(x, group, g)) for g in range(group_order(group))
    ]
    return np.concatenate(images), np.concatenate([y] * len(images))


class Trainer(eqx.Module):
    """Full-batch or minibatch training of an ensemble on fixed data.

    `static` is the non-array part of a member (from `eqx.partition`);
    parameters and optimiser states carry a leading member axis. The
    minibatch of step `s` is drawn with `fold_in(batch_key, s)`, so a run
    resumed at any step draws the same batches as an uninterrupted one.
    """

    static: PyTree
    optimizer: optax.GradientTransformation
    x: Array
    y: Array
    batch_size: int | None = eqx.field(static=True)
    batch_key: PRNGKeyArray

    def init_state(self, params: PyTree) -> PyTree:
        return eqx.filter_vmap(self.optimizer.init)(params)

    def run(
        self, params: PyTree, opt_state: PyTree, start_step: int, num_steps: int
    ) -> tuple[PyTree, PyTree, Array]:
        """Train all members for `num_steps` steps; return the per-step losses (S, M)."""
        return _run_segment(self, params, opt_state, jnp.asarray(start_step), num_steps)

    def batch(self, step: Array) -> tuple[Array, Array]:
        count = self.x.shape[0]
        if self.batch_size is None or self.batch_size >= count:
            return self.x, self.y
        key = jax.random.fold_in(self.batch_key, step)
        index = jax.random.choice(key, count, (self.batch_size,), replace=False)
        return self.x[index], self.y[index]

    def member_step(self, params: PyTree, opt_state: PyTree, x: Array, y: Array):
        """Take one optimiser step for one member; return its loss before the step."""

        def loss_fn(p):
            model = eqx.combine(p, self.static)
            return mse_loss(jax.vmap(model)(x), y)

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = self.optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss


@eqx.filter_jit
def _run_segment(trainer: Trainer, params, opt_state, start_step, num_steps: int):
    def step(carry, step_index):
        params, opt_state = carry
        x, y = trainer.batch(step_index)
        params, opt_state, losses = eqx.filter_vmap(
            lambda p, s: trainer.member_step(p, s, x, y)
        )(params, opt_state)
        return (params, opt_state), losses

    steps = start_step + jnp.arange(num_steps)
    (params, opt_state), losses = jax.lax.scan(step, (params, opt_state), steps)
    return params, opt_state, losses


def predict_members(
    params: PyTree, static: PyTree, x: Array, chunk_size: int = 256
) -> np.ndarray:
    """Return every member's outputs on `x`, shape (M, N, K), in float64 numpy."""
    outputs = [
        np.asarray(_predict_chunk(params, static, x[i : i + chunk_size]), np.float64)
        for i in range(0, len(x), chunk_size)
    ]
    return np.concatenate(outputs, axis=1)


@eqx.filter_jit
def _predict_chunk(params, static, x):
    def member(p):
        return jax.vmap(eqx.combine(p, static))(x)

    return eqx.filter_vmap(member)(params)
