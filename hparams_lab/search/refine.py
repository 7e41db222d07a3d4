"""Refine: a finer grid around the best trials of an earlier experiment.

The seeds' "random first, then a finer grid around the best". For each of the
``top_k`` best successful earlier trials (distinct hparams, ranked by ``metric``):

- an interval hparam takes ``points`` values evenly spread over the winner's value
  +/- RADIUS (10%) of the domain's range, measured in log units on a log domain
  (on 1e-4..1e-1 that is a factor of 2 either side). The radius is at least one
  step (1 on an int domain without a step), so a small int domain still moves.
  Values are clipped to the domain and snapped to its step, ints rounded, reals
  without a step rounded to 4 significant digits, duplicates dropped; with an odd
  ``points`` the winner's own value is the middle one;
- a numeric Discrete hparam takes the winner's value and its neighbours in the
  sorted values (up to 3 values, whatever ``points``);
- a str or bool hparam keeps the winner's value.

A winner's neighbourhood is the product of those values; the plan is the union of
the winners' neighbourhoods, best winner first, without duplicates. The winners'
own points are in it: the new experiment runs them again, so its leaderboard
compares old and new points under the same training settings. A conditional hparam
varies only where it is active; one a neighbour brings in takes its domain's middle.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from hparams_lab.core.errors import UserError
from hparams_lab.core.metrics import sort_key
from hparams_lab.core.space import (
    Discrete,
    HParam,
    IntInterval,
    RealInterval,
    Space,
    check_value,
    middle,
)
from hparams_lab.core.trial import Trial, TrialResult, TrialStatus

RADIUS = 0.1  # of the domain's range (in log units on a log domain), either side of the winner
DEFAULT_TOP_K = 3
DEFAULT_POINTS = 3


def refine(
    space: Space, previous: Sequence[TrialResult], *, metric: str, top_k: int = DEFAULT_TOP_K,
    points: int = DEFAULT_POINTS, seed: int = 0, directions: Mapping[str, str] | None = None,
) -> list[Trial]:
    """The union of a finer grid around each of the ``top_k`` best earlier trials."""
    planned: dict[tuple, dict[str, Any]] = {}
    for winner in best_trials(previous, metric, top_k, directions):
        axes = {h.name: _axis(space, h, winner, points) for h in space}
        for point in space.points(lambda h, axes=axes: axes[h.name]):
            planned.setdefault(tuple(point.items()), point)
    return [Trial(hparams, seed=seed, index=i) for i, hparams in enumerate(planned.values())]


def _axis(space: Space, hparam: HParam, winner: Trial, points: int) -> tuple:
    """Around the winner's value; an hparam the winner has inactive (a neighbour may bring
    it in: num_layers 2 -> 3 needs units_3) takes its domain's middle."""
    if space.is_active(hparam.name, winner.hparams) or hparam.name in winner.hparams:
        return neighbourhood(hparam, _winner_value(hparam, winner), points)
    return (middle(hparam.domain),)


def best_trials(previous: Sequence[TrialResult], metric: str, top_k: int,
                directions: Mapping[str, str] | None = None) -> list[Trial]:
    """The ``top_k`` best successful trials with distinct hparams (ties: by trial id)."""
    ok = [r for r in previous if r.status is TrialStatus.SUCCESS]
    if not ok:
        raise UserError("it has no successful trials to refine")
    scored = [r for r in ok if _is_finite(r.metrics.get(metric))]
    if not scored:
        known = sorted({name for r in ok for name in r.metrics})
        raise UserError(f"metric {metric!r} is not in its trials; they have {', '.join(known) or 'no metrics'}")
    key = sort_key(metric, directions)
    winners: dict[str, Trial] = {}
    for result in sorted(scored, key=lambda r: (key(r.metrics), r.trial.id)):
        winners.setdefault(result.trial.group, result.trial)  # repeats and folds share a group
    return list(winners.values())[:top_k]


def neighbourhood(hparam: HParam, value: Any, points: int) -> tuple:
    """The values an hparam takes around one winner's ``value`` (see the module's docstring)."""
    domain = hparam.domain
    if not isinstance(domain, Discrete):
        return _interval_values(domain, value, points)
    if domain.dtype in ("str", "bool"):
        return (check_value(hparam.name, domain, value),)
    nearest = min(range(len(domain.values)), key=lambda i: abs(domain.values[i] - value))
    return domain.values[max(nearest - 1, 0): nearest + 2]


def _interval_values(domain: IntInterval | RealInterval, value: float, points: int) -> tuple:
    value = min(max(value, domain.min), domain.max)
    scale, unscale = (math.log, math.exp) if domain.log else (float, float)
    radius = max(RADIUS * (scale(domain.max) - scale(domain.min)), _one_step(domain, value))
    values = set()
    for i in range(points):
        offset = 0.0 if points == 1 else radius * (2 * i / (points - 1) - 1)
        x = unscale(scale(value) + offset) if offset else value
        if offset and isinstance(domain, RealInterval) and domain.step is None:
            x = float(f"{x:.4g}")
        values.add(domain.snap(x))
    return tuple(sorted(values))


def _one_step(domain: IntInterval | RealInterval, value: float) -> float:
    """The smallest move that can change a value of this domain, in the radius' units."""
    if domain.step is not None:
        return math.log(domain.step) if domain.log else domain.step
    if isinstance(domain, IntInterval):
        return math.log((value + 1) / value) if domain.log else 1.0
    return 0.0


def _winner_value(hparam: HParam, winner: Trial) -> Any:
    if hparam.name not in winner.hparams:
        raise UserError(
            f"hparam {hparam.name!r} has no value in the earlier trial {winner.id}; "
            f"refine a space of its hparams ({', '.join(winner.hparams)})"
        )
    value = winner.hparams[hparam.name]
    numeric = not isinstance(hparam.domain, Discrete) or hparam.domain.dtype in ("int", "float")
    if numeric and (not isinstance(value, (int, float)) or isinstance(value, bool)):
        raise UserError(f"hparam {hparam.name!r}: the earlier trial {winner.id} has {value!r}, not a number")
    return value


def _is_finite(value: object) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)
