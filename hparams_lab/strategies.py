"""Search strategies: a space in, a deterministic list of trials out.

Pure functions of (space, seed); randomness comes only from a ``random.Random``
built from the seed, so the same command always gives the same trials and ids.
"""

from __future__ import annotations

import itertools
import math
from random import Random
from typing import Callable

from hparams_lab.errors import UserError
from hparams_lab.space import HParam, Space, SpaceError
from hparams_lab.trial import Trial

_MAX_REJECTIONS = 100  # per wanted trial, before deciding the space is exhausted


def grid(space: Space, *, seed: int = 0, trials: int | None = None) -> list[Trial]:
    """The cartesian product of every hparam's grid values, last hparam varying fastest.

    ``trials`` caps the count (the first N points), for quick looks at a big grid.
    """
    axes = [_grid_axis(h) for h in space]
    points = itertools.product(*axes)
    if trials is not None:
        points = itertools.islice(points, trials)
    return [
        Trial(dict(zip(space.names, values)), seed=seed, index=i) for i, values in enumerate(points)
    ]


def _grid_axis(hparam: HParam) -> tuple:
    try:
        return hparam.domain.grid_values()
    except SpaceError as err:
        raise SpaceError(f"hparam {hparam.name!r}: {err}") from None


def random_search(space: Space, *, seed: int = 0, trials: int = 10) -> list[Trial]:
    """``trials`` distinct random points (log-uniform on log domains).

    A finite space with no more points than asked for is run whole, in a random
    order; otherwise duplicates are redrawn, so no two trials share hparams.
    """
    rng = Random(seed)
    if space.size() <= trials:
        # Enumerate the finite space rather than sampling it: no repeats, no misses.
        points = list(itertools.product(*(h.domain.all_values() for h in space)))
        rng.shuffle(points)
        chosen = [dict(zip(space.names, p)) for p in points]
    else:
        chosen = _distinct_samples(space, rng, trials)
    return [Trial(hparams, seed=seed, index=i) for i, hparams in enumerate(chosen)]


def _distinct_samples(space: Space, rng: Random, trials: int) -> list[dict]:
    chosen, seen = [], set()
    for _ in range(trials * _MAX_REJECTIONS):
        hparams = {h.name: h.domain.sample(rng) for h in space}
        key = tuple(hparams.values())
        if key not in seen:
            seen.add(key)
            chosen.append(hparams)
            if len(chosen) == trials:
                break
    return chosen


Strategy = Callable[..., list[Trial]]
STRATEGIES: dict[str, Strategy] = {"grid": grid, "random": random_search}


def make_trials(strategy: str, space: Space, *, seed: int, trials: int | None) -> list[Trial]:
    """The trials a strategy plans for a space; UserError for a bad combination."""
    if strategy not in STRATEGIES:
        raise UserError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    if trials is not None and trials < 1:
        raise UserError(f"--trials must be at least 1, got {trials}")
    if strategy == "grid":
        return grid(space, seed=seed, trials=trials)
    return random_search(space, seed=seed, trials=10 if trials is None else trials)


def grid_size(space: Space) -> int:
    return math.prod(len(_grid_axis(h)) for h in space)
