"""Finite kernels converge to their twins, for every registered rule.

The Monte-Carlo mean of the finite empirical NTK and NNGP over random
initialisations approaches the twin's analytic kernels as the width grows.
The fast default run checks one moderate width, loosely but tightly enough
to catch a wrong rule: a doubly counted NTK or a mismatched fan-in gives
errors of 30% and more. The slow run checks 3% at width 512 and that the
error falls from width 64 to 512.
"""

import jax
import pytest

import twins
from tests.convergence_cases import CASES
from tests.harness import convergence_errors, module_types

FAST_WIDTH = 256
FAST_TOLERANCE = 0.15
SLOW_TOLERANCE = 0.03


def test_every_registered_rule_has_a_convergence_case():
    covered = set()
    for case in CASES:
        covered.update(module_types(case.build(8, jax.random.PRNGKey(0))))
    uncovered = [t.__qualname__ for t in twins.registered_types() if t not in covered]
    assert uncovered == [], (
        f"Twin rules without a convergence case: {uncovered}. Add a case that "
        "uses them to tests/convergence_cases.py."
    )


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_kernels_near_twin_at_moderate_width(case):
    errors = convergence_errors(case, FAST_WIDTH, case.fast_samples)
    assert errors["nngp"] < FAST_TOLERANCE
    assert errors["ntk"] < FAST_TOLERANCE


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_kernels_converge_with_width(case):
    narrow = convergence_errors(case, 64, case.slow_samples)
    wide = convergence_errors(case, 512, case.slow_samples)
    print(f"{case.name}: width 64 {narrow}, width 512 {wide}")

    assert wide["nngp"] < SLOW_TOLERANCE
    assert wide["ntk"] < SLOW_TOLERANCE
    if case.shows_width_trend:
        assert wide["nngp"] < narrow["nngp"]
        assert wide["ntk"] < narrow["ntk"]
