"""The checker is not vacuous: a deliberately broken component makes runs fail with the invariant it breaks, and the
real components, on the same seeds, do not."""

from __future__ import annotations

import pytest
from trading_simulation.world import Variant, World

from tests.simulation.broken import (
    BookCountingFillsTwice,
    ExecutionIgnoringTheApprovedQuantity,
    ExecutionLosingFills,
    ExecutionPostingTwice,
)

SEEDS = range(1, 9)


def runs(variant: Variant) -> list[tuple[int, list[str], int]]:
    """(seed, violations, orders that landed at the broker) for each seed."""
    results = []
    for seed in SEEDS:
        world = World(seed, variant=variant)
        result = world.run()
        results.append((seed, result.violations, sum(post.landed for post in world.broker.posts)))
    return results


def failing_with(results: list[tuple[int, list[str], int]], invariant: str) -> list[int]:
    return [seed for seed, violations, _ in results if any(v.startswith(f"{invariant}:") for v in violations)]


@pytest.mark.parametrize(
    ("variant", "invariant"),
    [
        (
            Variant("execution ignores the approved quantity", execution=ExecutionIgnoringTheApprovedQuantity),
            "approval",
        ),
        (Variant("execution posts every order twice", execution=ExecutionPostingTwice), "duplicate-submit"),
        (Variant("order-management counts every fill twice", book=BookCountingFillsTwice), "positions"),
        (Variant("order-management counts every fill twice", book=BookCountingFillsTwice), "rebuild"),
        (Variant("execution never reports a fill", execution=ExecutionLosingFills), "fills"),
    ],
    ids=lambda v: v.name if isinstance(v, Variant) else v,
)
def test_a_broken_component_fails_the_run_with_the_invariant_it_breaks(variant: Variant, invariant: str) -> None:
    results = runs(variant)
    traded = [seed for seed, _, landed in results if landed]
    assert len(traded) >= 3, f"too few seeds traded to judge the checker: {results}"
    failing = failing_with(results, invariant)
    assert set(traded) <= set(failing), f"{variant.name}: seeds {sorted(set(traded) - set(failing))} passed {invariant}"


def test_the_real_components_hold_on_the_same_seeds() -> None:
    results = runs(Variant())
    for invariant in ("approval", "duplicate-submit"):
        assert failing_with(results, invariant) == [], results
