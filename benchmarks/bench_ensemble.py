"""Training throughput of an ensemble: one `filter_vmap` over M members vs M runs.

Both sides run the same jitted `Trainer.run` (full-batch gradient descent on
the main job's digits); the sequential side trains M one-member ensembles
one after another. Compilation is excluded by a warm-up segment. Prints
member-steps per second for each model.

Usage: uv run python benchmarks/bench_ensemble.py [--members 16] [--steps 20]

One measurement (2-core x86 CPU shared with other jobs, jax 0.5.3, 20 steps,
member-steps per second, vmap / sequential): mlp [256] 6129 / 2854 (2.15x),
cnn [32, 32] 12.0 / 14.4 (0.83x), c4_cnn [8, 8] 6.4 / 9.1 (0.70x). On this
CPU, JAX's batching rule turns the members' convolutions into one grouped
convolution, which ran slower here than separate ones, so only the MLP
gained from `filter_vmap`.
"""

import argparse
import time

import equinox as eqx
import jax
import jax.numpy as jnp

import twins  # noqa: F401  (switches on x64, as in every training run)
from train.data import DataSpec, load_dataset
from train.ensemble import Trainer, init_ensemble, make_optimizer
from train.models import build_model, model_inputs

MODELS = {"mlp": (256,), "cnn": (32, 32), "c4_cnn": (8, 8)}


def make_trainer(name, widths, dataset, members, seed):
    def build(key):
        return build_model(
            name, dataset.example_shape, widths, dataset.num_classes, key=key
        )

    params, static = eqx.partition(
        init_ensemble(build, members, jax.random.PRNGKey(seed)), eqx.is_inexact_array
    )
    trainer = Trainer(
        static,
        make_optimizer("sgd", 1.0),
        jnp.asarray(model_inputs(name, dataset.train.x)),
        jnp.asarray(dataset.train.y),
        None,
        jax.random.PRNGKey(0),
    )
    return trainer, params, trainer.init_state(params)


def time_steps(trainer, params, opt_state, steps) -> float:
    """Return the seconds that `steps` steps take (compiled beforehand)."""
    started = time.perf_counter()
    _, _, losses = trainer.run(params, opt_state, 0, steps)
    losses.block_until_ready()
    return time.perf_counter() - started


def warm_up(trainer, params, opt_state, steps) -> None:
    _, _, losses = trainer.run(params, opt_state, 0, steps)
    losses.block_until_ready()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=16, help="ensemble size M")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per side")
    parser.add_argument("--n-train", type=int, default=128, help="training points")
    parser.add_argument(
        "--models", nargs="+", default=list(MODELS), choices=list(MODELS)
    )
    args = parser.parse_args()

    dataset = load_dataset(DataSpec(n_train=args.n_train, n_test=10, image_size=7))
    print(f"{jax.devices()[0].platform} backend; {args.n_train} 7x7 digits, full batch")
    print(
        f"{'model':<8} {'widths':<10} {'vmap M=' + str(args.members):>14} {'sequential':>14} {'speed-up':>9}"
    )
    for name, widths in MODELS.items():
        if name not in args.models:
            continue
        trainer, params, state = make_trainer(
            name, widths, dataset, args.members, seed=1
        )
        warm_up(trainer, params, state, args.steps)
        vmapped = time_steps(trainer, params, state, args.steps)

        # The same members, one at a time, through a compiled one-member trainer.
        single, _, _ = make_trainer(name, widths, dataset, 1, seed=1)
        members = [
            jax.tree_util.tree_map(lambda a, i=i: a[i : i + 1], params)
            for i in range(args.members)
        ]
        warm_up(single, members[0], single.init_state(members[0]), args.steps)
        sequential = 0.0
        for member in members:
            sequential += time_steps(
                single, member, single.init_state(member), args.steps
            )

        member_steps = args.members * args.steps
        print(
            f"{name:<8} {list(widths)!s:<10} {member_steps / vmapped:>10.1f} m/s "
            f"{member_steps / sequential:>10.1f} m/s {sequential / vmapped:>8.2f}x"
        )
    print("m/s = member-steps per second (one member, one full-batch step)")


if __name__ == "__main__":
    main()
