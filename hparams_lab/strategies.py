"""Search strategies: a space in, a deterministic list of trials out.

Pure functions of (space, seed) - and of the earlier results for refine
(refine.py), of a base configuration for one-at-a-time (one_at_a_time.py);
randomness comes only from a ``random.Random`` built from the seed, so the same
command always gives the same trials and ids.
"""

from __future__ import annotations

import itertools
import math
from random import Random
from typing import Any, Callable, Mapping, Sequence

from hparams_lab.errors import UserError
from hparams_lab.metrics import DEFAULT_METRIC
from hparams_lab.one_at_a_time import DEFAULT_POINTS as ONE_AT_A_TIME_POINTS
from hparams_lab.one_at_a_time import one_at_a_time
from hparams_lab.refine import DEFAULT_POINTS as REFINE_POINTS
from hparams_lab.refine import DEFAULT_TOP_K, refine
from hparams_lab.space import HParam, Space, SpaceError
from hparams_lab.trial import Trial, TrialResult

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
STRATEGIES: dict[str, Strategy] = {
    "grid": grid,
    "random": random_search,
    "refine": refine,
    "one-at-a-time": one_at_a_time,
}


# Strategies that decide as results come in (plan.py builds their searches).
ADAPTIVE = ("hyperband", "successive-halving", "bayes")
NAMES = (*STRATEGIES, *ADAPTIVE)


def make_trials(
    strategy: str,
    space: Space,
    *,
    seed: int,
    trials: int | None,
    previous: Sequence[TrialResult] = (),
    metric: str = DEFAULT_METRIC,
    top_k: int = DEFAULT_TOP_K,
    points: int | None = None,
    base: Mapping[str, Any] | None = None,
) -> list[Trial]:
    """The trials a strategy plans for a space; UserError for a bad combination.

    ``trials`` caps every strategy but random (there: how many to draw). refine
    uses ``previous``, ``metric``, ``top_k`` and ``points``; one-at-a-time ``base``
    and ``points`` (None: each strategy's default).
    """
    if strategy not in STRATEGIES:
        raise UserError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    if trials is not None and trials < 1:
        raise UserError(f"--trials must be at least 1, got {trials}")
    if strategy == "random":
        return random_search(space, seed=seed, trials=10 if trials is None else trials)
    if strategy == "grid":
        return grid(space, seed=seed, trials=trials)
    if strategy == "refine":
        planned = refine(space, previous, metric=metric, top_k=top_k,
                         points=REFINE_POINTS if points is None else points, seed=seed)
    else:
        planned = one_at_a_time(space, base, seed=seed, points=ONE_AT_A_TIME_POINTS if points is None else points)
    return planned if trials is None else planned[:trials]


def grid_size(space: Space) -> int:
    return math.prod(len(_grid_axis(h)) for h in space)
