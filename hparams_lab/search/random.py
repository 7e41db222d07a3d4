"""Random search: distinct random points of a space (log-uniform on log domains).

Conditional hparams are drawn only where their conditions hold, parents first.

Randomness comes only from a ``random.Random`` built from the seed, so the same
command always gives the same trials and ids.
"""

from __future__ import annotations

from random import Random

from hparams_lab.core.space import Space
from hparams_lab.core.trial import Trial

_MAX_REJECTIONS = 100  # per wanted trial, before deciding the space is exhausted


def random_search(space: Space, *, seed: int = 0, trials: int = 10) -> list[Trial]:
    """``trials`` distinct random points (log-uniform on log domains).

    A finite space with no more points than asked for is run whole, in a random
    order; otherwise duplicates are redrawn, so no two trials share hparams.
    """
    rng = Random(seed)
    if space.size() <= trials:
        # Enumerate the finite space rather than sampling it: no repeats, no misses.
        chosen = list(space.points())
        rng.shuffle(chosen)
    else:
        chosen = _distinct_samples(space, rng, trials)
    return [Trial(hparams, seed=seed, index=i) for i, hparams in enumerate(chosen)]


def _distinct_samples(space: Space, rng: Random, trials: int) -> list[dict]:
    chosen, seen = [], set()
    for _ in range(trials * _MAX_REJECTIONS):
        hparams = space.sample(rng)  # only active hparams: a conditional one may be absent
        key = tuple(hparams.items())
        if key not in seen:
            seen.add(key)
            chosen.append(hparams)
            if len(chosen) == trials:
                break
    return chosen
