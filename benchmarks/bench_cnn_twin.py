"""Time the twin of `zoo.cnn` against neural-tangents' hand-built stax CNN.

Both kernels run on the same inputs in one process, each jitted. Calls
alternate between the two after one untimed call each (compilation
excluded), and the fastest call of each is reported. The ratio should be
close to 1, because the twin is a composition of the same stax layers.

Run: `uv run python benchmarks/bench_cnn_twin.py [--n 16] [--size 12] [--repeats 10]`
"""

import argparse
import platform

import jax
import jax.numpy as jnp
from timing import best_times

import twins
import zoo
from twins import stax


def hand_built_cnn(widths, out_features, W_std, b_std):
    """Build the stax kernel function of `zoo.cnn(..., padding="CIRCULAR")` by hand."""
    conv = {
        "padding": "CIRCULAR",
        "W_std": W_std,
        "b_std": b_std,
        "dimension_numbers": ("NCHW", "OIHW", "NCHW"),
    }
    layers = [stax.Conv(widths[0], (3, 3), **conv)]
    for width in widths[1:]:
        layers += [stax.Relu(), stax.Conv(width, (3, 3), **conv)]
    layers += [
        stax.Relu(),
        stax.GlobalAvgPool(channel_axis=1),
        stax.Dense(out_features, W_std=W_std, b_std=b_std, channel_axis=1),
    ]
    return stax.serial(*layers)[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=16, help="inputs per batch")
    parser.add_argument("--size", type=int, default=12, help="image side in pixels")
    parser.add_argument("--repeats", type=int, default=10, help="timed calls each")
    args = parser.parse_args()

    widths, W_std, b_std = (8, 8, 8), 1.5, 0.05
    model = zoo.cnn(3, widths, 10, W_std=W_std, b_std=b_std, key=jax.random.PRNGKey(0))
    twin_kernel = jax.jit(twins.derive(model).kernel_fn, static_argnames="get")
    stax_kernel = jax.jit(
        hand_built_cnn(widths, 10, W_std, b_std), static_argnames="get"
    )

    key1, key2 = jax.random.split(jax.random.PRNGKey(1))
    x1 = jax.random.normal(key1, (args.n, 3, args.size, args.size), jnp.float64)
    x2 = jax.random.normal(key2, (args.n, 3, args.size, args.size), jnp.float64)
    get = ("nngp", "ntk")

    twin_seconds, stax_seconds = best_times(
        [
            lambda: twin_kernel(x1, x2, get=get),
            lambda: stax_kernel(x1, x2, get=get),
        ],
        args.repeats,
    )

    print(f"machine: {platform.processor() or platform.machine()}, {jax.devices()[0]}")
    print(
        f"inputs: 2 x {args.n} images of 3x{args.size}x{args.size}, CNN widths {widths}"
    )
    print(f"twin of zoo.cnn      : {twin_seconds * 1e3:9.2f} ms")
    print(f"hand-built stax CNN  : {stax_seconds * 1e3:9.2f} ms")
    print(f"ratio twin / stax    : {twin_seconds / stax_seconds:9.3f}")


if __name__ == "__main__":
    main()
