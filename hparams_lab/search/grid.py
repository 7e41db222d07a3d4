"""Grid search: the cartesian product of every hparam's grid values, in a fixed order.

With conditional hparams, only valid combinations: an inactive hparam takes no value,
so it adds no duplicates.
"""

from __future__ import annotations

import itertools

from hparams_lab.core.space import HParam, Space, SpaceError
from hparams_lab.core.trial import Trial


def grid(space: Space, *, seed: int = 0, trials: int | None = None) -> list[Trial]:
    """The cartesian product of every hparam's grid values, last hparam varying fastest.

    ``trials`` caps the count (the first N points), for quick looks at a big grid.
    """
    axes = {h.name: _grid_axis(h) for h in space}
    points = space.points(lambda h: axes[h.name])
    if trials is not None:
        points = itertools.islice(points, trials)
    return [Trial(hparams, seed=seed, index=i) for i, hparams in enumerate(points)]


def _grid_axis(hparam: HParam) -> tuple:
    try:
        return hparam.domain.grid_values()
    except SpaceError as err:
        raise SpaceError(f"hparam {hparam.name!r}: {err}") from None
