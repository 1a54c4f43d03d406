"""Monte-Carlo convergence harness shared by every twin-rule test.

For a zoo model built at some width, the finite empirical NTK and NNGP
(traced over the output channels) are averaged over independent
initialisations and compared with the twin's analytic kernels by the
relative Frobenius error. See "The contract between a zoo layer and its
twin rule" in the design notes: the error must fall roughly like
1 / sqrt(width) or faster.
"""

import dataclasses
from collections.abc import Callable, Iterator

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import twins
from twins import nt

ModelBuilder = Callable[[int, jax.Array], eqx.Module]


@dataclasses.dataclass(frozen=True)
class ConvergenceCase:
    """A model family to test: `build(width, key)` and the inputs it takes."""

    name: str
    build: ModelBuilder
    example_shape: tuple[int, ...]
    n_inputs: int = 3
    # Initialisations averaged in the fast default run and in the slow run.
    # MLP kernels fluctuate more per initialisation than CNN kernels, which
    # also average over pixels, so MLP cases ask for more samples.
    fast_samples: int = 16
    slow_samples: int = 32
    # False where the finite-width bias at width 64 is already below the
    # Monte-Carlo noise, so the error cannot show a trend from 64 to 512.
    shows_width_trend: bool = True


def inputs_for(case: ConvergenceCase, seed: int = 0) -> tuple[jax.Array, jax.Array]:
    """Draw two small float64 batches of Gaussian inputs for `case`.

    `x2` repeats `x1` and adds one fresh input, so the kernels contain the
    variances K(x, x) as well as covariances between independent inputs.
    Covariances of independent random inputs are small next to the
    variances, so on their own they would need far more samples.
    """
    key1, key2 = jax.random.split(jax.random.PRNGKey(seed))
    x1 = jax.random.normal(key1, (case.n_inputs, *case.example_shape), jnp.float64)
    fresh = jax.random.normal(key2, (1, *case.example_shape), jnp.float64)
    x2 = jnp.concatenate([x1, fresh])
    return x1, x2


# The NTK of one initialisation already concentrates as width grows, so a few
# output channels suffice for it. The NNGP of one initialisation is a product
# of Gaussian outputs and concentrates only over many outputs and samples.
NTK_OUTPUTS = 8


def empirical_kernels(model: eqx.Module, x1, x2) -> tuple[jax.Array, jax.Array]:
    """Return the finite NNGP (all outputs) and NTK (the first `NTK_OUTPUTS`)."""
    params, static = eqx.partition(model, eqx.is_inexact_array)

    def apply(p, x):
        return jax.vmap(eqx.combine(p, static))(x)

    def apply_ntk_outputs(p, x):
        return apply(p, x)[:, :NTK_OUTPUTS]

    ntk_fn = nt.empirical_ntk_fn(
        apply_ntk_outputs,
        trace_axes=(-1,),
        vmap_axes=0,
        implementation=nt.NtkImplementation.JACOBIAN_CONTRACTION,
    )
    ntk = ntk_fn(x1, x2, params)
    y1, y2 = apply(params, x1), apply(params, x2)
    nngp = y1 @ y2.T / y1.shape[-1]
    return nngp, ntk


def mc_kernels(
    case: ConvergenceCase, width: int, n_samples: int, x1, x2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Average the finite NNGP and NTK of `n_samples` initialisations at `width`."""
    nngp_sum, ntk_sum = 0.0, 0.0
    keys = jax.random.split(jax.random.PRNGKey(1000 + seed), n_samples)
    kernels = jax.jit(empirical_kernels)
    for key in keys:
        model = case.build(width, key)
        nngp, ntk = kernels(model, x1, x2)
        nngp_sum = nngp_sum + np.asarray(nngp, np.float64)
        ntk_sum = ntk_sum + np.asarray(ntk, np.float64)
    return nngp_sum / n_samples, ntk_sum / n_samples


def twin_kernels(case: ConvergenceCase, x1, x2) -> tuple[np.ndarray, np.ndarray]:
    """Return the twin's NNGP and NTK for `case` (width never enters the twin)."""
    twin = twins.derive(case.build(8, jax.random.PRNGKey(0)))
    kernel = twin.kernel_fn(x1, x2, ("nngp", "ntk"))
    return np.asarray(kernel.nngp), np.asarray(kernel.ntk)


def relative_error(estimate: np.ndarray, exact: np.ndarray) -> float:
    """Relative Frobenius error `|estimate - exact| / |exact|`."""
    return float(np.linalg.norm(estimate - exact) / np.linalg.norm(exact))


def convergence_errors(
    case: ConvergenceCase, width: int, n_samples: int, seed: int = 0
) -> dict[str, float]:
    """Relative NNGP and NTK errors of the MC-mean finite kernels against the twin."""
    x1, x2 = inputs_for(case, seed)
    nngp_exact, ntk_exact = twin_kernels(case, x1, x2)
    nngp_mc, ntk_mc = mc_kernels(case, width, n_samples, x1, x2, seed)
    return {
        "nngp": relative_error(nngp_mc, nngp_exact),
        "ntk": relative_error(ntk_mc, ntk_exact),
    }


def module_types(module) -> Iterator[type]:
    """Yield the type of `module` and of every zoo module nested inside it."""
    yield type(module)
    for field in dataclasses.fields(module):
        value = getattr(module, field.name, None)
        children = value if isinstance(value, (tuple, list)) else (value,)
        for child in children:
            if isinstance(child, eqx.Module):
                yield from module_types(child)
