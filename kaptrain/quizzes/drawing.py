"""Which questions an attempt draws: a random sample, spread across modules in proportion to the bank.

A final assessment's bank names the module each question draws on. A plain random sample of 25 from 36 can leave a
module with one question or none (about one draw in thirteen, for six modules of six), so the final would not test
what the course taught. Like an exam blueprint, each module gets its share of the draw: its share of the bank,
rounded, with the questions left over by rounding going to modules at random (each at most one more). A module
quiz's bank is one group, and its draw is a plain random sample.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

T = TypeVar("T")


def balanced_draw(items: Sequence[T], count: int, group_of: Callable[[T], Hashable], rng: random.Random) -> list[T]:
    """`count` items (all of them when fewer) in random order, each group's share in proportion to its size."""
    count = min(count, len(items))
    groups: dict[Hashable, list[T]] = {}
    for item in items:
        groups.setdefault(group_of(item), []).append(item)
    if len(groups) <= 1:
        return rng.sample(list(items), count)
    exact = {key: count * len(members) / len(items) for key, members in groups.items()}
    share = {key: math.floor(value) for key, value in exact.items()}
    # The questions rounding left over go one each to the groups with the largest remainders, ties at random.
    order = sorted(groups, key=lambda key: (exact[key] - share[key], rng.random()), reverse=True)
    for key in order[: count - sum(share.values())]:
        share[key] += 1
    drawn = [item for key, members in groups.items() for item in rng.sample(members, share[key])]
    rng.shuffle(drawn)
    return drawn
