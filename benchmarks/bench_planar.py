"""Time the C4 group CNN twin against the plain CNN twin on the same inputs.

Both models are `lift/conv(8) -> relu -> gconv/conv(8) -> relu -> pool ->
dense` with circular 3x3 filters (`zoo.c4_cnn` and `zoo.cnn`). Each twin's
NNGP and NTK are jitted, called once to compile, and timed on later calls,
alternating between the two twins in one process. Peak memory is XLA's
buffer-assignment estimate for the compiled call (arguments + outputs +
temporaries), for the CNN twin, the C4 twin with its |G| = 4 relative
blocks, and the C4 twin with all 16 blocks (`twins.planar.derive_full_blocks`).

Run: `uv run python benchmarks/bench_planar.py [--n 8] [--size 16] [--repeats 5]`
"""

import argparse
import platform

import jax
import jax.numpy as jnp
from timing import best_times

import twins
import zoo
from twins import planar as twin_planar

GET = ("nngp", "ntk")


def peak_bytes(kernel_fn, x1, x2) -> int:
    """Return XLA's peak-memory estimate for one compiled kernel call, in bytes."""
    compiled = (
        jax.jit(kernel_fn, static_argnames="get").lower(x1, x2, get=GET).compile()
    )
    memory = compiled.memory_analysis()
    return (
        memory.argument_size_in_bytes
        + memory.output_size_in_bytes
        + memory.temp_size_in_bytes
        - memory.alias_size_in_bytes
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=8, help="inputs per batch")
    parser.add_argument("--size", type=int, default=16, help="image side in pixels")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per twin")
    args = parser.parse_args()

    widths, key = (8, 8), jax.random.PRNGKey(0)
    cnn = zoo.cnn(3, widths, 10, padding="CIRCULAR", key=key)
    c4 = zoo.c4_cnn(3, widths, 10, padding="CIRCULAR", key=key)
    cnn_kernel_fn = twins.derive(cnn).kernel_fn
    c4_kernel_fn = twins.derive(c4).kernel_fn
    c4_full_kernel_fn = twin_planar.derive_full_blocks(c4).kernel_fn

    key1, key2 = jax.random.split(jax.random.PRNGKey(1))
    shape = (args.n, 3, args.size, args.size)
    x1 = jax.random.normal(key1, shape, jnp.float64)
    x2 = jax.random.normal(key2, shape, jnp.float64)

    cnn_jit = jax.jit(cnn_kernel_fn, static_argnames="get")
    c4_jit = jax.jit(c4_kernel_fn, static_argnames="get")
    cnn_seconds, c4_seconds = best_times(
        [lambda: cnn_jit(x1, x2, get=GET), lambda: c4_jit(x1, x2, get=GET)],
        args.repeats,
    )

    cnn_bytes = peak_bytes(cnn_kernel_fn, x1, x2)
    c4_bytes = peak_bytes(c4_kernel_fn, x1, x2)
    full_bytes = peak_bytes(c4_full_kernel_fn, x1, x2)

    mib = 2**20
    print(f"machine: {platform.processor() or platform.machine()}, {jax.devices()[0]}")
    print(
        f"inputs: 2 x {args.n} images of 3x{args.size}x{args.size}, float64, "
        f"widths {widths}, NNGP + NTK, best of {args.repeats} jitted calls"
    )
    print(f"{'twin':<28}{'time (ms)':>12}{'peak memory (MiB)':>20}")
    print(f"{'plain CNN':<28}{cnn_seconds * 1e3:>12.1f}{cnn_bytes / mib:>20.1f}")
    print(
        f"{'C4 GCNN, 4 relative blocks':<28}{c4_seconds * 1e3:>12.1f}"
        f"{c4_bytes / mib:>20.1f}"
    )
    print(f"{'C4 GCNN, 16 full blocks':<28}{'-':>12}{full_bytes / mib:>20.1f}")
    print(f"time ratio C4 / CNN          : {c4_seconds / cnn_seconds:.2f}")
    print(f"memory ratio relative / full : {c4_bytes / full_bytes:.3f}")


if __name__ == "__main__":
    main()
