"""Timing shared by the benchmark scripts."""

import time
from collections.abc import Callable

import jax


def best_times(fns: list[Callable], repeats: int) -> list[float]:
    """Return each function's fastest call in seconds, alternating the calls.

    Every function is called once first, so compilation is not timed.
    Alternating the calls spreads any slowdown of the machine over all of them.
    """
    for fn in fns:
        jax.block_until_ready(fn())
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for index, fn in enumerate(fns):
            start = time.perf_counter()
            jax.block_until_ready(fn())
            best[index] = min(best[index], time.perf_counter() - start)
    return best
